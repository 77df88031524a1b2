"""Per-customer transaction summaries: the sufficient statistics of BG/NBD and Gamma-Gamma.

A summary holds, for each customer, `frequency` (repeat purchase days), `recency` (time
from the first to the last purchase), `T` (time from the first purchase to the end of the
calibration period) and optionally `monetary_value` (mean spend of the repeat purchase
days). The definitions follow the convention of the `lifetimes` package's
`summary_data_from_transaction_data` with daily periods:

* purchases on the same day are one purchase (their amounts are summed);
* the first purchase day defines the customer's cohort and is not counted in `frequency`;
* `monetary_value` is the mean of the repeat days' totals (the first day is excluded, since
  it is often atypical), and 0 for a customer with no repeat purchase;
* purchases after the calibration end are ignored, as are customers whose first purchase
  comes after it.

Durations are measured in whole days and expressed in the chosen time unit (a week is 7
days, so weekly figures are fractional, as in the CDNOW sample).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError

FloatArray = npt.NDArray[np.float64]
TimeUnit = Literal["day", "week"]
DAYS_PER_UNIT: dict[str, int] = {"day": 1, "week": 7}


@dataclass(frozen=True)
class Transaction:
    """One purchase: who, on which day, and (optionally) for how much."""

    customer_id: str
    day: date
    amount: float | None = None


@dataclass(frozen=True, eq=False)
class CustomerSummary:
    """Validated per-customer arrays; row i of each array is customer `customer_ids[i]`."""

    customer_ids: tuple[str, ...]
    frequency: FloatArray
    recency: FloatArray
    T: FloatArray
    monetary_value: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.customer_ids)
        for name in ("frequency", "recency", "T", "monetary_value"):
            values = getattr(self, name)
            if values is None:
                continue
            array = np.ascontiguousarray(values, dtype=np.float64)
            if array.ndim != 1 or array.shape[0] != n:
                raise DataError(name, f"expected {n} values, got shape {array.shape}")
            object.__setattr__(self, name, array)
        _validate(self)

    def __len__(self) -> int:
        return len(self.customer_ids)

    @property
    def repeaters(self) -> npt.NDArray[np.bool_]:
        """Customers with at least one repeat purchase."""
        return self.frequency > 0

    @classmethod
    def from_arrays(
        cls,
        frequency: npt.ArrayLike,
        recency: npt.ArrayLike,
        T: npt.ArrayLike,
        monetary_value: npt.ArrayLike | None = None,
        customer_ids: Iterable[str] | None = None,
    ) -> CustomerSummary:
        freq = np.asarray(frequency, dtype=np.float64)
        ids = (
            tuple(customer_ids)
            if customer_ids is not None
            else tuple(str(i) for i in range(freq.shape[0]))
        )
        money = None if monetary_value is None else np.asarray(monetary_value, dtype=np.float64)
        return cls(
            ids,
            freq,
            np.asarray(recency, dtype=np.float64),
            np.asarray(T, dtype=np.float64),
            money,
        )

    @classmethod
    def from_transactions(
        cls,
        transactions: Iterable[Transaction],
        *,
        calibration_end: date | None = None,
        time_unit: TimeUnit = "day",
    ) -> CustomerSummary:
        """Summarise a transaction log (see the module docstring for the convention)."""
        if time_unit not in DAYS_PER_UNIT:
            raise DataError("time_unit", f"must be 'day' or 'week', got {time_unit!r}")
        days_by_customer: dict[str, dict[date, float]] = {}
        with_amounts: bool | None = None
        latest: date | None = None
        for number, tx in enumerate(transactions, start=1):
            has_amount = tx.amount is not None
            if with_amounts is None:
                with_amounts = has_amount
            elif with_amounts != has_amount:
                raise DataError("amount", f"transaction {number} mixes rows with and without")
            if tx.amount is not None and not (math.isfinite(tx.amount) and tx.amount >= 0):
                raise DataError("amount", f"transaction {number} has amount {tx.amount!r}")
            if not tx.customer_id:
                raise DataError("customer_id", f"transaction {number} has an empty customer id")
            if calibration_end is not None and tx.day > calibration_end:
                continue
            latest = tx.day if latest is None or tx.day > latest else latest
            per_day = days_by_customer.setdefault(tx.customer_id, {})
            per_day[tx.day] = per_day.get(tx.day, 0.0) + (tx.amount or 0.0)
        if not days_by_customer:
            raise DataError("transactions", "no transactions on or before the calibration end")
        end = calibration_end if calibration_end is not None else latest
        assert end is not None
        return _summarise(days_by_customer, end, DAYS_PER_UNIT[time_unit], bool(with_amounts))


def _summarise(
    days_by_customer: dict[str, dict[date, float]], end: date, unit_days: int, amounts: bool
) -> CustomerSummary:
    n = len(days_by_customer)
    ids = tuple(days_by_customer)
    frequency = np.empty(n)
    recency = np.empty(n)
    age = np.empty(n)
    money = np.zeros(n) if amounts else None
    for i, customer in enumerate(ids):
        per_day = days_by_customer[customer]
        days = sorted(per_day)
        first, last = days[0], days[-1]
        frequency[i] = len(days) - 1
        recency[i] = (last - first).days / unit_days
        age[i] = (end - first).days / unit_days
        if money is not None and len(days) > 1:
            money[i] = math.fsum(per_day[d] for d in days[1:]) / (len(days) - 1)
    return CustomerSummary(ids, frequency, recency, age, money)


def _first_row(mask: npt.NDArray[np.bool_], summary: CustomerSummary) -> str:
    rows = np.flatnonzero(mask)
    first = int(rows[0])
    return f"{rows.size} customer(s), first {summary.customer_ids[first]!r} (row {first + 1})"


def _validate(summary: CustomerSummary) -> None:
    freq, rec, age = summary.frequency, summary.recency, summary.T
    checks: list[tuple[str, npt.NDArray[np.bool_], str]] = [
        ("frequency", ~np.isfinite(freq), "is not a finite number"),
        ("recency", ~np.isfinite(rec), "is not a finite number"),
        ("T", ~np.isfinite(age), "is not a finite number"),
        ("frequency", (freq < 0) | (freq != np.floor(freq)), "must be a whole number >= 0"),
        ("recency", rec < 0, "must be >= 0"),
        ("T", age < 0, "must be >= 0"),
        ("recency", rec > age, "is after T (the last purchase is after the calibration end)"),
        ("recency", (freq == 0) & (rec != 0), "must be 0 when frequency is 0"),
        ("recency", (freq > 0) & (rec == 0), "must be > 0 when frequency is > 0"),
    ]
    money = summary.monetary_value
    if money is not None:
        checks += [
            ("monetary_value", ~np.isfinite(money), "is not a finite number"),
            ("monetary_value", money < 0, "must be >= 0 (negative amount)"),
            ("monetary_value", (freq == 0) & (money != 0), "must be 0 when frequency is 0"),
        ]
    for field, bad, message in checks:
        if bad.any():
            raise DataError(field, f"{message}: {_first_row(bad, summary)}")
