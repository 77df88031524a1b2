"""Plain traits: last write wins by source priority, then event time.

Each trait keeps its value and the write that set it (event time, source). A new write
replaces it only when its order key is greater: the source's rank in the workspace's
`source_priority` first (a listed source is never overwritten by a lower one), then the
event time (a late event never overwrites a newer value), then — for writes that tie on
both — the source name and the value's canonical JSON, so that the outcome is the same in
whatever order the writes arrive. A write of null removes the trait but is remembered,
so an older write cannot bring it back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mailwright_profile.identity import MergePolicy
from mailwright_profile.normalizers import parse_timestamp

__all__ = [
    "MAX_TRAIT_KEY",
    "MAX_TRAIT_VALUE_BYTES",
    "TraitBook",
    "TraitWrite",
    "canonical",
    "check_trait",
    "same_value",
    "sortable_time",
    "value_type",
]

MAX_TRAIT_KEY = 128
MAX_TRAIT_VALUE_BYTES = 16 * 1024
_KEY = re.compile(r"^[^\x00-\x1f]{1,128}$")


SORTABLE_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


def fields_text(pattern: str, moment: datetime) -> str:
    """`pattern` (a `%` format of seven integers) of the datetime's own fields, whatever
    its zone. `%` formatting of the fields takes half the time of `isoformat` on an aware
    datetime, and the texts made this way are made for every event."""
    return pattern % (
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


def sortable_time(moment: datetime) -> str:
    """UTC time as fixed-width text (always microseconds), so text order is time order:
    the text of `isoformat(timespec="microseconds")` without the offset, plus "Z"."""
    if moment.tzinfo is not UTC:  # events' times are UTC already: no conversion
        moment = moment.astimezone(UTC)
    return fields_text(SORTABLE_FORMAT, moment)


def canonical(value: Any) -> str:
    """The value as canonical JSON (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_trait(key: object, value: Any) -> str | None:
    """Why a trait cannot be stored, or None when it can."""
    if not isinstance(key, str) or not _KEY.match(key):
        return "trait keys are 1 to 128 characters without control characters"
    if isinstance(value, float) and not math.isfinite(value):
        return "trait values must be finite numbers"
    kind = type(value)
    if kind is bool or kind is float or value is None or (kind is int and abs(value) < 2**63):
        return None
    # A character takes at most 6 bytes of JSON (\uXXXX): short text needs no encoding.
    if kind is str and 6 * len(value) + 2 <= MAX_TRAIT_VALUE_BYTES:
        return None
    if len(canonical(value).encode()) > MAX_TRAIT_VALUE_BYTES:
        return f"trait value larger than {MAX_TRAIT_VALUE_BYTES} bytes"
    return None


def same_value(first: Any, second: Any) -> bool:
    """Equal values of the same type (1 and 1.0 and True are three values)."""
    return type(first) is type(second) and bool(first == second)


def value_type(value: Any) -> str:
    """The trait type a value shows: string, timestamp, date, number, boolean, list, object."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-" and value[:4].isdigit():
            return "date"
        if len(value) > 10 and value[10:11] == "T" and parse_timestamp(value) is not None:
            return "timestamp"
    return "string"


@dataclass(frozen=True)
class TraitWrite:
    """One write of a trait: by whom and when."""

    key: str
    value: Any
    time: datetime
    source: str


class TraitBook:
    """A profile's traits with the write behind each; JSON-friendly both ways."""

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.values: dict[str, Any] = dict(values or {})
        # key → [time (RFC 3339), source]; a key in meta but not in values is removed
        self.meta: dict[str, list[str]] = {k: list(v) for k, v in (meta or {}).items()}
        # Whether values or meta changed since the book was read or last stored (a write
        # that loses changes nothing; one that wins may keep the value but not the meta).
        self.dirty = False

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def written(self, key: str) -> tuple[datetime, str] | None:
        held = self.meta.get(key)
        if held is None:
            return None
        moment = parse_timestamp(held[0])
        assert moment is not None
        return moment, held[1]

    def write(self, write: TraitWrite, policy: MergePolicy) -> bool:
        """Apply one write; True when the trait's value changed."""
        return self.put(write.key, write.value, sortable_time(write.time), write.source, policy)

    def put(self, key: str, value: Any, time_text: str, source: str, policy: MergePolicy) -> bool:
        """`write` with the time already as `sortable_time` text."""
        held = self.meta.get(key)
        before_present = key in self.values
        before = self.values.get(key)
        if held is not None:
            mine = (policy.rank(source), time_text, source)
            theirs = (policy.rank(held[1]), held[0], held[1])
            if mine < theirs or (mine == theirs and canonical(value) <= canonical(before)):
                return False
        self.meta[key] = [time_text, source]
        self.dirty = True
        if value is None:
            self.values.pop(key, None)
            return before_present
        self.values[key] = value
        return not before_present or not same_value(before, value)

    def merge(self, other: TraitBook, policy: MergePolicy) -> set[str]:
        """Take the other book's writes that win here; the keys whose value changed."""
        changed = set()
        for key, (time_text, source) in other.meta.items():
            if self.put(key, other.values.get(key), time_text, source, policy):
                changed.add(key)
        return changed

    def meta_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.meta.items()}

    def copy(self) -> TraitBook:
        return TraitBook(self.values, self.meta)
