"""Churn and propensity: they beat the recency-only baseline where a signal is planted,
their probabilities are calibrated, and the metrics mean what they say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from mailwright_profile.predict.classify import RecencyBaseline, TrainedClassifier, train_classifier
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import CLICK, OPEN, EventLog
from mailwright_profile.predict.features import Task, labelled_set
from mailwright_profile.predict.metrics import calibration_table, evaluate, precision_at_top
from mailwright_profile.predict.simulate import simulate_event_log

START = datetime(2024, 1, 1, tzinfo=UTC)
TRAIN = START + timedelta(days=360)
VALIDATE = START + timedelta(days=450)
TASKS = {"propensity": Task("propensity", 30), "churn": Task("churn", 60, active_days=90)}


@pytest.fixture(scope="module")
def log() -> EventLog:
    return simulate_event_log(2500, start=START, days=540, seed=12)


@pytest.fixture(scope="module")
def trained(log: EventLog) -> dict[str, TrainedClassifier]:
    return {
        name: train_classifier(log, task, train_cutoff=TRAIN, validation_cutoff=VALIDATE)
        for name, task in TASKS.items()
    }


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC from ranks (ties averaged): what roc_auc_score computes, faster."""
    ranks = rankdata(scores)
    positives = int(labels.sum())
    negatives = labels.size - positives
    return float(
        (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    )


@pytest.mark.parametrize("task", list(TASKS))
def test_model_beats_the_recency_only_baseline(
    log: EventLog, trained: dict[str, TrainedClassifier], task: str
) -> None:
    model = trained[task]
    valid = labelled_set(log, VALIDATE, TASKS[task])
    ours = model.predict(valid.features)
    train = labelled_set(log, TRAIN, TASKS[task])
    theirs = RecencyBaseline.fit(train.features, train.labels).predict(valid.features)
    assert model.metrics.auc == pytest.approx(roc_auc_score(valid.labels, ours))
    assert model.baseline_metrics.auc == pytest.approx(roc_auc_score(valid.labels, theirs))
    assert _auc(valid.labels, ours) == pytest.approx(model.metrics.auc)
    # Paired bootstrap of the AUC difference: its 1st percentile must be above zero.
    rng = np.random.default_rng(0)
    n = valid.labels.size
    differences = []
    for _ in range(300):
        sample = rng.integers(0, n, size=n)
        y = valid.labels[sample]
        if 0 < y.sum() < n:
            differences.append(_auc(y, ours[sample]) - _auc(y, theirs[sample]))
    assert np.percentile(differences, 1) > 0


@pytest.mark.parametrize("task", list(TASKS))
def test_model_has_more_buyers_or_churners_in_its_top_decile_than_the_baseline(
    trained: dict[str, TrainedClassifier], task: str
) -> None:
    model = trained[task]
    assert model.metrics.precision_at_top_decile > model.baseline_metrics.precision_at_top_decile


def test_propensity_probabilities_are_calibrated(trained: dict[str, TrainedClassifier]) -> None:
    metrics = trained["propensity"].metrics
    # Mean prediction within three binomial standard errors of the observed rate.
    mean_predicted = sum(b.count * b.mean_predicted for b in metrics.calibration) / metrics.n
    se = np.sqrt(metrics.base_rate * (1 - metrics.base_rate) / metrics.n)
    assert abs(mean_predicted - metrics.base_rate) < 3 * se
    assert metrics.expected_calibration_error < 0.03
    assert metrics.brier < trained["propensity"].baseline_metrics.brier


def test_a_feature_without_any_value_before_the_cutoff_does_not_stop_training(
    log: EventLog,
) -> None:
    # A shop whose newsletters began after the training cutoff: no opens or clicks before
    # it, so those columns of the training rows are all missing. The booster's binning
    # failed on such a column with a ValueError from numpy.
    later = ~np.isin(log.kind, [OPEN, CLICK]) | (log.time >= TRAIN.timestamp())
    newsletters_later = EventLog.from_arrays(
        log.people,
        log.person[later],
        log.kind[later],
        log.time[later],
        log.value[later],
        log.machine[later],
    )
    task = TASKS["churn"]
    train = labelled_set(newsletters_later, TRAIN, task)
    assert np.isnan(train.features.column("days_since_last_open")).all()
    model = train_classifier(
        newsletters_later, task, train_cutoff=TRAIN, validation_cutoff=VALIDATE
    )
    probabilities = model.predict(labelled_set(newsletters_later, VALIDATE, task).features)
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    assert model.metrics.auc > 0.5


def test_validation_must_start_after_the_training_labels_end(log: EventLog) -> None:
    with pytest.raises(DataError, match=r"^validation_cutoff: must be at least 60 days"):
        train_classifier(
            log, TASKS["churn"], train_cutoff=TRAIN, validation_cutoff=TRAIN + timedelta(days=30)
        )


def test_predict_refuses_features_with_other_columns(
    log: EventLog, trained: dict[str, TrainedClassifier]
) -> None:
    valid = labelled_set(log, VALIDATE, TASKS["propensity"])
    reordered = type(valid.features)(
        valid.features.cutoff,
        valid.features.person_ids,
        tuple(reversed(valid.features.names)),
        valid.features.values[:, ::-1],
    )
    with pytest.raises(DataError, match="feature columns differ"):
        trained["propensity"].predict(reordered)


def test_precision_at_top_decile_counts_positives_among_the_highest_scores() -> None:
    labels = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    scores = np.linspace(1, 0, 20)
    assert precision_at_top(labels, scores, 0.1) == 0.5


def test_calibration_table_accounts_for_every_row_in_its_bins() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    table = calibration_table(y, p, bins=10)
    assert sum(b.count for b in table) == 1000
    assert all(b.lower <= b.mean_predicted < b.upper for b in table)
    # Each bin's observed rate is within four binomial standard errors of its predictions.
    assert all(
        abs(b.observed_rate - b.mean_predicted)
        < 4 * np.sqrt(b.mean_predicted * (1 - b.mean_predicted) / b.count)
        for b in table
    )


def test_perfect_ranking_has_auc_one_and_full_lift() -> None:
    metrics = evaluate([0] * 90 + [1] * 10, [0.01] * 90 + [0.99] * 10)
    assert metrics.auc == 1.0
    assert metrics.precision_at_top_decile == 1.0
    assert metrics.lift_at_top_decile == pytest.approx(10.0)


def test_metrics_need_both_outcomes() -> None:
    with pytest.raises(DataError, match="need both outcomes"):
        evaluate([1, 1, 1], [0.2, 0.5, 0.9])


def test_metrics_serialise_to_plain_data(trained: dict[str, TrainedClassifier]) -> None:
    import json

    data = json.loads(json.dumps(trained["churn"].metrics.as_dict()))
    assert set(data) >= {"auc", "precision_at_top_decile", "brier", "calibration"}
