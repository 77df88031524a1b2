"""The running aggregates of a profile's activity, from which computed traits are read.

`Aggregates` is kept with each profile and updated as events arrive (`add`), combined
when profiles merge (`merge`) and rebuilt from history when they are unmerged. It depends
only on the set of activities it has seen, never on their order: counters add, daily
buckets are keyed by UTC day, first and last times are minima and maxima, revenue is
summed exactly per currency (Decimal), the engagement score is a sum of decaying terms
kept as one logarithm, and ties are broken by value. So a replay, a merge and a stream of
out-of-order events all reach the same aggregates.

Bounds keep one profile small: daily buckets cover the 120 days up to the newest activity
(older days are in no window, unless an activity is dated a month ahead of the reading
time, which pushes out days still in the 90-day window); a day keeps at most 100
products and 50 categories (the first in sort order — a bound for robots, not people);
the 50 most recent email sends are kept.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from mailwright_profile.traits import sortable_time

__all__ = [
    "ENGAGEMENT_HALF_LIFE_DAYS",
    "HORIZON_DAYS",
    "Activity",
    "Aggregates",
    "day_of",
]

HORIZON_DAYS = 120
MAX_PRODUCTS_PER_DAY = 100
MAX_CATEGORIES_PER_DAY = 50
MAX_SENDS = 50
ENGAGEMENT_HALF_LIFE_DAYS = 30.0
OPEN_WEIGHT = 1.0
CLICK_WEIGHT = 2.0
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# What an activity is (see `events.activity_of` for the event names behind each kind).
PAGE = "page"
PRODUCT_VIEW = "product_view"
CART_ADD = "cart_add"
ORDER = "order"
EMAIL_SENT = "email_sent"
EMAIL_OPEN = "email_open"
EMAIL_CLICK = "email_click"
OTHER = "other"
_DAILY = frozenset((PAGE, PRODUCT_VIEW, CART_ADD, ORDER))  # counted in the daily buckets
_EMAIL = frozenset((EMAIL_SENT, EMAIL_OPEN, EMAIL_CLICK))


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def _days(moment: datetime) -> float:
    return (moment - _EPOCH).total_seconds() / 86400.0


@dataclass(slots=True)
class Activity:
    """What one event contributes to the aggregates. Never changed once made; not frozen
    only because a frozen dataclass costs several µs more to build, per event."""

    time: datetime
    kind: str = OTHER
    product: str | None = None
    category: str | None = None
    revenue: Decimal | None = None
    currency: str | None = None
    send_id: str | None = None
    machine: bool = False
    timezone: str | None = None
    locale: str | None = None
    identified: bool = False


def _bounded_add(counts: dict[str, int], key: str, amount: int, limit: int) -> None:
    """Add to a per-key count keeping at most `limit` keys: the first in sort order."""
    if key in counts:
        counts[key] += amount
        return
    if len(counts) < limit:
        counts[key] = amount
        return
    largest = max(counts)
    if key < largest:
        del counts[largest]
        counts[key] = amount


def _latest(held: list[str] | None, time_text: str, value: str) -> list[str]:
    if held is None or (time_text, value) > (held[0], held[1]):
        return [time_text, value]
    return held


@functools.lru_cache(maxsize=512)
def _floor(newest: str) -> str:
    """The last day no longer kept when `newest` is the newest day."""
    return (date.fromisoformat(newest) - timedelta(days=HORIZON_DAYS)).isoformat()


def _log2_add(first: float | None, second: float) -> float:
    if first is None:
        return second
    high, low = max(first, second), min(first, second)
    return high + math.log2(1.0 + 2.0 ** (low - high))


class Aggregates:
    """See the module docstring. Plain JSON in and out (`to_json`, `from_json`)."""

    def __init__(self) -> None:
        self.first: str | None = None
        self.last: str | None = None
        self.days: dict[str, dict[str, Any]] = {}
        self.newest_day: str | None = None
        self.orders = 0
        self.revenue: dict[str, list[Any]] = {}  # currency → [orders, "sum"]
        self.first_order: str | None = None
        self.last_order: str | None = None
        # send id → [sent time or None, first engagement time or None, opened, clicked]
        self.sends: dict[str, list[Any]] = {}
        self.engagement: float | None = None  # log2 Σ weight·2^(days since 2000 / half-life)
        self.timezone: list[str] | None = None
        self.locale: list[str] | None = None
        self.identified = False

    # -- adding ------------------------------------------------------------------------

    def add(self, activity: Activity, stamp: str | None = None) -> None:
        """Count one activity; `stamp` is `sortable_time(activity.time)` when the caller
        has it already."""
        if stamp is None:
            stamp = sortable_time(activity.time)
        # (comparisons rather than min and max: this runs for every event)
        if self.first is None or stamp < self.first:
            self.first = stamp
        if self.last is None or stamp > self.last:
            self.last = stamp
        if activity.identified:
            self.identified = True
        if activity.timezone:
            self.timezone = _latest(self.timezone, stamp, activity.timezone)
        if activity.locale:
            self.locale = _latest(self.locale, stamp, activity.locale)
        kind = activity.kind
        if kind in _DAILY:
            self._count_day(activity, stamp[:10])
            if kind == ORDER:
                self._order(activity, stamp)
        elif kind in _EMAIL:
            self._email(activity, stamp)

    def _count_day(self, activity: Activity, day: str) -> None:
        """`_merge_day` of the one-activity bucket, written out (it runs for most
        events): the same counters, added in the same order."""
        held = self._day(day)
        if held is None:
            return
        kind, category = activity.kind, activity.category
        if kind == PAGE:
            held["pv"] = held.get("pv", 0) + 1
            if category:
                _bounded_add(held.setdefault("pc", {}), category, 1, MAX_CATEGORIES_PER_DAY)
        elif kind == PRODUCT_VIEW:
            held["v"] = held.get("v", 0) + 1
            if activity.product:
                products = held.setdefault("vp", {})
                _bounded_add(products, activity.product, 1, MAX_PRODUCTS_PER_DAY)
            if category:
                _bounded_add(held.setdefault("vc", {}), category, 1, MAX_CATEGORIES_PER_DAY)
        elif kind == CART_ADD:
            held["a"] = held.get("a", 0) + 1
        else:
            held["o"] = held.get("o", 0) + 1

    def _day(self, day: str) -> dict[str, Any] | None:
        """The bucket of `day`, made if need be; None when the day is too old to keep. A
        day newer than the newest moves the horizon: the days it leaves are dropped."""
        newest = self.newest_day
        if newest is None or day > newest:
            self.newest_day = day
            floor = _floor(day)
            for old in [d for d in self.days if d <= floor]:
                del self.days[old]
        elif day <= _floor(newest):
            return None
        held = self.days.get(day)
        if held is None:
            held = self.days[day] = {}
        return held

    def _merge_day(self, day: str, bucket: Mapping[str, Any]) -> None:
        held = self._day(day)
        if held is None:
            return
        for name, value in bucket.items():
            if isinstance(value, dict):
                limit = MAX_PRODUCTS_PER_DAY if name == "vp" else MAX_CATEGORIES_PER_DAY
                counts = held.setdefault(name, {})
                for key, amount in value.items():
                    _bounded_add(counts, key, amount, limit)
            else:
                held[name] = held.get(name, 0) + value

    def _order(self, activity: Activity, stamp: str) -> None:
        self.orders += 1
        self.first_order = stamp if self.first_order is None else min(self.first_order, stamp)
        self.last_order = stamp if self.last_order is None else max(self.last_order, stamp)
        currency = activity.currency or "XXX"
        held = self.revenue.setdefault(currency, [0, "0"])
        held[0] += 1
        if activity.revenue is not None:
            held[1] = str(Decimal(held[1]) + activity.revenue)

    def _email(self, activity: Activity, stamp: str) -> None:
        if activity.send_id is None or (activity.kind == EMAIL_OPEN and activity.machine):
            return
        held = self.sends.get(activity.send_id)
        if held is None:
            held = self.sends[activity.send_id] = [None, None, 0, 0]
        if activity.kind == EMAIL_SENT:
            held[0] = stamp if held[0] is None else min(held[0], stamp)
        else:
            held[1] = stamp if held[1] is None else min(held[1], stamp)
            held[2 if activity.kind == EMAIL_OPEN else 3] = 1
            weight = OPEN_WEIGHT if activity.kind == EMAIL_OPEN else CLICK_WEIGHT
            term = math.log2(weight) + _days(activity.time) / ENGAGEMENT_HALF_LIFE_DAYS
            self.engagement = _log2_add(self.engagement, term)
        self._trim_sends()

    def _trim_sends(self) -> None:
        if len(self.sends) <= MAX_SENDS:
            return
        for send_id, _ in self.recent_sends()[MAX_SENDS:]:
            del self.sends[send_id]

    def recent_sends(self) -> list[tuple[str, list[Any]]]:
        """Sends, most recent first (by send time, else first engagement; then id)."""
        return sorted(
            self.sends.items(),
            key=lambda item: (item[1][0] or item[1][1] or "", item[0]),
            reverse=True,
        )

    # -- merging -----------------------------------------------------------------------

    def merge(self, other: Aggregates) -> None:
        """Add everything `other` has seen, as if its activities had been added here."""
        for name in ("first", "first_order"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else min(mine, theirs))
        for name in ("last", "last_order"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if theirs is not None:
                setattr(self, name, theirs if mine is None else max(mine, theirs))
        self.identified = self.identified or other.identified
        if other.timezone:
            self.timezone = _latest(self.timezone, other.timezone[0], other.timezone[1])
        if other.locale:
            self.locale = _latest(self.locale, other.locale[0], other.locale[1])
        for day, bucket in sorted(other.days.items()):
            self._merge_day(day, bucket)
        self.orders += other.orders
        for currency, (count, total) in other.revenue.items():
            held = self.revenue.setdefault(currency, [0, "0"])
            held[0] += count
            held[1] = str(Decimal(held[1]) + Decimal(total))
        for send_id, (sent, engaged, opened, clicked) in other.sends.items():
            held = self.sends.setdefault(send_id, [None, None, 0, 0])
            held[0] = _earliest(held[0], sent)
            held[1] = _earliest(held[1], engaged)
            held[2] = max(held[2], opened)
            held[3] = max(held[3], clicked)
        self._trim_sends()
        if other.engagement is not None:
            self.engagement = _log2_add(self.engagement, other.engagement)

    # -- JSON --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "last": self.last,
            "days": self.days,
            "newest_day": self.newest_day,
            "orders": self.orders,
            "revenue": self.revenue,
            "first_order": self.first_order,
            "last_order": self.last_order,
            "sends": self.sends,
            "engagement": self.engagement,
            "timezone": self.timezone,
            "locale": self.locale,
            "identified": self.identified,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Aggregates:
        aggregates = cls()
        if not raw:
            return aggregates
        aggregates.first = raw.get("first")
        aggregates.last = raw.get("last")
        aggregates.days = {d: dict(b) for d, b in (raw.get("days") or {}).items()}
        aggregates.newest_day = raw.get("newest_day")
        aggregates.orders = int(raw.get("orders") or 0)
        aggregates.revenue = {c: list(v) for c, v in (raw.get("revenue") or {}).items()}
        aggregates.first_order = raw.get("first_order")
        aggregates.last_order = raw.get("last_order")
        aggregates.sends = {s: list(v) for s, v in (raw.get("sends") or {}).items()}
        engagement = raw.get("engagement")
        aggregates.engagement = None if engagement is None else float(engagement)
        aggregates.timezone = raw.get("timezone")
        aggregates.locale = raw.get("locale")
        aggregates.identified = bool(raw.get("identified"))
        return aggregates


def _earliest(first: str | None, second: str | None) -> str | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)
