"""Point-in-time features and labels for the churn and propensity classifiers.

The rule that keeps them honest: features at a cutoff c are computed from events strictly
before c (the log is cut at c first, so no later event can reach them), and labels only
from the window [c, c + horizon). The population at c is everyone with an event before c.

Features are recency, frequency and monetary aggregates over trailing windows, email
engagement (human opens and clicks; machine opens are dropped), product views, tenure and
the trend of engagement. "Never happened" is NaN, which the gradient-boosting model
handles natively.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import (
    CLICK,
    DAY,
    OPEN,
    PURCHASE,
    VIEW,
    EventLog,
    timestamp,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
TaskName = Literal["churn", "propensity"]

WINDOWS: dict[int, tuple[int, ...]] = {
    PURCHASE: (30, 90, 365),
    OPEN: (7, 30, 90),
    CLICK: (30, 90),
    VIEW: (7, 30),
}
KIND_NAMES = {PURCHASE: "purchases", OPEN: "opens", CLICK: "clicks", VIEW: "views"}


def feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for kind, windows in WINDOWS.items():
        names += [f"{KIND_NAMES[kind]}_{w}d" for w in windows]
        names.append(f"days_since_last_{KIND_NAMES[kind].rstrip('s')}")
    return (
        *names,
        "purchases_total",
        "revenue_90d",
        "revenue_total",
        "mean_days_between_purchases",
        "tenure_days",
        "days_since_last_event",
        "opens_trend",
    )


FEATURE_NAMES = feature_names()


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """One row per person in `person_ids`, one column per name in `names`."""

    cutoff: datetime
    person_ids: tuple[str, ...]
    names: tuple[str, ...]
    values: FloatArray

    def column(self, name: str) -> FloatArray:
        return np.asarray(self.values[:, self.names.index(name)], dtype=np.float64)


@dataclass(frozen=True)
class Task:
    """What to predict. Propensity: a purchase in [c, c + horizon). Churn: among people
    who bought in the `active_days` before c, no purchase in [c, c + horizon)."""

    name: TaskName
    horizon_days: int = 30
    active_days: int = 90

    def __post_init__(self) -> None:
        if self.name not in ("churn", "propensity"):
            raise DataError("task", f"must be 'churn' or 'propensity', got {self.name!r}")
        if self.horizon_days <= 0 or self.active_days <= 0:
            raise DataError("horizon_days", "horizon and active window must be positive")


def _count(log: EventLog, mask: npt.NDArray[np.bool_], n: int) -> FloatArray:
    return np.bincount(log.person[mask], minlength=n).astype(np.float64)


def _last(log: EventLog, mask: npt.NDArray[np.bool_], n: int) -> FloatArray:
    last = np.full(n, -np.inf)
    np.maximum.at(last, log.person[mask], log.time[mask])
    return last


def _sum(log: EventLog, mask: npt.NDArray[np.bool_], n: int) -> FloatArray:
    return np.bincount(log.person[mask], weights=log.value[mask], minlength=n).astype(np.float64)


def _first(log: EventLog, mask: npt.NDArray[np.bool_], n: int) -> FloatArray:
    first = np.full(n, np.inf)
    np.minimum.at(first, log.person[mask], log.time[mask])
    return first


def build_features(log: EventLog, cutoff: datetime) -> FeatureMatrix:
    """Features at `cutoff` for everyone with an event before it, from those events only."""
    past = log.before(cutoff)
    c = timestamp(cutoff, "cutoff")
    n = len(past.people)
    human = ~past.machine
    columns: dict[str, FloatArray] = {}
    for kind, windows in WINDOWS.items():
        of_kind = (past.kind == kind) & human
        for window in windows:
            columns[f"{KIND_NAMES[kind]}_{window}d"] = _count(
                past, of_kind & (past.time >= c - window * DAY), n
            )
        last = _last(past, of_kind, n)
        columns[f"days_since_last_{KIND_NAMES[kind].rstrip('s')}"] = np.where(
            np.isfinite(last), (c - last) / DAY, np.nan
        )
    purchases = past.kind == PURCHASE
    columns["purchases_total"] = _count(past, purchases, n)
    recent = purchases & (past.time >= c - 90 * DAY)
    columns["revenue_90d"] = _sum(past, recent, n)
    columns["revenue_total"] = _sum(past, purchases, n)
    count = columns["purchases_total"]
    span = (_last(past, purchases, n) - _first(past, purchases, n)) / DAY
    columns["mean_days_between_purchases"] = np.where(
        count >= 2, span / np.maximum(count - 1, 1), np.nan
    )
    everything = np.ones(len(past), dtype=bool)
    first_seen = _first(past, everything, n)
    columns["tenure_days"] = (c - first_seen) / DAY
    columns["days_since_last_event"] = (c - _last(past, everything, n)) / DAY
    opens = (past.kind == OPEN) & human
    previous = _count(past, opens & (past.time >= c - 60 * DAY) & (past.time < c - 30 * DAY), n)
    columns["opens_trend"] = columns["opens_30d"] - previous
    present = np.isfinite(first_seen)
    values = np.column_stack([columns[name] for name in FEATURE_NAMES])[present]
    ids = tuple(person for person, keep in zip(past.people, present, strict=True) if keep)
    return FeatureMatrix(cutoff, ids, FEATURE_NAMES, values)


def build_labels(
    log: EventLog, features: FeatureMatrix, task: Task
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(in_population, label) per row of `features`, from the window after the cutoff."""
    start = timestamp(features.cutoff, "cutoff")
    end = start + task.horizon_days * DAY
    window = (log.kind == PURCHASE) & (log.time >= start) & (log.time < end)
    bought = np.zeros(len(log.people), dtype=bool)
    bought[log.person[window]] = True
    index = {person: i for i, person in enumerate(log.people)}
    rows = np.array([index[p] for p in features.person_ids], dtype=np.int64)
    bought_rows = bought[rows]
    if task.name == "propensity":
        return np.ones(rows.size, dtype=bool), bought_rows.astype(np.int64)
    active = features.column("days_since_last_purchase") <= task.active_days
    return active, (~bought_rows).astype(np.int64)


@dataclass(frozen=True, eq=False)
class LabelledSet:
    features: FeatureMatrix
    labels: npt.NDArray[np.int64]


def labelled_set(
    log: EventLog, cutoff: datetime, task: Task, *, observed_until: datetime | None = None
) -> LabelledSet:
    """Features at `cutoff` and labels from [cutoff, cutoff + horizon), for the task's
    population. The label window must be fully observed."""
    observed = observed_until if observed_until is not None else log.last_time()
    window_end = cutoff + timedelta(days=task.horizon_days)
    if window_end > observed:
        raise DataError(
            "cutoff",
            f"the label window ends {window_end.isoformat()}, after the data end "
            f"{observed.isoformat()}",
        )
    features = build_features(log, cutoff)
    population, labels = build_labels(log, features, task)
    chosen = FeatureMatrix(
        cutoff,
        tuple(p for p, keep in zip(features.person_ids, population, strict=True) if keep),
        features.names,
        features.values[population],
    )
    return LabelledSet(chosen, labels[population])
