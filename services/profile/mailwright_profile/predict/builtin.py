"""The built-in scorers: CLV, churn risk, purchase propensity and best send time.

| scorer       | outputs (computed traits)                                          |
|--------------|--------------------------------------------------------------------|
| `clv`        | clv_12m, p_alive, expected_purchases_90d, expected_purchases_12m,   |
|              | expected_average_spend                                             |
| `churn`      | churn_risk                                                         |
| `propensity` | purchase_propensity_30d                                            |
| `send-time`  | best_send_hour, best_send_day                                      |
| `recommend`  | recommended_products (a list of product ids)                       |

Each is immutable: `train` returns a `ModelVersion`, `load` returns a scorer bound to one,
and `score` reads the feature mapping of `inputs.person_features`.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import numpy as np

from mailwright_profile.predict.bgnbd import BgNbd, fit_bgnbd
from mailwright_profile.predict.classify import predict_probability, train_classifier
from mailwright_profile.predict.clv import ClvModel, ClvPrediction
from mailwright_profile.predict.errors import DataError, PredictError
from mailwright_profile.predict.features import FEATURE_NAMES, Task, build_features
from mailwright_profile.predict.gammagamma import GammaGamma, fit_gamma_gamma
from mailwright_profile.predict.inputs import SUMMARY_KEYS, summary_from_log
from mailwright_profile.predict.recommend import Recommender, fit_recommender
from mailwright_profile.predict.scorers import (
    Features,
    ModelVersion,
    Scorer,
    Scores,
    TrainingData,
    check_version,
)
from mailwright_profile.predict.sendtime import (
    HOURS,
    SendTimeModel,
    engagement_counts,
    fit_send_times,
)
from mailwright_profile.predict.summary import CustomerSummary


def _require(model: Any, name: str) -> Any:
    if model is None:
        raise DataError("model", f"scorer {name!r} has no model; load a version first")
    return model


@dataclass(frozen=True)
class ClvScorer:
    """BG/NBD and Gamma-Gamma in days; CLV over 12 months in monthly steps."""

    name: ClassVar[str] = "clv"
    outputs: ClassVar[tuple[str, ...]] = (
        "clv_12m",
        "p_alive",
        "expected_purchases_90d",
        "expected_purchases_12m",
        "expected_average_spend",
    )
    horizon_days: float = 365.0
    period_days: float = 365.0 / 12
    annual_discount_rate: float = 0.0
    holdout_days: int = 90
    model: ClvModel | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        """BG/NBD on everyone who bought; Gamma-Gamma on the repeat customers whose repeat
        purchases carried an amount (free orders cannot inform a Gamma model of spend, and
        purchases without amounts at all mean no spend model and no CLV)."""
        summary = summary_from_log(data.events, data.as_of)
        bgnbd = fit_bgnbd(summary.frequency, summary.recency, summary.T)
        metrics: dict[str, Any] = {
            "customers": len(summary),
            "repeat_customers": int(np.count_nonzero(summary.frequency)),
            "bgnbd_log_likelihood": bgnbd.log_likelihood,
            "holdout": self._holdout(data),
        }
        spend = None
        money = summary.monetary_value
        assert money is not None
        paid = money > 0
        if np.any(paid & (summary.frequency > 0)):
            fit = fit_gamma_gamma(summary.frequency[paid], money[paid])
            spend = fit.model.as_dict()
            metrics["spend_customers"] = fit.n_customers
            metrics["gamma_gamma_log_likelihood"] = fit.log_likelihood
            metrics["frequency_spend_correlation"] = fit.frequency_spend_correlation
        parameters = {"time_unit": "day", "bgnbd": bgnbd.model.as_dict(), "gamma_gamma": spend}
        return ModelVersion.create(self.name, parameters, metrics)

    def _holdout(self, data: TrainingData) -> dict[str, Any] | None:
        """Fit without the last `holdout_days` and compare the predicted repeat purchase
        days in them with the actual ones (None when that shorter history cannot be fitted,
        the fit does not converge, or it predicts no finite numbers: the check is left
        out, the model trained on the whole history still stands)."""
        try:
            calibration = summary_from_log(
                data.events, data.as_of - timedelta(days=self.holdout_days)
            )
            bgnbd = fit_bgnbd(calibration.frequency, calibration.recency, calibration.T).model
        except PredictError:
            return None
        after = summary_from_log(data.events, data.as_of)
        index = {person: i for i, person in enumerate(after.customer_ids)}
        rows = np.array([index[p] for p in calibration.customer_ids])
        actual = after.frequency[rows] - calibration.frequency
        predicted = bgnbd.expected_purchases(
            float(self.holdout_days), calibration.frequency, calibration.recency, calibration.T
        )
        if not np.all(np.isfinite(predicted)):
            return None  # a degenerate fit of the shorter history (e.g. a, b running off)
        varied = np.ptp(actual) > 0 and np.ptp(predicted) > 0
        return {
            "days": self.holdout_days,
            "customers": len(calibration),
            "actual_purchases": float(actual.sum()),
            "predicted_purchases": float(predicted.sum()),
            "mean_absolute_error": float(np.mean(np.abs(actual - predicted))),
            "correlation": float(np.corrcoef(actual, predicted)[0, 1]) if varied else None,
        }

    def load(self, version: ModelVersion) -> ClvScorer:
        check_version(self.name, version, ("bgnbd", "gamma_gamma"))
        spend = version.parameters["gamma_gamma"]
        model = ClvModel(
            BgNbd(**version.parameters["bgnbd"]),
            None if spend is None else GammaGamma(**spend),
            "day",
        )
        return dataclasses.replace(self, model=model)

    def _predict(self, summary: CustomerSummary) -> tuple[ClvPrediction, np.ndarray[Any, Any]]:
        model: ClvModel = _require(self.model, self.name)
        monthly = (1.0 + self.annual_discount_rate) ** (self.period_days / 365.0) - 1.0
        prediction = model.predict(
            summary, horizon=self.horizon_days, period=self.period_days, discount_rate=monthly
        )
        quarter = model.bgnbd.expected_purchases(
            90.0, summary.frequency, summary.recency, summary.T
        )
        return prediction, quarter

    def score(self, features: Features) -> Scores:
        if any(features.get(key) is None for key in SUMMARY_KEYS):
            return {}
        summary = CustomerSummary.from_arrays(*([features[key]] for key in SUMMARY_KEYS))
        return self._scores(*self._predict(summary))[summary.customer_ids[0]]

    def score_all(self, data: TrainingData) -> dict[str, Scores]:
        try:
            summary = summary_from_log(data.events, data.as_of)
        except DataError:
            return {}
        return self._scores(*self._predict(summary))

    def _scores(
        self, prediction: ClvPrediction, quarter: np.ndarray[Any, Any]
    ) -> dict[str, Scores]:
        scores: dict[str, Scores] = {}
        for i, person in enumerate(prediction.customer_ids):
            values = {
                "p_alive": float(prediction.probability_alive[i]),
                "expected_purchases_90d": float(quarter[i]),
                "expected_purchases_12m": float(prediction.expected_purchases[i]),
            }
            if prediction.clv is not None and prediction.expected_average_spend is not None:
                values["clv_12m"] = float(prediction.clv[i])
                values["expected_average_spend"] = float(prediction.expected_average_spend[i])
            scores[person] = values
        return scores


@dataclass(frozen=True)
class ClassifierScorer:
    """Calibrated gradient boosting on point-in-time features (see `classify`)."""

    name: str
    outputs: tuple[str, ...]
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

    def load(self, version: ModelVersion) -> ClassifierScorer:
        check_version(self.name, version, ("task", "feature_names"))
        if version.artifact is None:
            raise DataError("artifact", f"model version of {self.name!r} has no classifier")
        if tuple(version.parameters["feature_names"]) != FEATURE_NAMES:
            raise DataError("feature_names", "the stored model was trained on other features")
        # The artifact comes from our own store, its digest checked by
        # ModelVersion.from_json: it is as trusted as the code that wrote it.
        return dataclasses.replace(self, model=pickle.loads(version.artifact))  # noqa: S301

    def _eligible(self, days_since_last_purchase: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if self.task.name == "propensity":
            return np.ones(days_since_last_purchase.shape, dtype=bool)
        return np.asarray(days_since_last_purchase <= self.task.active_days)  # NaN: never

    def score(self, features: Features) -> Scores:
        model = _require(self.model, self.name)
        if any(name not in features for name in FEATURE_NAMES):
            return {}
        row = np.array([[_number_or_nan(features[name]) for name in FEATURE_NAMES]])
        if not self._eligible(row[:, FEATURE_NAMES.index("days_since_last_purchase")])[0]:
            return {}
        return {self.outputs[0]: float(predict_probability(model, row)[0])}

    def score_all(self, data: TrainingData) -> dict[str, Scores]:
        model = _require(self.model, self.name)
        matrix = build_features(data.events, data.as_of)
        keep = self._eligible(matrix.column("days_since_last_purchase"))
        if not keep.any():
            return {}
        probabilities = predict_probability(model, matrix.values[keep])
        people = [p for p, k in zip(matrix.person_ids, keep, strict=True) if k]
        return {p: {self.outputs[0]: float(v)} for p, v in zip(people, probabilities, strict=True)}


def _number_or_nan(value: Any) -> float:
    """None (never happened) is NaN to the gradient-boosting model."""
    return float("nan") if value is None else float(value)


def churn_scorer() -> ClassifierScorer:
    """Churn: P(no purchase in the next 60 days), for people who bought in the last 90."""
    return ClassifierScorer("churn", ("churn_risk",), Task("churn", 60, 90))


def propensity_scorer() -> ClassifierScorer:
    """Propensity: P(a purchase in the next 30 days), for everyone seen before."""
    return ClassifierScorer("propensity", ("purchase_propensity_30d",), Task("propensity", 30))


@dataclass(frozen=True)
class SendTimeScorer:
    """Best local hour and weekday from human opens and clicks, shrunk to the population."""

    name: ClassVar[str] = "send-time"
    outputs: ClassVar[tuple[str, ...]] = ("best_send_hour", "best_send_day")
    default_timezone: str = "UTC"
    model: SendTimeModel | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        past = data.events.before(data.as_of)
        fitted = fit_send_times(past, data.timezones, default_timezone=self.default_timezone)
        parameters = {
            "hour_prior": list(fitted.model.hour_prior),
            "day_prior": list(fitted.model.day_prior),
            "hour_strength": fitted.model.hour_strength,
            "day_strength": fitted.model.day_strength,
        }
        metrics = {
            "people": len(fitted.person_ids),
            "people_with_history": int(np.count_nonzero(fitted.events)),
            "events": int(fitted.events.sum()),
        }
        return ModelVersion.create(self.name, parameters, metrics)

    def load(self, version: ModelVersion) -> SendTimeScorer:
        check_version(self.name, version, ("hour_prior", "day_prior", "hour_strength"))
        p = version.parameters
        model = SendTimeModel(
            tuple(p["hour_prior"]),
            tuple(p["day_prior"]),
            float(p["hour_strength"]),
            float(p["day_strength"]),
        )
        return dataclasses.replace(self, model=model)

    def _best(self, hours: np.ndarray[Any, Any], days: np.ndarray[Any, Any]) -> list[Scores]:
        model: SendTimeModel = _require(self.model, self.name)
        hour_p, day_p = model.posterior(hours, days)
        best_hours, best_days = np.argmax(hour_p, axis=1), np.argmax(day_p, axis=1)
        return [
            {"best_send_hour": int(h), "best_send_day": int(d)}
            for h, d in zip(best_hours, best_days, strict=True)
        ]

    def score(self, features: Features) -> Scores:
        hours = np.asarray(features.get("engagement_hour_counts", [0.0] * HOURS), float)
        days = np.asarray(features.get("engagement_day_counts", [0.0] * 7), float)
        if hours.shape != (HOURS,) or days.shape != (7,):
            raise DataError("engagement_hour_counts", "need 24 hour and 7 day counts")
        return self._best(hours[None, :], days[None, :])[0]

    def score_all(self, data: TrainingData) -> dict[str, Scores]:
        past = data.events.before(data.as_of)
        hours, days, _, _ = engagement_counts(past, data.timezones, self.default_timezone, 1.0)
        return dict(zip(past.people, self._best(hours, days), strict=True))


@dataclass(frozen=True)
class RecommendScorer:
    """Item-to-item recommendations (see `recommend`): the top `n` product ids per person,
    never one they bought, popular products when their history says too little."""

    name: ClassVar[str] = "recommend"
    outputs: ClassVar[tuple[str, ...]] = ("recommended_products",)
    output_types: ClassVar[dict[str, str]] = {"recommended_products": "list"}
    n: int = 5
    model: Recommender | None = None

    def train(self, data: TrainingData) -> ModelVersion:
        recommender = fit_recommender(data.interactions)
        kinds = [i.kind for i in data.interactions]
        metrics = {
            "people": len(recommender.people),
            "items": len(recommender.items),
            "purchases": kinds.count("purchase"),
            "views": kinds.count("view"),
            "item_pairs": int(recommender.similarity.nnz),
        }
        parameters = {"n": self.n, "items": len(recommender.items)}
        return ModelVersion.create(self.name, parameters, metrics, pickle.dumps(recommender))

    def load(self, version: ModelVersion) -> RecommendScorer:
        check_version(self.name, version, ("n",))
        if version.artifact is None:
            raise DataError("artifact", "model version of 'recommend' has no recommender")
        # From our own store, digest checked by ModelVersion.from_json (see ClassifierScorer).
        model = pickle.loads(version.artifact)  # noqa: S301
        return dataclasses.replace(self, n=int(version.parameters["n"]), model=model)

    def score(self, features: Features) -> Scores:
        model: Recommender = _require(self.model, self.name)
        bought = features.get("products_bought")
        viewed = features.get("products_viewed")
        if bought is None and viewed is None:
            return {}
        picks = model.recommend_items(bought or (), viewed or (), self.n)
        return {"recommended_products": [p.item_id for p in picks]}

    def score_all(self, data: TrainingData) -> dict[str, Scores]:
        """Everyone in `data.interactions`, from what they bought and viewed in it (which
        may be more than the model was trained on)."""
        model: Recommender = _require(self.model, self.name)
        bought: dict[str, set[str]] = {}
        viewed: dict[str, set[str]] = {}
        for item in data.interactions:
            bought.setdefault(item.person_id, set())
            viewed.setdefault(item.person_id, set())
            (bought if item.kind == "purchase" else viewed)[item.person_id].add(item.item_id)
        return {
            person: {
                "recommended_products": [
                    p.item_id for p in model.recommend_items(bought[person], viewed[person], self.n)
                ]
            }
            for person in bought
        }


def builtin_scorers() -> list[Scorer]:
    """Fresh, untrained instances of the five built-in scorers."""
    return [ClvScorer(), churn_scorer(), propensity_scorer(), SendTimeScorer(), RecommendScorer()]


def register_builtin_scorers(register: Callable[[Scorer], object]) -> None:
    """Register the built-in scorers through the same call a plugin makes from
    `mailwright_register_scorers(registry)`: `register_builtin_scorers(registry.register)`."""
    for scorer in builtin_scorers():
        register(scorer)
