"""Scorers: versions that survive storage, registration, and the built-in four."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from mailwright_profile.predict.bgnbd import fit_bgnbd
from mailwright_profile.predict.builtin import (
    ClassifierScorer,
    ClvScorer,
    SendTimeScorer,
    builtin_scorers,
    churn_scorer,
    propensity_scorer,
    register_builtin_scorers,
)
from mailwright_profile.predict.errors import ConvergenceError, DataError
from mailwright_profile.predict.events import KINDS, Event, EventLog
from mailwright_profile.predict.inputs import person_features, summary_from_log
from mailwright_profile.predict.scorers import ModelVersion, Scorer, TrainingData
from mailwright_profile.predict.simulate import simulate_event_log
from mailwright_profile.predict.summary import CustomerSummary, Transaction

START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = START + timedelta(days=540)
# The SDK registry's rule for names (mailwright.registry.NAME_PATTERN).
REGISTRY_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def data() -> TrainingData:
    log = simulate_event_log(2000, start=START, days=540, seed=21)
    zones = {person: "Europe/Paris" for person in log.people[::2]}
    return TrainingData(log, AS_OF, zones)


@pytest.fixture(scope="module")
def clv(data: TrainingData) -> tuple[ClvScorer, ModelVersion]:
    version = ClvScorer().train(data)
    return ClvScorer().load(ModelVersion.from_json(version.to_json())), version


def _events(log: EventLog, person: str) -> list[Event]:
    rows = np.flatnonzero(log.person == log.people.index(person))
    return [
        Event(
            person,
            KINDS[int(log.kind[r])],
            datetime.fromtimestamp(float(log.time[r]), UTC),
            float(log.value[r]),
            bool(log.machine[r]),
        )
        for r in rows
    ]


def _features(data: TrainingData, person: str) -> dict[str, object]:
    return person_features(
        _events(data.events, person), data.as_of, timezone=data.timezones.get(person)
    )


def test_model_version_round_trips_through_json_with_its_artifact() -> None:
    version = ModelVersion.create("m", {"a": [1.0, 2.0]}, {"auc": 0.7}, artifact=b"\x00blob")
    assert ModelVersion.from_json(version.to_json(), artifact=b"\x00blob") == version


def test_model_version_ids_depend_on_content() -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    one = ModelVersion.create("m", {"a": 1}, {}, trained_at=when)
    same = ModelVersion.create("m", {"a": 1}, {"x": 9}, trained_at=when)
    other = ModelVersion.create("m", {"a": 2}, {}, trained_at=when)
    assert one.version == same.version
    assert one.version != other.version
    assert one.version.startswith("20240501T120000Z-")


def test_a_tampered_artifact_is_refused() -> None:
    version = ModelVersion.create("m", {}, {}, artifact=b"model")
    with pytest.raises(DataError, match="does not match the digest"):
        ModelVersion.from_json(version.to_json(), artifact=b"evil")


@pytest.mark.parametrize("text", ["", "[]", '{"name": "m"}', "not json"])
def test_malformed_stored_versions_are_refused(text: str) -> None:
    with pytest.raises(DataError, match="not a stored model version"):
        ModelVersion.from_json(text)


def test_builtin_scorers_register_through_a_callback_with_registry_names() -> None:
    registered: list[Scorer] = []
    register_builtin_scorers(registered.append)
    assert [s.name for s in registered] == ["clv", "churn", "propensity", "send-time", "recommend"]
    assert all(REGISTRY_NAME.match(s.name) for s in registered)
    assert all(isinstance(s, Scorer) for s in builtin_scorers())
    outputs = [trait for s in registered for trait in s.outputs]
    assert len(outputs) == len(set(outputs))
    assert {"clv_12m", "p_alive", "churn_risk", "purchase_propensity_30d"} <= set(outputs)
    assert {"best_send_hour", "best_send_day"} <= set(outputs)


def test_summary_from_the_event_log_matches_the_transaction_convention() -> None:
    moments = [("a", 0, 10.0), ("a", 0.5, 5.0), ("a", 3.2, 7.0), ("a", 9.9, 1.0), ("b", 4, 2.0)]
    events = [Event(p, "purchase", START + timedelta(days=d), v) for p, d, v in moments]
    events.append(Event("b", "open", START + timedelta(days=1)))
    as_of = START + timedelta(days=12, hours=5)
    from_log = summary_from_log(EventLog.from_events(events), as_of)
    from_transactions = CustomerSummary.from_transactions(
        [Transaction(e.person_id, e.at.date(), e.value) for e in events if e.kind == "purchase"],
        calibration_end=date(2024, 1, 13),
    )
    assert from_log.customer_ids == from_transactions.customer_ids
    for column in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(getattr(from_log, column), getattr(from_transactions, column))


def test_person_features_ignore_events_from_as_of_on() -> None:
    events = [Event("a", "purchase", START, 5.0), Event("a", "open", START + timedelta(days=2))]
    later = [*events, Event("a", "purchase", START + timedelta(days=9), 50.0)]
    as_of = START + timedelta(days=5)
    assert person_features(events, as_of) == person_features(later, as_of)


def test_person_features_take_one_person() -> None:
    with pytest.raises(DataError, match="events of one person"):
        person_features([Event("a", "open", START), Event("b", "open", START)], AS_OF)


def test_clv_scores_from_a_stored_version_match_scoring_everyone(
    data: TrainingData, clv: tuple[ClvScorer, ModelVersion]
) -> None:
    scorer, version = clv
    assert version.metrics["holdout"]["customers"] > 0
    everyone = scorer.score_all(data)
    buyers = list(everyone)[:25]
    for person in buyers:
        scores = scorer.score(_features(data, person))
        assert scores == pytest.approx(everyone[person], rel=1e-12)
        assert set(scores) == set(ClvScorer.outputs)
        assert 0 <= scores["p_alive"] <= 1
        assert scores["clv_12m"] == pytest.approx(
            scores["expected_average_spend"] * scores["expected_purchases_12m"]
        )


def test_clv_has_no_score_for_someone_who_never_bought(
    clv: tuple[ClvScorer, ModelVersion],
) -> None:
    stranger = person_features([Event("new", "view", AS_OF - timedelta(days=1))], AS_OF)
    assert clv[0].score(stranger) == {}


def test_clv_trains_without_its_holdout_check_when_that_fit_does_not_converge() -> None:
    # This small shop fits BG/NBD on its whole history, but not without its last 90 days.
    log = simulate_event_log(30, start=START, days=180, seed=22)
    as_of = START + timedelta(days=180)
    shorter = summary_from_log(log, as_of - timedelta(days=90))
    with pytest.raises(ConvergenceError):
        fit_bgnbd(shorter.frequency, shorter.recency, shorter.T)
    version = ClvScorer().train(TrainingData(log, as_of))
    assert version.metrics["holdout"] is None
    assert version.metrics["bgnbd_log_likelihood"] < 0


@pytest.mark.parametrize("factory", [churn_scorer, propensity_scorer], ids=["churn", "propensity"])
def test_classifier_scorers_store_metrics_and_restore_their_model(
    data: TrainingData, factory: type[ClassifierScorer]
) -> None:
    version = factory().train(data)
    assert version.metrics["validation"]["auc"] > version.metrics["recency_baseline"]["auc"]
    scorer = factory().load(ModelVersion.from_json(version.to_json(), artifact=version.artifact))
    everyone = scorer.score_all(data)
    assert everyone
    for person in list(data.events.people[:60]):
        one = scorer.score(_features(data, person))
        assert one == pytest.approx(everyone.get(person, {}))
    assert all(0.0 <= v <= 1.0 for s in everyone.values() for v in s.values())


def test_churn_risk_is_only_scored_for_recent_buyers(data: TrainingData) -> None:
    version = churn_scorer().train(data)
    scorer = churn_scorer().load(version)
    browser = person_features([Event("b", "view", AS_OF - timedelta(days=3))], AS_OF)
    lapsed = person_features([Event("l", "purchase", AS_OF - timedelta(days=200), 5.0)], AS_OF)
    recent = person_features([Event("r", "purchase", AS_OF - timedelta(days=20), 5.0)], AS_OF)
    assert scorer.score(browser) == {}
    assert scorer.score(lapsed) == {}
    assert set(scorer.score(recent)) == {"churn_risk"}


def test_loading_another_scorers_version_is_refused() -> None:
    version = ModelVersion.create("send-time", {"hour_prior": []}, {})
    with pytest.raises(DataError, match="is for 'send-time', not 'clv'"):
        ClvScorer().load(version)


def test_scoring_without_a_loaded_version_is_refused() -> None:
    with pytest.raises(DataError, match="has no model"):
        churn_scorer().score(dict.fromkeys(("anything",), 1.0))


def test_loading_returns_a_new_scorer_and_leaves_the_registered_one_alone(
    clv: tuple[ClvScorer, ModelVersion],
) -> None:
    registered = ClvScorer()
    bound = registered.load(clv[1])
    assert registered.model is None
    assert bound.model is not None


def test_send_time_scorer_gives_a_local_hour_and_day(data: TrainingData) -> None:
    version = SendTimeScorer().train(data)
    scorer = SendTimeScorer().load(ModelVersion.from_json(version.to_json()))
    # Mondays 19:10 UTC in winter: 20:10 in Paris (CET).
    evening = [
        Event("p", "open", datetime(2024, 1, 1, 19, 10, tzinfo=UTC) + timedelta(weeks=k))
        for k in range(10)
    ]
    features = person_features(evening, AS_OF, timezone="Europe/Paris")
    assert scorer.score(features) == {"best_send_hour": 20, "best_send_day": 0}
    everyone = scorer.score_all(data)
    some = data.events.people[3]
    assert everyone[some] == scorer.score(_features(data, some))


def _with_values(data: TrainingData, values: np.ndarray) -> TrainingData:
    log = data.events
    changed = EventLog(log.people, log.person, log.kind, log.time, values, log.machine)
    return TrainingData(changed, data.as_of, data.timezones)


def test_clv_without_purchase_amounts_scores_purchases_but_not_value(data: TrainingData) -> None:
    bare = _with_values(data, np.zeros(len(data.events)))
    version = ClvScorer().train(bare)
    assert version.parameters["gamma_gamma"] is None
    scores = next(iter(ClvScorer().load(version).score_all(bare).values()))
    assert set(scores) == {"p_alive", "expected_purchases_90d", "expected_purchases_12m"}


def test_free_repeat_orders_are_left_out_of_the_spend_model(data: TrainingData) -> None:
    values = data.events.value.copy()
    purchases = np.flatnonzero(data.events.kind == 0)
    values[purchases[::7]] = 0.0  # some orders were free
    version = ClvScorer().train(_with_values(data, values))
    assert version.parameters["gamma_gamma"] is not None
    assert version.metrics["spend_customers"] < version.metrics["repeat_customers"]
