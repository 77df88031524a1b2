"""Event times: read ISO 8601 or epoch milliseconds into aware UTC, correct client skew.

Clients stamp events with their own clock, which may be wrong by minutes or years. When
a client also says when it sent the event (`sent_at`, by the same wrong clock), the
difference between that and when the server received it is the clock's error, and the
event's time is corrected by it — what Segment does:

    timestamp = received_at - (sent_at - original_timestamp)
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import overload

__all__ = [
    "MAX_TIMESTAMP_CHARS",
    "correct_clock_skew",
    "format_timestamp",
    "parse_timestamp",
]

MAX_TIMESTAMP_CHARS = 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
# Epoch milliseconds between year 1 and year 9999, the range `datetime` can hold.
_MIN_MS = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)


def parse_timestamp(value: object) -> datetime:
    """An aware UTC datetime from ISO 8601 text, epoch milliseconds, or a datetime.

    ISO 8601 with an offset or `Z` is converted to UTC; without one it is read as UTC.
    Numbers (and numeric strings) are milliseconds since 1970-01-01T00:00:00Z, as
    JavaScript's `Date.now()` gives them. Raises `ValueError` saying what is wrong.
    """
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 string or epoch milliseconds, not a boolean")
    if isinstance(value, int | float):
        return _from_milliseconds(value)
    if not isinstance(value, str):
        raise ValueError(
            f"must be an ISO 8601 string or epoch milliseconds, not {type(value).__name__}"
        )
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    if len(text) > MAX_TIMESTAMP_CHARS:
        raise ValueError(f"longer than {MAX_TIMESTAMP_CHARS} characters")
    if _NUMBER.match(text):
        return _from_milliseconds(float(text) if "." in text else int(text))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    return _utc(parsed)


def _from_milliseconds(value: float) -> datetime:
    if not math.isfinite(value):
        raise ValueError("must be a finite number of epoch milliseconds")
    if not _MIN_MS <= value <= _MAX_MS:
        raise ValueError(f"{value} epoch milliseconds is outside the years 1 to 9999")
    return _EPOCH + timedelta(milliseconds=value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@overload
def correct_clock_skew(
    original_timestamp: datetime, sent_at: datetime, received_at: datetime
) -> datetime: ...


@overload
def correct_clock_skew(original_timestamp: int, sent_at: int, received_at: int) -> int: ...


def correct_clock_skew(
    original_timestamp: datetime | int, sent_at: datetime | int, received_at: datetime | int
) -> datetime | int:
    """The event time on the server's clock: `received_at - (sent_at - original_timestamp)`.

    `original_timestamp` and `sent_at` come from the client's clock, `received_at` from
    the server's: all three aware datetimes, or all three integers of one unit (ingest
    works in epoch nanoseconds). Network delay is counted as skew, as Segment does: an
    event sent a second before it arrived is placed a second later.
    """
    return received_at - (sent_at - original_timestamp)  # type: ignore[operator]


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`: `2025-03-01T12:00:00.000Z`."""
    t = _utc(value)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )
