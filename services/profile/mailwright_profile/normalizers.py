"""The normalisers the profile service uses, imported in one place.

Email, phone, country and date normalisation is the SDK's (`mailwright.normalize`),
shared with ingest and the connectors; the service imports these names from here.
Timestamps are read here: RFC 3339 text (with `Z` or an offset, or naive read as UTC)
into timezone-aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mailwright.normalize import (
    fold_text,
    normalize_country,
    normalize_date,
    normalize_email,
    normalize_phone,
)

__all__ = [
    "fold_text",
    "normalize_country",
    "normalize_date",
    "normalize_email",
    "normalize_phone",
    "parse_timestamp",
    "timestamp_text",
]


def parse_timestamp(value: object) -> datetime | None:
    """A timezone-aware UTC datetime from RFC 3339 text, or None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def timestamp_text(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z` and microseconds only when there are any."""
    moment = value.astimezone(UTC)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
