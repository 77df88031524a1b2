"""Transaction logs become per-customer summaries by the lifetimes convention."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.summary import CustomerSummary, Transaction


def _one(summary: CustomerSummary, customer: str) -> tuple[float, float, float, float | None]:
    i = summary.customer_ids.index(customer)
    money = None if summary.monetary_value is None else float(summary.monetary_value[i])
    return float(summary.frequency[i]), float(summary.recency[i]), float(summary.T[i]), money


def test_purchases_on_the_same_day_count_once_and_their_amounts_add_up() -> None:
    log = [
        Transaction("a", date(2024, 1, 1), 10.0),
        Transaction("a", date(2024, 1, 1), 5.0),
        Transaction("a", date(2024, 1, 8), 20.0),
        Transaction("a", date(2024, 1, 8), 4.0),
    ]
    summary = CustomerSummary.from_transactions(log, calibration_end=date(2024, 1, 31))
    assert _one(summary, "a") == (1.0, 7.0, 30.0, 24.0)


def test_monetary_value_is_the_mean_of_the_repeat_days_excluding_the_first() -> None:
    log = [
        Transaction("a", date(2024, 1, 1), 1000.0),
        Transaction("a", date(2024, 1, 3), 10.0),
        Transaction("a", date(2024, 1, 5), 30.0),
    ]
    summary = CustomerSummary.from_transactions(log)
    assert _one(summary, "a") == (2.0, 4.0, 4.0, 20.0)


def test_a_customer_without_repeat_purchases_has_zero_monetary_value() -> None:
    log = [Transaction("a", date(2024, 1, 1), 50.0), Transaction("b", date(2024, 1, 9), 5.0)]
    summary = CustomerSummary.from_transactions(log)
    assert _one(summary, "a") == (0.0, 0.0, 8.0, 0.0)


def test_purchases_after_the_calibration_end_are_ignored() -> None:
    log = [
        Transaction("a", date(2024, 1, 1)),
        Transaction("a", date(2024, 1, 10)),
        Transaction("a", date(2024, 3, 1)),
        Transaction("late", date(2024, 2, 1)),
    ]
    summary = CustomerSummary.from_transactions(log, calibration_end=date(2024, 1, 15))
    assert summary.customer_ids == ("a",)
    assert _one(summary, "a") == (1.0, 9.0, 14.0, None)


def test_week_unit_divides_day_counts_by_seven() -> None:
    log = [Transaction("a", date(2024, 1, 1)), Transaction("a", date(2024, 1, 11))]
    summary = CustomerSummary.from_transactions(
        log, calibration_end=date(2024, 1, 15), time_unit="week"
    )
    assert _one(summary, "a") == pytest.approx((1.0, 10 / 7, 2.0, None))


def test_the_order_of_transactions_does_not_matter() -> None:
    log = [
        Transaction("a", date(2024, 1, 5), 3.0),
        Transaction("b", date(2024, 1, 2), 1.0),
        Transaction("a", date(2024, 1, 1), 9.0),
        Transaction("a", date(2024, 1, 3), 4.0),
    ]
    forward = CustomerSummary.from_transactions(log)
    backward = CustomerSummary.from_transactions(list(reversed(log)))
    for customer in ("a", "b"):
        assert _one(forward, customer) == _one(backward, customer)


def test_negative_amount_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"amount: transaction 2 has amount -3\.0"):
        CustomerSummary.from_transactions(
            [Transaction("a", date(2024, 1, 1), 1.0), Transaction("a", date(2024, 1, 2), -3.0)]
        )


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "money", "message"),
    [
        ([1.0], [5.0], [4.0], None, "recency: is after T"),
        ([0.0], [2.0], [4.0], None, "recency: must be 0 when frequency is 0"),
        ([2.0], [0.0], [4.0], None, "recency: must be > 0 when frequency is > 0"),
        ([1.5], [2.0], [4.0], None, "frequency: must be a whole number"),
        ([-1.0], [0.0], [4.0], None, "frequency: must be a whole number"),
        ([1.0], [2.0], [-4.0], None, "T: must be >= 0"),
        ([1.0], [np.nan], [4.0], None, "recency: is not a finite number"),
        ([0.0], [0.0], [4.0], [12.0], "monetary_value: must be 0 when frequency is 0"),
        ([1.0], [2.0], [4.0], [-12.0], "monetary_value: must be >= 0"),
    ],
    ids=[
        "recency-after-T",
        "recency-without-repeats",
        "repeats-without-recency",
        "fractional-frequency",
        "negative-frequency",
        "negative-T",
        "nan",
        "money-without-repeats",
        "negative-money",
    ],
)
def test_inconsistent_summary_is_a_data_error_naming_the_field(
    frequency: list[float],
    recency: list[float],
    T: list[float],
    money: list[float] | None,
    message: str,
) -> None:
    with pytest.raises(DataError, match=message):
        CustomerSummary.from_arrays(frequency, recency, T, money)


@given(
    st.lists(
        st.tuples(st.sampled_from("abcde"), st.integers(0, 60), st.integers(0, 10_000)),
        min_size=1,
        max_size=80,
    ),
    st.integers(0, 70),
)
def test_summary_matches_a_brute_force_count_of_purchase_days(
    rows: list[tuple[str, int, int]], end_offset: int
) -> None:
    start = date(2024, 1, 1)
    end = date.fromordinal(start.toordinal() + end_offset)
    log = [
        Transaction(c, date.fromordinal(start.toordinal() + d), cents / 100) for c, d, cents in rows
    ]
    kept = [tx for tx in log if tx.day <= end]
    if not kept:
        with pytest.raises(DataError, match="no transactions"):
            CustomerSummary.from_transactions(log, calibration_end=end)
        return
    summary = CustomerSummary.from_transactions(log, calibration_end=end)
    assert set(summary.customer_ids) == {tx.customer_id for tx in kept}
    for customer in summary.customer_ids:
        days = sorted({tx.day for tx in kept if tx.customer_id == customer})
        totals = [
            sum(tx.amount for tx in kept if tx.customer_id == customer and tx.day == d)
            for d in days[1:]
        ]  # type: ignore[misc]
        frequency, recency, age, money = _one(summary, customer)
        assert frequency == len(days) - 1
        assert recency == (days[-1] - days[0]).days
        assert age == (end - days[0]).days
        assert money == pytest.approx(sum(totals) / len(totals) if totals else 0.0)
