"""Computed traits: the incremental aggregates against a plain recomputation from the
whole history, in any order, split and merged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_profile.computed.aggregates import (
    CART_ADD,
    EMAIL_CLICK,
    EMAIL_OPEN,
    EMAIL_SENT,
    ORDER,
    OTHER,
    PAGE,
    PRODUCT_VIEW,
    Activity,
    Aggregates,
)
from mailwright_profile.computed.definitions import _time
from mailwright_profile.computed.definitions import _top as top_entries
from mailwright_profile.computed.model import (
    ACTIVE_DAYS,
    AT_RISK_DAYS,
    RECENCY_DAYS,
    TOP_ENTRIES,
    WINDOWS,
)
from mailwright_profile.computed.registry import REGISTRY, evaluate_all, next_change
from mailwright_profile.normalizers import parse_timestamp, timestamp_text
from mailwright_profile.traits import sortable_time

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
KINDS = (PAGE, PRODUCT_VIEW, CART_ADD, ORDER, EMAIL_SENT, EMAIL_OPEN, EMAIL_CLICK, OTHER)

activities = st.lists(
    st.builds(
        Activity,
        time=st.integers(0, 200 * 24).map(lambda h: NOW - timedelta(hours=h)),
        kind=st.sampled_from(KINDS),
        product=st.one_of(st.none(), st.sampled_from(["sku-1", "sku-2", "sku-3"])),
        category=st.one_of(st.none(), st.sampled_from(["shoes", "bags"])),
        revenue=st.one_of(st.none(), st.decimals("0", "900", places=2)),
        currency=st.one_of(st.none(), st.sampled_from(["EUR", "USD"])),
        send_id=st.one_of(st.none(), st.sampled_from([f"s{i}" for i in range(8)])),
        machine=st.booleans(),
        timezone=st.one_of(st.none(), st.sampled_from(["Europe/Paris", "America/New_York"])),
        locale=st.one_of(st.none(), st.sampled_from(["fr-FR", "en-US"])),
        identified=st.booleans(),
    ),
    max_size=40,
)


# -- the plain recomputation --------------------------------------------------------------


def _in(activity: Activity, days: int, now: datetime) -> bool:
    day = activity.time.astimezone(UTC).date()
    today = now.date()
    return today - timedelta(days=days - 1) <= day <= today


def _top(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:20])


def _count_by(items: Sequence[Activity], attribute: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        value = getattr(item, attribute)
        if value:
            counts[value] = counts.get(value, 0) + 1
    return counts


def _latest(items: Sequence[Activity], attribute: str) -> str | None:
    found = [
        (timestamp_text(a.time), getattr(a, attribute)) for a in items if getattr(a, attribute)
    ]
    return max(found)[1] if found else None


def reference(items: Sequence[Activity], consents: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Every computed trait, from the list of activities, the obvious way."""
    values: dict[str, Any] = {}
    if items:
        values["first_seen"] = timestamp_text(min(a.time for a in items))
        values["last_seen"] = timestamp_text(max(a.time for a in items))
    for days in (7, 30, 90):
        recent = [a for a in items if _in(a, days, now)]
        pages = [a for a in recent if a.kind == PAGE]
        views = [a for a in recent if a.kind == PRODUCT_VIEW]
        values[f"page_views_{days}d"] = len(pages)
        values[f"page_views_by_category_{days}d"] = _top(_count_by(pages, "category"))
        values[f"product_views_{days}d"] = len(views)
        values[f"product_views_by_product_{days}d"] = _top(_count_by(views, "product"))
        values[f"product_views_by_category_{days}d"] = _top(_count_by(views, "category"))
        values[f"cart_adds_{days}d"] = sum(1 for a in recent if a.kind == CART_ADD)
    orders = [a for a in items if a.kind == ORDER]
    values["orders_count"] = len(orders)
    values["purchases_per_month_90d"] = round(sum(1 for a in orders if _in(a, 90, now)) / 3.0, 4)
    per_currency: dict[str, list[Any]] = {}
    for order in orders:
        held = per_currency.setdefault(order.currency or "XXX", [0, Decimal(0)])
        held[0] += 1
        held[1] += order.revenue if order.revenue is not None else Decimal(0)
    if orders:
        main = max(per_currency, key=lambda c: (per_currency[c][0], per_currency[c][1], c))
        count, total = per_currency[main]
        last = max(a.time for a in orders)
        days_since = max((now - last).days, 0)
        recency = 5 - sum(1 for bound in (30, 60, 90, 180) if days_since > bound)
        frequency = 1 + sum(1 for bound in (2, 3, 5, 10) if len(orders) >= bound)
        monetary = 1 + sum(1 for bound in (50, 150, 500, 1500) if float(total) >= bound)
        values.update(
            total_revenue=float(total.quantize(Decimal("0.01"))),
            revenue_currency=main,
            average_order_value=float((total / count).quantize(Decimal("0.01"))),
            first_purchase_date=timestamp_text(min(a.time for a in orders)),
            last_purchase_date=timestamp_text(last),
            days_since_last_purchase=days_since,
            rfm_recency=recency,
            rfm_frequency=frequency,
            rfm_monetary=monetary,
            rfm_score=f"{recency}{frequency}{monetary}",
        )
        if days_since <= 90:
            values["lifecycle_stage"] = "new_customer" if len(orders) == 1 else "active_customer"
        else:
            values["lifecycle_stage"] = "at_risk" if days_since <= 180 else "lapsed"
    else:
        identified = any(a.identified for a in items)
        values["lifecycle_stage"] = "prospect" if identified else "visitor"
    values["revenue_by_currency"] = {c: str(v[1]) for c, v in sorted(per_currency.items())}
    human = [
        a
        for a in items
        if a.send_id and (a.kind == EMAIL_CLICK or (a.kind == EMAIL_OPEN and not a.machine))
    ]
    score = sum(
        (1.0 if a.kind == EMAIL_OPEN else 2.0) * 2 ** (-(now - a.time).total_seconds() / 86400 / 30)
        for a in human
    )
    values["email_engagement_score"] = round(score, 6)
    sends: dict[str, list[Any]] = {}
    for a in items:
        if a.send_id and a.kind == EMAIL_SENT:
            held = sends.setdefault(a.send_id, [None, None, 0, 0])
            held[0] = min(filter(None, [held[0], timestamp_text(a.time)]))
    for a in human:
        held = sends.setdefault(a.send_id or "", [None, None, 0, 0])
        stamp = a.time.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        held[1] = min(filter(None, [held[1], stamp]))
        held[2 if a.kind == EMAIL_OPEN else 3] = 1

    def sort_key(item: tuple[str, list[Any]]) -> tuple[str, str]:
        sent = item[1][0]
        sent_sortable = (
            datetime.fromisoformat(sent.removesuffix("Z")).isoformat(timespec="microseconds") + "Z"
            if sent
            else None
        )
        return (sent_sortable or item[1][1] or "", item[0])

    last_five = sorted(sends.items(), key=sort_key, reverse=True)[:5]
    values["opened_last_5_emails"] = sum(1 for _, held in last_five if held[2])
    values["clicked_last_5_emails"] = sum(1 for _, held in last_five if held[3])
    browsing = [a for a in items if _in(a, 90, now) and a.kind in (PAGE, PRODUCT_VIEW)]
    categories = _count_by(browsing, "category")
    if categories:
        values["top_browsing_category"] = min(categories, key=lambda c: (-categories[c], c))
    for attribute in ("timezone", "locale"):
        latest = _latest(items, attribute)
        if latest:
            values[attribute] = latest
    status = (consents.get("email") or {}).get("status")
    if status:
        values["email_consent"] = status
    return values


