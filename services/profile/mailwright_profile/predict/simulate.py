# ruff: noqa: RUF003  (the docstrings use the papers' Greek notation)
"""Synthetic customers with known parameters, for tests, benchmarks and demos.

* `simulate_customers`: BG/NBD purchase processes (and Gamma-Gamma spend) from known
  parameters, returning the summary and the ground truth;
* `simulate_transactions`: the same as dated transactions (what a shop exports);
* `simulate_event_log` (in `simulate_events`): an event log with a planted signal for the
  churn and propensity classifiers.

All are deterministic given a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.bgnbd import BgNbd
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.summary import CustomerSummary, Transaction

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class SimulatedCustomers:
    """A simulated population: its summary, every purchase, and the latent truth."""

    summary: CustomerSummary
    purchase_customer: IntArray  # customer index of each repeat purchase
    purchase_time: FloatArray  # time of each repeat purchase since the first purchase
    purchase_amount: FloatArray | None  # amount of each repeat purchase
    first_amount: FloatArray | None  # amount of each customer's first purchase
    rate: FloatArray  # λ per customer
    dropout: FloatArray  # p per customer
    spend_scale: FloatArray | None  # ν per customer (mean spend is p_gg / ν)


def simulate_customers(
    model: BgNbd,
    T: npt.ArrayLike,
    *,
    spend: GammaGamma | None = None,
    seed: int = 0,
) -> SimulatedCustomers:
    """Customers observed for `T` time units each (an array, one value per customer)."""
    rng = np.random.default_rng(seed)
    age = np.asarray(T, dtype=np.float64)
    n = age.size
    rate = rng.gamma(model.r, 1.0 / model.alpha, size=n)
    dropout = rng.beta(model.a, model.b, size=n)
    customers, times = _purchase_times(rng, rate, dropout, age)
    frequency = np.bincount(customers, minlength=n).astype(np.float64)
    recency = np.zeros(n)
    np.maximum.at(recency, customers, times)
    money: FloatArray | None = None
    amounts = first = scale = None
    if spend is not None:
        scale = rng.gamma(spend.q, 1.0 / spend.v, size=n)
        amounts = rng.gamma(spend.p, 1.0 / scale[customers])
        first = rng.gamma(spend.p, 1.0 / scale)
        totals = np.bincount(customers, weights=amounts, minlength=n)
        money = np.divide(totals, frequency, out=np.zeros(n), where=frequency > 0)
    summary = CustomerSummary.from_arrays(frequency, recency, age, money)
    return SimulatedCustomers(summary, customers, times, amounts, first, rate, dropout, scale)


def _purchase_times(
    rng: np.random.Generator, rate: FloatArray, dropout: FloatArray, age: FloatArray
) -> tuple[IntArray, FloatArray]:
    """Repeat purchases: Poisson arrivals at rate λ until T or until dropout (prob. p
    after each repeat purchase). Vectorised over the customers still active."""
    active = np.flatnonzero((rate > 0) & (age > 0))
    clock = np.zeros(rate.size)
    out_customers: list[IntArray] = []
    out_times: list[FloatArray] = []
    while active.size:
        clock[active] += rng.exponential(1.0 / rate[active])
        active = active[clock[active] <= age[active]]
        out_customers.append(active.copy())
        out_times.append(clock[active].copy())
        active = active[rng.random(active.size) >= dropout[active]]
    if not out_customers:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    return np.concatenate(out_customers).astype(np.int64), np.concatenate(out_times)


def simulate_transactions(
    model: BgNbd,
    n_customers: int,
    *,
    start: date,
    calibration_end: date,
    spend: GammaGamma | None = None,
    seed: int = 0,
) -> tuple[list[Transaction], SimulatedCustomers]:
    """Dated transactions for customers whose first purchase falls between `start` and
    `calibration_end`; model time is in days. Amounts are rounded to cents."""
    rng = np.random.default_rng(seed + 1)
    span = (calibration_end - start).days
    first_offsets = rng.integers(0, span + 1, size=n_customers)
    age = (span - first_offsets).astype(np.float64)
    simulated = simulate_customers(model, age, spend=spend, seed=seed)
    transactions: list[Transaction] = []
    for i in range(n_customers):
        first_day = start + timedelta(days=int(first_offsets[i]))
        amount = None if simulated.first_amount is None else _cents(simulated.first_amount[i])
        transactions.append(Transaction(f"c{i}", first_day, amount))
    for k in range(simulated.purchase_customer.size):
        i = int(simulated.purchase_customer[k])
        day = start + timedelta(days=int(first_offsets[i]) + int(simulated.purchase_time[k]))
        amounts = simulated.purchase_amount
        amount = None if amounts is None else _cents(amounts[k])
        transactions.append(Transaction(f"c{i}", day, amount))
    return transactions, simulated


def _cents(value: float) -> float:
    return round(float(value), 2)
