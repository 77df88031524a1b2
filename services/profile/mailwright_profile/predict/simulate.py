# ruff: noqa: RUF003  (the docstrings use the papers' Greek notation)
"""Synthetic customers with known parameters, for tests, benchmarks and demos.

* `simulate_customers`: BG/NBD purchase processes (and Gamma-Gamma spend) from known
  parameters, returning the summary and the ground truth;
* `simulate_transactions`: the same as dated transactions (what a shop exports);
* `simulate_event_log`: an event log with a planted signal for the churn and propensity
  classifiers: engagement drives purchases, and engagement fades before a person churns;
* `profile_events`: such a log as the events the profile service consumes.

All are deterministic given a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from mailwright.common.v1 import event_pb2
from mailwright_profile.predict.bgnbd import BgNbd
from mailwright_profile.predict.events import CLICK, DAY, OPEN, OTHER, PURCHASE, VIEW, EventLog
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.summary import CustomerSummary, Transaction
from mailwright_profile.simulate import track

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


FADE_DAYS = 30


def simulate_event_log(n_people: int, *, start: datetime, days: int, seed: int = 0) -> EventLog:
    """Daily opens, clicks, views and purchases for `n_people` over `days` days.

    Each person has an engagement level e ~ Gamma(2, 1/2) and a churn day (exponential,
    longer for the engaged). Opens, clicks and views scale with e; over the 30 days before
    churn they fade, and after it they nearly stop. A purchase is likelier on days with
    recent product views and for engaged people, and impossible after churn. A third of
    the people read mail through a privacy proxy that "opens" every send: machine opens,
    which carry no signal. People join during the first half of the period.
    """
    rng = np.random.default_rng(seed)
    engagement = rng.gamma(2.0, 0.5, size=n_people)
    join = rng.integers(0, max(days // 2, 1), size=n_people)
    churn = join + rng.exponential(200.0 * np.sqrt(engagement))
    proxy = rng.random(n_people) < 1 / 3
    click_rate = np.clip(0.12 * engagement, 0.0, 0.6)
    base_purchase = 0.002 * engagement
    recent_views = np.zeros(n_people)
    columns: list[tuple[IntArray, int, FloatArray]] = []
    machine: list[npt.NDArray[np.bool_]] = []
    for day in range(days):
        present = day >= join
        alive = present & (day < churn)
        fading = np.clip((churn - day) / FADE_DAYS, 0.05, 1.0)
        level = np.where(alive, engagement * fading, 0.03 * engagement) * present
        opens = rng.poisson(0.2 * level)
        clicks = rng.binomial(opens, click_rate)
        views = rng.poisson(0.1 * level)
        recent_views = 0.5 * recent_views + views
        hazard = base_purchase + 0.05 * recent_views
        bought = alive & (rng.random(n_people) < -np.expm1(-hazard))
        sent = present & (day % 3 == 0)
        for kind, counts in ((OPEN, opens), (CLICK, clicks), (VIEW, views)):
            who = np.repeat(np.arange(n_people), counts)
            columns.append((who, kind, np.full(who.size, float(day))))
            machine.append(np.zeros(who.size, dtype=bool))
        for kind, mask, is_machine in (
            (PURCHASE, bought, False),
            (OPEN, sent & proxy, True),
            (OTHER, join == day, False),
        ):
            who = np.flatnonzero(mask)
            columns.append((who, kind, np.full(who.size, float(day))))
            machine.append(np.full(who.size, is_machine))
    person = np.concatenate([c[0] for c in columns]).astype(np.int64)
    kinds = np.concatenate([np.full(c[0].size, c[1]) for c in columns])
    day_of = np.concatenate([c[2] for c in columns])
    time = start.timestamp() + (day_of + rng.random(person.size)) * DAY
    # Spend per purchase follows the Gamma-Gamma model: Gamma(6, ν) with ν varying by person.
    scale = rng.gamma(4.0, 1.0 / 15.0, size=n_people)
    spend = np.round(rng.gamma(6.0, 1.0 / scale[person]), 2)
    value = np.where(kinds == PURCHASE, spend, 0.0)
    people = tuple(f"p{i}" for i in range(n_people))
    return EventLog.from_arrays(people, person, kinds, time, value, np.concatenate(machine))


_EVENT_NAMES = {
    PURCHASE: "Order Completed",
    OPEN: "Email Opened",
    CLICK: "Email Clicked",
    VIEW: "Product Viewed",
    OTHER: "Signed Up",
}


def profile_events(
    log: EventLog,
    *,
    workspace: str = "acme",
    categories: int = 5,
    items_per_category: int = 8,
    seed: int = 0,
) -> list[event_pb2.Event]:
    """A simulated log as the events the profile service consumes (Segment's e-commerce
    and email specs), one user id per person (`u<n>` for person `p<n>`).

    Each person prefers one category: product views and orders are of its products
    (`sku-<category>-<n>`) four times in five, so that co-views and co-purchases carry a
    signal. Every third person's events carry the timezone America/New_York.
    """
    rng = np.random.default_rng(seed)
    favourite = {person: i % categories for i, person in enumerate(log.people)}
    found = []
    for row in range(len(log)):
        person = log.people[int(log.person[row])]
        kind = int(log.kind[row])
        moment = datetime.fromtimestamp(float(log.time[row]), UTC)
        properties: dict[str, object] = {}
        if kind in (VIEW, PURCHASE):
            category = favourite[person] if rng.random() < 0.8 else int(rng.integers(categories))
            item = f"sku-{category}-{int(rng.integers(items_per_category))}"
            if kind == VIEW:
                properties = {"product_id": item, "category": f"c{category}"}
            else:
                properties = {
                    "revenue": float(log.value[row]),
                    "currency": "EUR",
                    "products": [{"product_id": item, "quantity": 1}],
                }
        elif kind in (OPEN, CLICK):
            properties = {"send_id": f"send-{int(moment.timestamp()) // 259200}"}
            if bool(log.machine[row]):
                properties["machine"] = True
        number = int(person.removeprefix("p")) if person.startswith("p") else row
        context = {"timezone": "America/New_York"} if number % 3 == 0 else None
        found.append(
            track(
                _EVENT_NAMES[kind],
                workspace=workspace,
                at=moment,
                message_id=f"sim-{seed}-{row}",
                user_id=f"u{number}",
                properties=properties,
                context=context,
            )
        )
    return found
