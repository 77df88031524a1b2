"""One person's projection in memory, as the incremental evaluator reads it.

Loaded from the store for the person a change concerns (only the specs the affected rules
need), or built by hand in tests and benchmarks. Hits are sorted by time so that a window
is two bisections; day buckets are loaded only for the days whose hits were pruned.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from decimal import Decimal

from mailwright.rules.reference import as_instant
from mailwright_segment.values import Value, to_micros


@dataclass
class Hits:
    """The hits of one spec for one person: parallel lists sorted by time."""

    times: list[int] = field(default_factory=list)
    numbers: list[Decimal | None] = field(default_factory=list)
    groups: list[str | None] = field(default_factory=list)

    def add(self, at: int, number: Decimal | None = None, group: str | None = None) -> None:
        index = bisect_left(self.times, at)
        while index < len(self.times) and self.times[index] == at:
            index += 1
        self.times.insert(index, at)
        self.numbers.insert(index, number)
        self.groups.insert(index, group)


@dataclass(frozen=True)
class DayBucket:
    day: int
    count: int
    n: int
    total: Decimal
    minimum: Decimal | None
    maximum: Decimal | None


@dataclass
class SpecData:
    hits: Hits = field(default_factory=Hits)
    days: list[int] = field(default_factory=list)
    """Sorted days of `buckets` (only days before the coverage are loaded)."""
    buckets: list[DayBucket] = field(default_factory=list)


@dataclass
class Send:
    """An email sent to the person: when, the human opens and clicks held (sorted), and
    the first open and click ever (kept on the send, so they outlive pruned actions)."""

    send_id: str
    sent_at: int
    opens: list[int] = field(default_factory=list)
    clicks: list[int] = field(default_factory=list)
    first_open: int | None = None
    first_click: int | None = None

    def add_action(self, kind: str, at: int) -> None:
        insort(self.opens if kind == "open" else self.clicks, at)
        if kind == "open" and (self.first_open is None or at < self.first_open):
            self.first_open = at
        if kind == "click" and (self.first_click is None or at < self.first_click):
            self.first_click = at


@dataclass
class PersonState:
    traits: dict[str, Value] = field(default_factory=dict)
    specs: dict[str, SpecData] = field(default_factory=dict)
    sends: list[Send] = field(default_factory=list)
    segments: set[str] = field(default_factory=set)
    coverage: int | None = None
    """Hits are complete from this instant (a UTC midnight) on; earlier hits were pruned
    and only their day buckets remain. None: nothing was pruned."""
    _instants: dict[str, int | None] = field(default_factory=dict, repr=False)

    def spec(self, spec_id: str) -> SpecData:
        data = self.specs.get(spec_id)
        if data is None:
            data = self.specs[spec_id] = SpecData()
        return data

    def instant(self, key: str) -> int | None:
        """The trait's value read as a date, in microseconds (cached)."""
        if key not in self._instants:
            parsed = as_instant(self.traits.get(key))
            self._instants[key] = None if parsed is None else to_micros(parsed)
        return self._instants[key]

    def set_trait(self, key: str, value: Value) -> None:
        self._instants.pop(key, None)
        if value is None:
            self.traits.pop(key, None)
        else:
            self.traits[key] = value