def aggregate(items: Sequence[Activity]) -> Aggregates:
    aggregates = Aggregates()
    for item in items:
        aggregates.add(item)
    return aggregates


def same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float) and key == "email_engagement_score":
            assert math.isclose(actual[key], value, rel_tol=1e-6, abs_tol=1e-6), key
        else:
            assert actual[key] == value, key


# -- properties --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(items=activities, later=st.integers(0, 60))
def test_incremental_traits_equal_a_recomputation_from_the_history(
    items: list[Activity], later: int
) -> None:
    now = NOW + timedelta(days=later)
    same(evaluate_all(aggregate(items), {}, now), reference(items, {}, now))


@settings(max_examples=100, deadline=None)
@given(items=activities, data=st.data())
def test_the_order_of_events_does_not_matter(items: list[Activity], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(items))
    same(evaluate_all(aggregate(shuffled), {}, NOW), evaluate_all(aggregate(items), {}, NOW))


@settings(max_examples=100, deadline=None)
@given(items=activities, cut=st.integers(0, 40))
def test_merged_aggregates_equal_the_aggregates_of_all_events(
    items: list[Activity], cut: int
) -> None:
    left, right = aggregate(items[:cut]), aggregate(items[cut:])
    left.merge(right)
    same(evaluate_all(left, {}, NOW), evaluate_all(aggregate(items), {}, NOW))


@settings(max_examples=100, deadline=None)
@given(items=activities)
def test_aggregates_survive_json(items: list[Activity]) -> None:
    held = aggregate(items)
    again = Aggregates.from_json(held.to_json())
    same(evaluate_all(again, {}, NOW), evaluate_all(held, {}, NOW))


# -- examples ----------------------------------------------------------------------------


def test_machine_opens_do_not_count_as_engagement() -> None:
    items = [
        Activity(NOW - timedelta(days=1), EMAIL_SENT, send_id="s1"),
        Activity(NOW, EMAIL_OPEN, send_id="s1", machine=True),
    ]
    values = evaluate_all(aggregate(items), {}, NOW)
    assert values["email_engagement_score"] == 0.0
    assert values["opened_last_5_emails"] == 0


