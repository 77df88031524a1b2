"""How good a probability is: ranking (AUC, precision and lift at the top decile) and
calibration (a reliability table, the Brier score, the expected calibration error)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mailwright_profile.predict.errors import DataError


@dataclass(frozen=True)
class CalibrationBin:
    """Predictions in [lower, upper): how many, their mean, and how often the event happened."""

    lower: float
    upper: float
    count: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class ClassifierMetrics:
    n: int
    positives: int
    base_rate: float
    auc: float
    precision_at_top_decile: float
    lift_at_top_decile: float
    brier: float
    expected_calibration_error: float
    calibration: tuple[CalibrationBin, ...]
    lift_by_decile: tuple[float, ...] = ()
    """The positive rate of each tenth of the rows by score (highest first) over the base
    rate: a lift chart."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def precision_at_top(labels: npt.ArrayLike, scores: npt.ArrayLike, fraction: float) -> float:
    """The share of positives among the highest-scored `fraction` of rows (at least one)."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    k = max(1, math.ceil(fraction * y.size))
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean())


def lift_by_decile(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[float, ...]:
    """Positive rate per score decile (highest scores first) over the overall rate."""
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    base = y.mean()
    if y.size < 10 or base == 0:
        return ()
    order = np.argsort(-s, kind="stable")
    return tuple(float(part.mean() / base) for part in np.array_split(y[order], 10))


def calibration_table(
    labels: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = 10
) -> tuple[CalibrationBin, ...]:
    """Equal-width reliability bins over [0, 1]; empty bins are left out."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        if count:
            table.append(
                CalibrationBin(
                    float(edges[b]),
                    float(edges[b + 1]),
                    count,
                    float(p[members].mean()),
                    float(y[members].mean()),
                )
            )
    return tuple(table)


def evaluate(labels: npt.ArrayLike, probabilities: npt.ArrayLike) -> ClassifierMetrics:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise DataError("probabilities", "labels and probabilities differ in shape")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise DataError("probabilities", "must be finite and within [0, 1]")
    positives = int(y.sum())
    if positives in (0, y.size):
        raise DataError("labels", "need both outcomes to evaluate (all labels are equal)")
    from sklearn.metrics import roc_auc_score

    base_rate = positives / y.size
    precision = precision_at_top(y, p, 0.1)
    table = calibration_table(y, p)
    ece = sum(b.count * abs(b.mean_predicted - b.observed_rate) for b in table) / y.size
    return ClassifierMetrics(
        n=int(y.size),
        positives=positives,
        base_rate=base_rate,
        auc=float(roc_auc_score(y, p)),
        precision_at_top_decile=precision,
        lift_at_top_decile=precision / base_rate,
        brier=float(np.mean((p - y) ** 2)),
        expected_calibration_error=float(ece),
        calibration=table,
        lift_by_decile=lift_by_decile(y, p),
    )
