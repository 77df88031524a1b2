"""The definitions of the built-in computed traits (the one list; see registry.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from operator import itemgetter
from typing import Any

from mailwright_profile.computed.aggregates import (
    ENGAGEMENT_HALF_LIFE_DAYS,
)
from mailwright_profile.computed.model import (
    ACTIVE_DAYS,
    AT_RISK_DAYS,
    FREQUENCY_ORDERS,
    LAST_EMAILS,
    MONETARY_AMOUNTS,
    RECENCY_DAYS,
    TOP_ENTRIES,
    WINDOWS,
    Changes,
    ComputedTrait,
    Inputs,
)
from mailwright_profile.normalizers import parse_timestamp, timestamp_text

__all__ = ["definitions"]

_CENT = Decimal("0.01")


def _top(counts: Mapping[str, int]) -> dict[str, int]:
    """The `TOP_ENTRIES` largest counts, largest first, then by key: sorted by key, then
    (stably) by count, two sorts in C rather than one calling a key function per item."""
    if len(counts) < 2:
        return dict(counts)
    ranked = sorted(sorted(counts.items()), key=itemgetter(1), reverse=True)
    return dict(ranked[:TOP_ENTRIES])


# `sortable_time`'s text, which the aggregates hold: its microseconds drop when zero.
# (Hour 24 is left to `parse_timestamp`: some Python versions read it as the next day.)
_SORTABLE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"
)


def _time(text: str | None) -> str | None:
    """A time of the aggregates as RFC 3339 (`timestamp_text`), None when it is none.

    The text of `sortable_time` (all the aggregates hold) is already that, but for zero
    microseconds: checked and trimmed without making a datetime and its text again."""
    if text is not None and _SORTABLE.fullmatch(text):
        try:
            datetime.fromisoformat(text[:26])  # a real date and time (not 2025-02-30)
        except ValueError:
            return None
        return text[:19] + "Z" if text.endswith(".000000Z") else text
    moment = parse_timestamp(text)
    return None if moment is None else timestamp_text(moment)


def _money(amount: Decimal) -> float:
    return float(amount.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def _score(value: float, bounds: Iterable[float], ascending: bool) -> int:
    """1-5 from where a value falls among four increasing bounds."""
    passed = sum(1 for bound in bounds if value >= bound)
    return 1 + passed if ascending else 5 - passed


def _recency_score(days: int) -> int:
    return 5 - sum(1 for bound in RECENCY_DAYS if days > bound)


def _lifecycle(inputs: Inputs) -> str:
    days = inputs.days_since_last_order
    if days is None:
        return "prospect" if inputs.aggregates.identified else "visitor"
    if days <= ACTIVE_DAYS:
        return "new_customer" if inputs.aggregates.orders == 1 else "active_customer"
    return "at_risk" if days <= AT_RISK_DAYS else "lapsed"


def _top_category(inputs: Inputs) -> str | None:
    window = inputs.window(90)
    counts: dict[str, int] = dict(window["vc"])
    for category, amount in window["pc"].items():
        counts[category] = counts.get(category, 0) + amount
    if not counts:
        return None
    return min(counts, key=lambda c: (-counts[c], c))


def _last_emails(inputs: Inputs, index: int) -> int:
    recent = inputs.recent_sends[:LAST_EMAILS]
    return sum(1 for _, held in recent if held[index])


def _engagement(inputs: Inputs) -> float:
    held = inputs.aggregates.engagement
    if held is None:
        return 0.0
    now_days = (inputs.now - datetime(2000, 1, 1, tzinfo=UTC)).total_seconds() / 86400.0
    score: float = 2.0 ** (held - now_days / ENGAGEMENT_HALF_LIFE_DAYS)
    return round(score, 6)


def _count(days: int, name: str) -> Callable[[Inputs], Any]:
    def compute(inputs: Inputs) -> Any:
        return inputs.window(days)[name]

    return compute


def _ranked(days: int, name: str) -> Callable[[Inputs], Any]:
    def compute(inputs: Inputs) -> Any:
        return _top(inputs.window(days)[name])

    return compute


def _window_traits() -> list[ComputedTrait]:
    traits: list[ComputedTrait] = []
    for days in WINDOWS:
        span = f"in the last {days} days (UTC calendar days, today included)"
        traits += [
            ComputedTrait(
                f"page_views_{days}d",
                "number",
                f"Pages viewed {span}.",
                Changes.WINDOWS,
                _count(days, "pv"),
            ),
            ComputedTrait(
                f"page_views_by_category_{days}d",
                "object",
                f"Pages viewed {span}, by page category (top {TOP_ENTRIES}).",
                Changes.WINDOWS,
                _ranked(days, "pc"),
            ),
            ComputedTrait(
                f"product_views_{days}d",
                "number",
                f'"Product Viewed" events {span}.',
                Changes.WINDOWS,
                _count(days, "v"),
            ),
            ComputedTrait(
                f"product_views_by_product_{days}d",
                "object",
                f"Product views {span}, by product_id (top {TOP_ENTRIES}).",
                Changes.WINDOWS,
                _ranked(days, "vp"),
            ),
            ComputedTrait(
                f"product_views_by_category_{days}d",
                "object",
                f"Product views {span}, by category (top {TOP_ENTRIES}).",
                Changes.WINDOWS,
                _ranked(days, "vc"),
            ),
            ComputedTrait(
                f"cart_adds_{days}d",
                "number",
                f'"Product Added" events {span}.',
                Changes.WINDOWS,
                _count(days, "a"),
            ),
        ]
    return traits


_ORDERS = frozenset({"orders"})
_READS: dict[str, frozenset[str]] = {
    "first_seen": frozenset({"seen"}),
    "last_seen": frozenset({"seen"}),
    "email_engagement_score": frozenset({"engagement"}),
    "opened_last_5_emails": frozenset({"emails"}),
    "clicked_last_5_emails": frozenset({"emails"}),
    "top_browsing_category": frozenset({"pages", "products"}),
    "lifecycle_stage": frozenset({"orders", "identified"}),
    "timezone": frozenset({"context"}),
    "locale": frozenset({"context"}),
    "email_consent": frozenset({"consent"}),
}
_READS_BY_PREFIX = (
    ("page_views", frozenset({"pages"})),
    ("product_views", frozenset({"products"})),
    ("cart_adds", frozenset({"carts"})),
)


def _reads(key: str) -> frozenset[str]:
    """What a trait reads: listed above, or by its name; the order traits read orders."""
    if key in _READS:
        return _READS[key]
    for prefix, facets in _READS_BY_PREFIX:
        if key.startswith(prefix):
            return facets
    return _ORDERS


def definitions() -> list[ComputedTrait]:
    """Every built-in computed trait, in the order of the documentation."""
    return [replace(trait, reads=_reads(trait.key)) for trait in _definitions()]


def _definitions() -> list[ComputedTrait]:
    R, F, M = RECENCY_DAYS, FREQUENCY_ORDERS, MONETARY_AMOUNTS
    return [
        ComputedTrait(
            "first_seen",
            "timestamp",
            "Time of the profile's earliest event.",
            Changes.EVENTS,
            lambda i: _time(i.aggregates.first),
        ),
        ComputedTrait(
            "last_seen",
            "timestamp",
            "Time of the profile's latest event.",
            Changes.EVENTS,
            lambda i: _time(i.aggregates.last),
        ),
        *_window_traits(),
        ComputedTrait(
            "orders_count",
            "number",
            '"Order Completed" events, ever.',
            Changes.EVENTS,
            lambda i: i.aggregates.orders,
        ),
        ComputedTrait(
            "purchases_per_month_90d",
            "number",
            "Orders in the last 90 days divided by 3.",
            Changes.WINDOWS,
            lambda i: round(i.window(90)["o"] / 3.0, 4),
        ),
        ComputedTrait(
            "total_revenue",
            "number",
            "Sum of order revenue in the profile's main currency (the currency of most "
            "orders); see revenue_by_currency for every currency.",
            Changes.EVENTS,
            lambda i: _money(i.main_revenue[1]) if i.main_currency else None,
        ),
        ComputedTrait(
            "revenue_currency",
            "string",
            "ISO 4217 code of total_revenue and average_order_value (XXX: none given).",
            Changes.EVENTS,
            lambda i: i.main_currency,
        ),
        ComputedTrait(
            "revenue_by_currency",
            "object",
            "Exact order revenue per currency, as decimal strings.",
            Changes.EVENTS,
            lambda i: {c: v[1] for c, v in sorted(i.aggregates.revenue.items())},
        ),
        ComputedTrait(
            "average_order_value",
            "number",
            "total_revenue divided by the orders in the main currency.",
            Changes.EVENTS,
            lambda i: _money(i.main_revenue[1] / i.main_revenue[0]) if i.main_revenue[0] else None,
        ),
        ComputedTrait(
            "first_purchase_date",
            "timestamp",
            "Time of the earliest order.",
            Changes.EVENTS,
            lambda i: _time(i.aggregates.first_order),
        ),
        ComputedTrait(
            "last_purchase_date",
            "timestamp",
            "Time of the latest order.",
            Changes.EVENTS,
            lambda i: _time(i.aggregates.last_order),
        ),
        ComputedTrait(
            "days_since_last_purchase",
            "number",
            "Whole days since the latest order.",
            Changes.CLOCK,
            lambda i: i.days_since_last_order,
        ),
        ComputedTrait(
            "rfm_recency",
            "number",
            f"1-5: days since the latest order at most {R[0]} → 5, {R[1]} → 4, {R[2]} → 3, "
            f"{R[3]} → 2, older → 1. Absent without orders.",
            Changes.WINDOWS,
            lambda i: (
                None if i.days_since_last_order is None else _recency_score(i.days_since_last_order)
            ),
        ),
        ComputedTrait(
            "rfm_frequency",
            "number",
            f"1-5: orders ever, 1 → 1, {F[0]} → 2, {F[1]}-{F[2] - 1} → 3, {F[2]}-{F[3] - 1} → 4, "
            f"{F[3]} or more → 5. Absent without orders.",
            Changes.EVENTS,
            lambda i: _score(i.aggregates.orders, F, True) if i.aggregates.orders else None,
        ),
        ComputedTrait(
            "rfm_monetary",
            "number",
            f"1-5: total_revenue below {M[0]} → 1, below {M[1]} → 2, below {M[2]} → 3, "
            f"below {M[3]} → 4, more → 5. Absent without orders.",
            Changes.EVENTS,
            lambda i: _score(float(i.main_revenue[1]), M, True) if i.aggregates.orders else None,
        ),
        ComputedTrait(
            "rfm_score",
            "string",
            'The three RFM scores as one code, e.g. "545".',
            Changes.WINDOWS,
            lambda i: (
                None
                if i.days_since_last_order is None
                else f"{_recency_score(i.days_since_last_order)}"
                f"{_score(i.aggregates.orders, F, True)}"
                f"{_score(float(i.main_revenue[1]), M, True)}"
            ),
        ),
        ComputedTrait(
            "email_engagement_score",
            "number",
            "Human email opens (weight 1) and clicks (weight 2), each decaying by half every "
            f"{ENGAGEMENT_HALF_LIFE_DAYS:g} days; machine opens (privacy proxies, scanners: "
            "`machine: true`) are left out.",
            Changes.CLOCK,
            _engagement,
        ),
        ComputedTrait(
            "opened_last_5_emails",
            "number",
            f"How many of the last {LAST_EMAILS} emails sent were opened by a person.",
            Changes.EVENTS,
            lambda i: _last_emails(i, 2),
        ),
        ComputedTrait(
            "clicked_last_5_emails",
            "number",
            f"How many of the last {LAST_EMAILS} emails sent were clicked.",
            Changes.EVENTS,
            lambda i: _last_emails(i, 3),
        ),
        ComputedTrait(
            "top_browsing_category",
            "string",
            "The category with the most product and page views in the last 90 days "
            "(ties: alphabetical).",
            Changes.WINDOWS,
            _top_category,
        ),
        ComputedTrait(
            "lifecycle_stage",
            "string",
            f"visitor (anonymous, no order), prospect (identified, no order), new_customer "
            f"(one order, last within {ACTIVE_DAYS} days), active_customer (more orders, last "
            f"within {ACTIVE_DAYS} days), at_risk (last order {ACTIVE_DAYS + 1}-{AT_RISK_DAYS} "
            "days ago), lapsed (older).",
            Changes.WINDOWS,
            _lifecycle,
        ),
        ComputedTrait(
            "timezone",
            "string",
            "IANA time zone of the latest event that gave one (context.timezone).",
            Changes.EVENTS,
            lambda i: i.aggregates.timezone[1] if i.aggregates.timezone else None,
        ),
        ComputedTrait(
            "locale",
            "string",
            "Locale of the latest event that gave one (context.locale).",
            Changes.EVENTS,
            lambda i: i.aggregates.locale[1] if i.aggregates.locale else None,
        ),
        ComputedTrait(
            "email_consent",
            "string",
            "Email consent: subscribed, unsubscribed or pending (double opt-in); absent "
            "when never given.",
            Changes.EVENTS,
            lambda i: (i.consents.get("email") or {}).get("status"),
        ),
    ]