def test_engagement_halves_every_thirty_days() -> None:
    values = evaluate_all(
        aggregate([Activity(NOW, EMAIL_OPEN, send_id="s1")]), {}, NOW + timedelta(days=30)
    )
    assert values["email_engagement_score"] == pytest.approx(0.5)


def test_a_view_leaves_the_seven_day_window_after_seven_days() -> None:
    held = aggregate([Activity(NOW, PRODUCT_VIEW, product="sku-1")])
    assert evaluate_all(held, {}, NOW + timedelta(days=6))["product_views_7d"] == 1
    assert evaluate_all(held, {}, NOW + timedelta(days=7))["product_views_7d"] == 0
    assert next_change(held, NOW) == datetime(2025, 6, 8, tzinfo=UTC)


def _next_change_day_by_day(held: Aggregates, now: datetime) -> datetime | None:
    """`next_change` the slow way: every day of every window, then the order bounds."""
    moments = []
    for day_text in held.days:
        for days in WINDOWS:
            leaves = datetime.fromisoformat(day_text).replace(tzinfo=UTC) + timedelta(days=days)
            if leaves > now:
                moments.append(leaves)
    if held.last_order is not None:
        last_order = datetime.fromisoformat(held.last_order.replace("Z", "+00:00"))
        for days in (*RECENCY_DAYS, ACTIVE_DAYS, AT_RISK_DAYS):
            moments.append(last_order + timedelta(days=days + 1))
    future = [m for m in moments if m > now]
    return min(future) if future else None


@settings(max_examples=150, deadline=None)
@given(activities, st.integers(-10 * 24, 200 * 24))
def test_next_change_is_the_first_moment_a_window_or_bound_moves(
    items: list[Activity], hours: int
) -> None:
    held = aggregate(items)
    now = NOW + timedelta(hours=hours)
    assert next_change(held, now) == _next_change_day_by_day(held, now)


@pytest.mark.parametrize("days", WINDOWS)
@pytest.mark.parametrize("hour", [0, 13])
def test_next_change_at_the_edge_of_a_window(days: int, hour: int) -> None:
    now = NOW.replace(hour=hour)
    edge = aggregate(
        [
            Activity(now - timedelta(days=days), PAGE),  # leaves this window today
            Activity(now - timedelta(days=days - 1), PAGE),  # leaves it tomorrow
        ]
    )
    assert next_change(edge, now) == _next_change_day_by_day(edge, now)


def test_revenue_is_exact_per_currency() -> None:
    items = [
        Activity(NOW, ORDER, revenue=Decimal("0.10"), currency="EUR"),
        Activity(NOW, ORDER, revenue=Decimal("0.20"), currency="EUR"),
        Activity(NOW, ORDER, revenue=Decimal("5"), currency="USD"),
    ]
    values = evaluate_all(aggregate(items), {}, NOW)
    assert values["revenue_by_currency"] == {"EUR": "0.30", "USD": "5"}
    assert (values["total_revenue"], values["revenue_currency"]) == (0.3, "EUR")
    assert values["average_order_value"] == 0.15


def test_every_computed_trait_is_defined_once_with_a_type_and_meaning() -> None:
    keys = REGISTRY.keys()
    assert len(keys) == len(set(keys))
    for trait in REGISTRY:
        assert trait.type in ("number", "string", "timestamp", "object", "boolean", "list")
        assert trait.description.endswith(".") or trait.description.endswith(")")


def _time_by_parsing(text: str | None) -> str | None:
    """What the time traits show, the long way: parse, then format."""
    moment = parse_timestamp(text)
    return None if moment is None else timestamp_text(moment)


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    whole=st.booleans(),
    edit=st.tuples(st.integers(0, 26), st.sampled_from("0123456789:-TZ .24x")),
    edited=st.booleans(),
)
def test_time_traits_show_the_stamp_as_parsing_and_formatting_it_would(
    moment: datetime, whole: bool, edit: tuple[int, str], edited: bool
) -> None:
    stamp = sortable_time(moment.replace(microsecond=0) if whole else moment)
    if edited:  # a text that is not quite a stamp: an impossible date, hour 24, …
        stamp = stamp[: edit[0]] + edit[1] + stamp[edit[0] + 1 :]
    assert _time(stamp) == _time_by_parsing(stamp)


def test_time_traits_of_odd_texts() -> None:
    for text in (
        None,
        "",
        "2025-02-30T10:00:00.000000Z",
        "2025-01-01T24:00:00.000000Z",
        "2025-01-01T10:00:00Z",
        "2025-01-01 10:00:00.000001Z",
    ):
        assert _time(text) == _time_by_parsing(text)


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(
        st.text(alphabet="abcAB é", max_size=3), st.integers(0, 4), max_size=TOP_ENTRIES + 6
    )
)
def test_top_entries_rank_by_count_then_key(counts: dict[str, int]) -> None:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_ENTRIES]
    assert list(top_entries(counts).items()) == ranked  # the same entries, same order
