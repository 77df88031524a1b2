"""Report arithmetic."""

from __future__ import annotations

from decimal import Decimal

from mailwright_delivery.model import Metric
from mailwright_delivery.reports import Facts, compare, holdout_lift, row, variant_comparisons


def test_rates_are_over_sent_and_click_to_open_over_human_opens() -> None:
    facts = Facts("total", sent=200, unique_opens=50, machine_opens=30, unique_clicks=10)
    result = row(facts)
    assert result.open_rate == 0.25
    assert result.click_rate == 0.05
    assert result.click_to_open == 0.2


def test_rates_of_an_empty_group_are_zero() -> None:
    assert row(Facts("total")).click_to_open == 0.0


def test_facts_add_up() -> None:
    total = Facts("a", sent=1, revenue=Decimal("2.50"), currency="EUR") + Facts(
        "b", sent=2, revenue=Decimal("1.25")
    )
    assert (total.sent, total.revenue, total.currency) == (3, Decimal("3.75"), "EUR")


def test_variant_comparison_has_an_interval_around_the_difference() -> None:
    a = Facts("variant:a", sent=1000, unique_opens=200)
    b = Facts("variant:b", sent=1000, unique_opens=260)
    (comparison,) = variant_comparisons([a, b], Metric.OPENS)
    assert comparison.left == "variant:b"
    assert comparison.right == "variant:a"
    assert abs(comparison.difference - 0.06) < 1e-12
    assert comparison.low < 0.06 < comparison.high
    assert abs(comparison.lift - 0.3) < 1e-9
    assert comparison.p_value < 0.01


def test_lift_against_the_holdout_counts_people_who_ordered() -> None:
    treated = Facts("total", audience=900, converted_people=90)
    holdout = Facts("holdout", audience=100, converted_people=5)
    lift = holdout_lift(treated, holdout)
    assert abs(lift.difference - 0.05) < 1e-12
    assert abs(lift.lift - 1.0) < 1e-9


def test_revenue_comparison_uses_means_per_send() -> None:
    a = Facts("variant:a", sent=4, revenue=Decimal(40), revenue_squares=Decimal(400))
    b = Facts("variant:b", sent=4, revenue=Decimal(80), revenue_squares=Decimal(1600))
    assert compare(b, a, Metric.REVENUE).difference == 10.0
