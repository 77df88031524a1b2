"""What a computed trait is: its definition, what it reads, and what makes it change."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from mailwright_profile.computed.aggregates import (
    Aggregates,
)
from mailwright_profile.normalizers import parse_timestamp

__all__ = ["FACETS", "Changes", "ComputedTrait", "Inputs"]

WINDOWS = (7, 30, 90)
TOP_ENTRIES = 20
LAST_EMAILS = 5
RECENCY_DAYS = (30, 60, 90, 180)  # at most → score 5, 4, 3, 2; older → 1
FREQUENCY_ORDERS = (2, 3, 5, 10)  # below → score 1, 2, 3, 4; at least 10 → 5
MONETARY_AMOUNTS = (50, 150, 500, 1500)  # below → score 1, 2, 3, 4; above → 5
ACTIVE_DAYS = 90
AT_RISK_DAYS = 180
_CENT = Decimal("0.01")


FACETS = frozenset(
    {
        "seen",
        "pages",
        "products",
        "carts",
        "orders",
        "emails",
        "engagement",
        "context",
        "identified",
        "consent",
    }
)
"""The parts of a profile's aggregates (and consent) a computed trait may read."""


class Changes(enum.Enum):
    """What makes a computed trait's value change."""

    EVENTS = "events"
    """Only new events (and merges)."""
    WINDOWS = "windows"
    """Events, and days leaving a window: re-evaluated and republished on schedule."""
    CLOCK = "clock"
    """Continuously with time: exact when read; `profiles.changed` carries the value at
    the time of the change."""


@lru_cache(maxsize=8)
def window_bounds(today: date) -> tuple[str, tuple[str, ...]]:
    """The last day and the first day of each of `WINDOWS` (ascending), as ISO dates: the
    same for every profile read on one UTC day, so worked out once per day."""
    first = tuple((today - timedelta(days=days - 1)).isoformat() for days in WINDOWS)
    return today.isoformat(), first


def _empty_window() -> dict[str, Any]:
    return {"pv": 0, "v": 0, "a": 0, "o": 0, "pc": {}, "vp": {}, "vc": {}}


def _add_bucket(total: dict[str, Any], bucket: Mapping[str, Any]) -> None:
    for name, value in bucket.items():
        if isinstance(value, dict):
            counts = total[name]
            for key, amount in value.items():
                counts[key] = counts.get(key, 0) + amount
        else:
            total[name] += value


class Inputs:
    """What a computed trait reads, with the window sums computed once."""

    def __init__(
        self, aggregates: Aggregates, consents: Mapping[str, Mapping[str, Any]], now: datetime
    ) -> None:
        self.aggregates = aggregates
        self.consents = consents
        self.now = now.astimezone(UTC)
        self.today = self.now.date()
        self._windows: dict[int, dict[str, Any]] = {}

    def window(self, days: int) -> dict[str, Any]:
        """Counters and per-key counts summed over the last `days` UTC days (today too)."""
        cache = self._windows
        if days not in cache:
            if days in WINDOWS:
                self._standard_windows()
            else:
                first = (self.today - timedelta(days=days - 1)).isoformat()
                total = _empty_window()
                for day, bucket in self.aggregates.days.items():
                    if first <= day <= self.today.isoformat():
                        _add_bucket(total, bucket)
                cache[days] = total
        return cache[days]

    def _standard_windows(self) -> None:
        """Every window of `WINDOWS` (ascending) in one pass over the days: a day's bucket
        is added to the windows that hold it, the narrowest first."""
        last, firsts = window_bounds(self.today)
        totals = [_empty_window() for _ in WINDOWS]
        widest = firsts[-1]
        for day, bucket in self.aggregates.days.items():
            if day > last or day < widest:
                continue
            index = 0
            while day < firsts[index]:
                index += 1
            for total in totals[index:]:
                for name, value in bucket.items():
                    if type(value) is dict:
                        counts = total[name]
                        for key, amount in value.items():
                            counts[key] = counts.get(key, 0) + amount
                    else:
                        total[name] += value
        self._windows.update(zip(WINDOWS, totals, strict=True))

    @cached_property
    def recent_sends(self) -> list[tuple[str, list[Any]]]:
        """`Aggregates.recent_sends`, sorted once for every trait that reads it."""
        return self.aggregates.recent_sends()

    @cached_property
    def last_order(self) -> datetime | None:
        return parse_timestamp(self.aggregates.last_order)

    @cached_property
    def days_since_last_order(self) -> int | None:
        if self.last_order is None:
            return None
        return max((self.now - self.last_order).days, 0)

    @cached_property
    def main_currency(self) -> str | None:
        """The currency of most orders (then the larger amount, then the code)."""
        revenue = self.aggregates.revenue
        if not revenue:
            return None
        return max(revenue, key=lambda c: (revenue[c][0], Decimal(revenue[c][1]), c))

    @cached_property
    def main_revenue(self) -> tuple[int, Decimal]:
        currency = self.main_currency
        if currency is None:
            return 0, Decimal(0)
        count, total = self.aggregates.revenue[currency]
        return int(count), Decimal(total)


@dataclass(frozen=True)
class ComputedTrait:
    """One computed trait. `type` is a TraitType name: number, string, timestamp, object.

    `reads` names the parts of the aggregates the trait depends on (`FACETS`), so that an
    event re-evaluates only the traits it can change."""

    key: str
    type: str
    description: str
    changes: Changes
    compute: Callable[[Inputs], Any]
    source: str = "profile"
    reads: frozenset[str] = FACETS
