"""The built-in scorers: CLV, churn risk, purchase propensity and best send time.

Each trains from a workspace's event history and writes computed traits:

| scorer       | traits                                                             |
|--------------|--------------------------------------------------------------------|
| `clv`        | clv_12m, p_alive, expected_purchases_12m, expected_average_spend    |
| `churn`      | churn_risk                                                         |
| `propensity` | purchase_propensity_30d                                            |
| `send_time`  | best_send_hour, best_send_day                                      |
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mailwright_profile.predict.bgnbd import BgNbd
from mailwright_profile.predict.classify import predict_probability, train_classifier
from mailwright_profile.predict.clv import ClvModel, fit_clv
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import DAY, PURCHASE, EventLog, timestamp
from mailwright_profile.predict.features import FEATURE_NAMES, Task, build_features
from mailwright_profile.predict.gammagamma import GammaGamma
from mailwright_profile.predict.scorers import (
    ModelVersion,
    PersonHistory,
    Scorer,
    TrainingData,
    TraitValue,
    check_version,
)
from mailwright_profile.predict.sendtime import SendTimeModel, fit_send_times
from mailwright_profile.predict.summary import CustomerSummary


def summary_from_log(log: EventLog, as_of: datetime) -> CustomerSummary:
    """Per-person CLV summary (in days) from purchase events before `as_of`, by UTC day,
    with the conventions of `CustomerSummary.from_transactions`."""
    end = timestamp(as_of, "as_of")
    mask = (log.kind == PURCHASE) & (log.time < end)
    if not mask.any():
        raise DataError("events", "no purchases before as_of")
    days = np.floor(log.time[mask] / DAY).astype(np.int64)
    pairs, inverse = np.unique(
        np.stack([log.person[mask], days], axis=1), axis=0, return_inverse=True
    )
    day_totals = np.bincount(inverse.ravel(), weights=log.value[mask], minlength=len(pairs))
    people, first_row, per_person = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    last_row = first_row + per_person - 1
    end_day = math.ceil(end / DAY) - 1
    frequency = (per_person - 1).astype(np.float64)
    repeat_total = np.add.reduceat(day_totals, first_row) - day_totals[first_row]
    money = np.divide(repeat_total, frequency, out=np.zeros(people.size), where=frequency > 0)
    return CustomerSummary(
        tuple(log.people[p] for p in people),
        frequency,
        (pairs[last_row, 1] - pairs[first_row, 1]).astype(np.float64),
        (end_day - pairs[first_row, 1]).astype(np.float64),
        money,
    )


@dataclass
class ClvScorer:
    """BG/NBD and Gamma-Gamma in days; CLV over 12 months in monthly steps."""

    horizon_days: float = 365.0
    period_days: float = 365.0 / 12
    annual_discount_rate: float = 0.0
    holdout_days: int = 90
    name: str = "clv"
    traits: tuple[str, ...] = (
        "clv_12m",
        "p_alive",
        "expected_purchases_12m",
        "expected_average_spend",
    )
    model: ClvModel | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        summary = _spend_if_tracked(summary_from_log(data.events, data.as_of))
        fit = fit_clv(summary, time_unit="day")
        metrics: dict[str, Any] = {
            "customers": len(summary),
            "repeat_customers": int(np.count_nonzero(summary.frequency)),
            "bgnbd_log_likelihood": fit.bgnbd.log_likelihood,
            "holdout": self._holdout(data),
        }
        if fit.gamma_gamma is not None:
            metrics["gamma_gamma_log_likelihood"] = fit.gamma_gamma.log_likelihood
            metrics["frequency_spend_correlation"] = fit.gamma_gamma.frequency_spend_correlation
        self.model = fit.model
        spend = None if fit.gamma_gamma is None else fit.gamma_gamma.model.as_dict()
        parameters = {
            "time_unit": "day",
            "bgnbd": fit.bgnbd.model.as_dict(),
            "gamma_gamma": spend,
            "horizon_days": self.horizon_days,
            "period_days": self.period_days,
            "annual_discount_rate": self.annual_discount_rate,
        }
        return ModelVersion.create(self.name, parameters, metrics)

    def _holdout(self, data: TrainingData) -> dict[str, Any] | None:
        """Fit without the last `holdout_days` and compare predicted repeat purchase days
        in them with what happened (None when the calibration data cannot be fitted)."""
        cutoff = data.as_of - timedelta(days=self.holdout_days)
        try:
            calibration = summary_from_log(data.events, cutoff)
            model = fit_clv(
                CustomerSummary.from_arrays(
                    calibration.frequency, calibration.recency, calibration.T
                )
            ).model
        except DataError:
            return None
        after = summary_from_log(data.events, data.as_of)
        index = {person: i for i, person in enumerate(after.customer_ids)}
        rows = np.array([index[p] for p in calibration.customer_ids])
        actual = after.frequency[rows] - calibration.frequency
        predicted = model.bgnbd.expected_purchases(
            float(self.holdout_days), calibration.frequency, calibration.recency, calibration.T
        )
        return {
            "days": self.holdout_days,
            "customers": len(calibration),
            "actual_purchases": float(actual.sum()),
            "predicted_purchases": float(predicted.sum()),
            "mean_absolute_error": float(np.mean(np.abs(actual - predicted))),
            "correlation": float(np.corrcoef(actual, predicted)[0, 1])
            if np.ptp(actual) > 0 and np.ptp(predicted) > 0
            else None,
        }

    def load(self, version: ModelVersion) -> None:
        check_version(self.name, version, ("bgnbd", "gamma_gamma"))
        params = version.parameters
        spend = params["gamma_gamma"]
        self.model = ClvModel(
            BgNbd(**params["bgnbd"]), None if spend is None else GammaGamma(**spend), "day"
        )

    def score(self, person: PersonHistory, as_of: datetime) -> dict[str, TraitValue]:
        return self.score_many([person], as_of)[person.person_id]

    def score_many(
        self, people: Iterable[PersonHistory], as_of: datetime
    ) -> dict[str, dict[str, TraitValue]]:
        """Vectorised scoring; people without a purchase before `as_of` get None traits."""
        model = _require(self.model, self.name)
        histories = list(people)
        result: dict[str, dict[str, TraitValue]] = {
            p.person_id: dict.fromkeys(self.traits) for p in histories
        }
        log = EventLog.from_events(e for p in histories for e in p.events)
        if not np.any((log.kind == PURCHASE) & (log.time < timestamp(as_of, "as_of"))):
            return result
        summary = summary_from_log(log, as_of)
        monthly = (1.0 + self.annual_discount_rate) ** (self.period_days / 365.0) - 1.0
        prediction = model.predict(
            summary, horizon=self.horizon_days, period=self.period_days, discount_rate=monthly
        )
        for i, person in enumerate(summary.customer_ids):
            result[person] = {
                "clv_12m": _item(prediction.clv, i),
                "p_alive": float(prediction.probability_alive[i]),
                "expected_purchases_12m": float(prediction.expected_purchases[i]),
                "expected_average_spend": _item(prediction.expected_average_spend, i),
            }
        return result


def _item(values: np.ndarray[Any, Any] | None, i: int) -> float | None:
    return None if values is None else float(values[i])


def _spend_if_tracked(summary: CustomerSummary) -> CustomerSummary:
    """Drop monetary values when purchases carry no amounts at all."""
    money = summary.monetary_value
    if money is not None and np.any(money[summary.frequency > 0] > 0):
        return summary
    return CustomerSummary(summary.customer_ids, summary.frequency, summary.recency, summary.T)


def _require(model: Any, name: str) -> Any:
    if model is None:
        raise DataError("model", f"scorer {name!r} has no model; train or load one first")
    return model


@dataclass
class ClassifierScorer:
    """Calibrated gradient boosting on point-in-time features (see `classify`)."""

    name: str
    traits: tuple[str, ...]
    task: Task
    model: Any = None

    def train(self, data: TrainingData) -> ModelVersion:
        validation_cutoff = data.as_of - timedelta(days=self.task.horizon_days)
        train_cutoff = validation_cutoff - timedelta(days=self.task.horizon_days)
        trained = train_classifier(
            data.events,
            self.task,
            train_cutoff=train_cutoff,
            validation_cutoff=validation_cutoff,
            observed_until=data.as_of,
        )
        self.model = trained.model
        parameters = {
            "task": self.task.name,
            "horizon_days": self.task.horizon_days,
            "active_days": self.task.active_days,
            "feature_names": list(trained.feature_names),
            "train_cutoff": train_cutoff.isoformat(),
            "validation_cutoff": validation_cutoff.isoformat(),
        }
        metrics = {
            "train_rows": trained.train_rows,
            "validation": trained.metrics.as_dict(),
            "recency_baseline": trained.baseline_metrics.as_dict(),
        }
        return ModelVersion.create(self.name, parameters, metrics, pickle.dumps(trained.model))

    def load(self, version: ModelVersion) -> None:
        check_version(self.name, version, ("task", "feature_names"))
        if version.artifact is None:
            raise DataError("artifact", f"model version of {self.name!r} has no classifier")
        if tuple(version.parameters["feature_names"]) != FEATURE_NAMES:
            raise DataError("feature_names", "stored model was trained on other features")
        # The artifact comes from our own store, with its digest checked by
        # ModelVersion.from_json; it is as trusted as the code that wrote it.
        self.model = pickle.loads(version.artifact)  # noqa: S301

    def score(self, person: PersonHistory, as_of: datetime) -> dict[str, TraitValue]:
        model = _require(self.model, self.name)
        empty: dict[str, TraitValue] = dict.fromkeys(self.traits)
        features = build_features(person.log(), as_of)
        if not features.person_ids:
            return empty
        if self.task.name == "churn":
            recency = features.column("days_since_last_purchase")[0]
            if not recency <= self.task.active_days:  # also false for NaN: never bought
                return empty
        probability = float(predict_probability(model, features.values)[0])
        return {self.traits[0]: probability}


class ChurnScorer(ClassifierScorer):
    """Churn: P(no purchase in the next 60 days) for people who bought in the last 90."""

    def __init__(self) -> None:
        super().__init__("churn", ("churn_risk",), Task("churn", 60, 90))


class PropensityScorer(ClassifierScorer):
    """Propensity: P(a purchase in the next 30 days) for everyone seen before."""

    def __init__(self) -> None:
        super().__init__("propensity", ("purchase_propensity_30d",), Task("propensity", 30))


@dataclass
class SendTimeScorer:
    """Best local hour and weekday from human opens and clicks, shrunk to the population."""

    default_timezone: str = "UTC"
    name: str = "send_time"
    traits: tuple[str, ...] = ("best_send_hour", "best_send_day")
    model: SendTimeModel | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        past = data.events.before(data.as_of)
        fitted = fit_send_times(past, data.timezones, default_timezone=self.default_timezone)
        self.model = fitted.model
        parameters = {
            "hour_prior": list(fitted.model.hour_prior),
            "day_prior": list(fitted.model.day_prior),
            "hour_strength": fitted.model.hour_strength,
            "day_strength": fitted.model.day_strength,
            "default_timezone": self.default_timezone,
        }
        metrics = {
            "people": len(fitted.person_ids),
            "people_with_history": int(np.count_nonzero(fitted.events)),
            "events": int(fitted.events.sum()),
            "hour_strength": fitted.model.hour_strength,
            "day_strength": fitted.model.day_strength,
        }
        return ModelVersion.create(self.name, parameters, metrics)

    def load(self, version: ModelVersion) -> None:
        check_version(self.name, version, ("hour_prior", "day_prior", "hour_strength"))
        p = version.parameters
        self.model = SendTimeModel(
            tuple(p["hour_prior"]),
            tuple(p["day_prior"]),
            float(p["hour_strength"]),
            float(p["day_strength"]),
        )

    def score(self, person: PersonHistory, as_of: datetime) -> dict[str, TraitValue]:
        model: SendTimeModel = _require(self.model, self.name)
        end = timestamp(as_of, "as_of")
        times = [
            e.at.timestamp()
            for e in person.events
            if e.kind in ("open", "click") and not e.machine and e.at.timestamp() < end
        ]
        tz = person.timezone or self.default_timezone
        preference = model.preference(person.person_id, tz, times)
        return {"best_send_hour": preference.best_hour, "best_send_day": preference.best_day}


BUILTIN_SCORERS: tuple[Callable[[], Scorer], ...] = (
    ClvScorer,
    ChurnScorer,
    PropensityScorer,
    SendTimeScorer,
)


def register_builtin_scorers(register: Callable[[Callable[[], Scorer]], None]) -> None:
    """Register the built-in scorers through the same callback plugins get."""
    for factory in BUILTIN_SCORERS:
        register(factory)
