"""Churn risk and purchase propensity: calibrated gradient boosting on point-in-time
features, validated forward in time against a recency-only baseline.

Training uses features at `train_cutoff` with labels from the horizon after it; validation
uses features at a later `validation_cutoff` with labels after that, so the model is judged
on a period it has never seen, the way it will be used. The two label windows must not
overlap. Probabilities are calibrated by cross-validation (`CalibratedClassifierCV`,
isotonic with enough data, Platt scaling otherwise).

Gradient boosting runs on one OpenMP thread unless told otherwise: on a shared machine,
OpenMP's spinning threads make a small fit twenty times slower, and the profile service
trains beside other work. Pass `threads` for a large fit on an idle machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import EventLog
from mailwright_profile.predict.features import FeatureMatrix, Task, labelled_set
from mailwright_profile.predict.metrics import ClassifierMetrics, evaluate

FloatArray = npt.NDArray[np.float64]
Calibration = Literal["auto", "isotonic", "sigmoid"]
# Isotonic regression needs enough data per fold not to overfit its steps.
ISOTONIC_MIN_ROWS = 2000
MIN_ROWS = 50
MIN_SAMPLES_LEAF = 40


def _recency_inputs(features: FeatureMatrix) -> FloatArray:
    days = features.column("days_since_last_purchase")
    never = np.isnan(days)
    return np.column_stack([np.log1p(np.nan_to_num(days, nan=0.0)), never.astype(np.float64)])


@dataclass(frozen=True, eq=False)
class RecencyBaseline:
    """Logistic regression on days since the last purchase (and whether there was one)."""

    model: Any

    @classmethod
    def fit(cls, features: FeatureMatrix, labels: npt.NDArray[np.int64]) -> RecencyBaseline:
        from sklearn.linear_model import LogisticRegression

        return cls(LogisticRegression().fit(_recency_inputs(features), labels))

    def predict(self, features: FeatureMatrix) -> FloatArray:
        return np.asarray(
            self.model.predict_proba(_recency_inputs(features))[:, 1], dtype=np.float64
        )


@dataclass(frozen=True, eq=False)
class TrainedClassifier:
    task: Task
    feature_names: tuple[str, ...]
    model: Any
    train_cutoff: datetime
    validation_cutoff: datetime
    train_rows: int
    metrics: ClassifierMetrics  # on the validation period
    baseline_metrics: ClassifierMetrics  # the recency-only baseline, same rows

    def predict(self, features: FeatureMatrix) -> FloatArray:
        """Calibrated probabilities, one per row."""
        if features.names != self.feature_names:
            raise DataError("features", "the feature columns differ from the training ones")
        if not len(features.person_ids):
            return np.zeros(0)
        return predict_probability(self.model, features.values)


def _check_labels(labels: npt.NDArray[np.int64], what: str) -> None:
    if labels.size < MIN_ROWS:
        raise DataError(what, f"{labels.size} people in the population; need {MIN_ROWS}")
    positives = int(labels.sum())
    if positives < 5 or labels.size - positives < 5:
        raise DataError(what, f"{positives} of {labels.size} labels are positive; too few of one")


def _splittable(values: FloatArray) -> FloatArray:
    """`values` with every column known for fewer than `MIN_SAMPLES_LEAF` rows set to 0.

    No split can use such a column (one side would hold fewer rows than a leaf may), so
    the model is the one it would have been; but the booster's binning fails outright on
    a column with no value at all (a ValueError from numpy), as in a shop whose
    newsletters began after the training cutoff: no opens or clicks before it."""
    known = np.count_nonzero(~np.isnan(values), axis=0)
    sparse = known < MIN_SAMPLES_LEAF
    if not sparse.any():
        return values
    filled = values.copy()
    filled[:, sparse] = 0.0
    return filled


def fit_calibrated(
    values: FloatArray,
    labels: npt.NDArray[np.int64],
    calibration: Calibration,
    seed: int,
    threads: int = 1,
) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier

    method = calibration
    if method == "auto":
        method = "isotonic" if labels.size >= ISOTONIC_MIN_ROWS else "sigmoid"
    booster = HistGradientBoostingClassifier(
        learning_rate=0.05,
        max_iter=150,
        max_leaf_nodes=15,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        l2_regularization=1.0,
        random_state=seed,
    )
    with threadpool_limits(limits=threads, user_api="openmp"):
        calibrated = CalibratedClassifierCV(booster, method=method, cv=3)
        return calibrated.fit(_splittable(values), labels)


def predict_probability(model: Any, values: FloatArray, threads: int = 1) -> FloatArray:
    with threadpool_limits(limits=threads, user_api="openmp"):
        return np.asarray(model.predict_proba(values)[:, 1], dtype=np.float64)


def train_classifier(
    log: EventLog,
    task: Task,
    *,
    train_cutoff: datetime,
    validation_cutoff: datetime,
    observed_until: datetime | None = None,
    calibration: Calibration = "auto",
    seed: int = 0,
    threads: int = 1,
) -> TrainedClassifier:
    """Train at `train_cutoff`, validate at `validation_cutoff` (see the module docstring)."""
    if validation_cutoff < train_cutoff + timedelta(days=task.horizon_days):
        raise DataError(
            "validation_cutoff",
            f"must be at least {task.horizon_days} days after the training cutoff, so the "
            "training labels do not reach into the validation period",
        )
    train = labelled_set(log, train_cutoff, task, observed_until=observed_until)
    valid = labelled_set(log, validation_cutoff, task, observed_until=observed_until)
    _check_labels(train.labels, "train_cutoff")
    _check_labels(valid.labels, "validation_cutoff")
    model = fit_calibrated(train.features.values, train.labels, calibration, seed, threads)
    probabilities = predict_probability(model, valid.features.values, threads)
    baseline = RecencyBaseline.fit(train.features, train.labels)
    return TrainedClassifier(
        task=task,
        feature_names=train.features.names,
        model=model,
        train_cutoff=train_cutoff,
        validation_cutoff=validation_cutoff,
        train_rows=int(train.labels.size),
        metrics=evaluate(valid.labels, probabilities),
        baseline_metrics=evaluate(valid.labels, baseline.predict(valid.features)),
    )
