"""The record that identity resolution reads: one person as one source saw them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

__all__ = ["TRAIT_KEYS", "Record", "RecordError"]


class RecordError(ValueError):
    """A record that cannot be read; names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class Record:
    """One source's view of a person, keyed by the standard trait keys.

    Every trait is optional; `record_id` identifies the record within one batch.
    Values are as the source wrote them; normalisation happens when records are matched.
    """

    record_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = None
    user_id: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.record_id, str) or not self.record_id.strip():
            raise RecordError("record_id", "must be a non-empty string")

    @classmethod
    def from_mapping(cls, row: Mapping[str, str | None]) -> Record:
        """A record from a mapping of trait keys to text; other keys are ignored.

        Values are stripped and empty values become None.
        """
        values: dict[str, str | None] = {}
        for key in TRAIT_KEYS:
            raw = row.get(key)
            text = raw.strip() if isinstance(raw, str) else None
            values[key] = text or None
        record_id = values.pop("record_id")
        if record_id is None:
            raise RecordError("record_id", "is missing or empty")
        return cls(record_id=record_id, **values)

    def as_dict(self) -> dict[str, str | None]:
        """The record as a mapping of trait keys to values."""
        return {key: getattr(self, key) for key in TRAIT_KEYS}


TRAIT_KEYS: tuple[str, ...] = tuple(field.name for field in fields(Record))
