"""Scorers: versions that survive storage, registration rules, and the built-in four."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from mailwright_profile.predict.builtin import (
    BUILTIN_SCORERS,
    ChurnScorer,
    ClvScorer,
    PropensityScorer,
    SendTimeScorer,
    register_builtin_scorers,
    summary_from_log,
)
from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import KINDS, Event, EventLog
from mailwright_profile.predict.scorers import (
    ModelVersion,
    PersonHistory,
    Scorer,
    ScorerRegistry,
    TrainingData,
)
from mailwright_profile.predict.simulate import simulate_event_log
from mailwright_profile.predict.summary import CustomerSummary, Transaction

START = datetime(2024, 1, 1, tzinfo=UTC)
AS_OF = START + timedelta(days=540)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    log = simulate_event_log(2000, start=START, days=540, seed=21)
    zones = {person: "Europe/Paris" for person in log.people[::2]}
    return TrainingData(log, AS_OF, zones)


def _history(log: EventLog, person: str) -> PersonHistory:
    index = log.people.index(person)
    rows = np.flatnonzero(log.person == index)
    events = tuple(
        Event(
            person,
            KINDS[int(log.kind[r])],
            datetime.fromtimestamp(float(log.time[r]), UTC),
            float(log.value[r]),
            bool(log.machine[r]),
        )
        for r in rows
    )
    return PersonHistory(person, events)


def test_model_version_round_trips_through_json_with_its_artifact() -> None:
    version = ModelVersion.create("m", {"a": [1.0, 2.0]}, {"auc": 0.7}, artifact=b"\x00blob")
    again = ModelVersion.from_json(version.to_json(), artifact=b"\x00blob")
    assert again == version


def test_model_version_ids_depend_on_content() -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    one = ModelVersion.create("m", {"a": 1}, {}, trained_at=when)
    same = ModelVersion.create("m", {"a": 1}, {"x": 9}, trained_at=when)
    other = ModelVersion.create("m", {"a": 2}, {}, trained_at=when)
    assert one.version == same.version != other.version
    assert one.version.startswith("20240501T120000Z-")


def test_a_tampered_artifact_is_refused() -> None:
    version = ModelVersion.create("m", {}, {}, artifact=b"model")
    with pytest.raises(DataError, match="does not match the digest"):
        ModelVersion.from_json(version.to_json(), artifact=b"evil")


@pytest.mark.parametrize("text", ["", "[]", '{"name": "m"}', "not json"])
def test_malformed_stored_versions_are_refused(text: str) -> None:
    with pytest.raises(DataError, match="not a stored model version"):
        ModelVersion.from_json(text)


def test_builtin_scorers_register_through_a_callback() -> None:
    registry = ScorerRegistry()
    register_builtin_scorers(registry.register)
    assert registry.names() == ["churn", "clv", "propensity", "send_time"]
    assert registry.trait_owner("clv_12m") == "clv"
    assert registry.trait_owner("best_send_hour") == "send_time"
    assert all(isinstance(factory(), Scorer) for factory in BUILTIN_SCORERS)


def test_a_second_scorer_with_the_same_name_is_refused() -> None:
    registry = ScorerRegistry()
    registry.register(ClvScorer)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ClvScorer)


def test_two_scorers_writing_one_trait_are_refused() -> None:
    registry = ScorerRegistry()
    registry.register(ClvScorer)
    with pytest.raises(ValueError, match="trait 'clv_12m' is already written by scorer 'clv'"):
        registry.register(lambda: dataclasses.replace(ClvScorer(), name="my_clv"))


def test_something_that_is_not_a_scorer_is_refused() -> None:
    with pytest.raises(TypeError, match="does not make a Scorer"):
        ScorerRegistry().register(object)  # type: ignore[arg-type]


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


def test_clv_scorer_writes_its_traits_and_a_stored_version_scores_the_same(
    data: TrainingData,
) -> None:
    scorer = ClvScorer()
    version = scorer.train(data)
    assert version.metrics["holdout"]["customers"] > 0
    restored = ClvScorer()
    restored.load(ModelVersion.from_json(version.to_json()))
    buyer = _history(
        data.events,
        data.events.people[int(data.events.person[np.flatnonzero(data.events.kind == 0)[0]])],
    )
    scores = scorer.score(buyer, AS_OF)
    assert set(scores) == set(scorer.traits)
    assert scores == restored.score(buyer, AS_OF)
    assert 0 <= scores["p_alive"] <= 1  # type: ignore[operator]
    assert scores["clv_12m"] == pytest.approx(
        scores["expected_average_spend"] * scores["expected_purchases_12m"]  # type: ignore[operator]
    )


def test_clv_scorer_has_no_score_for_someone_who_never_bought(data: TrainingData) -> None:
    scorer = ClvScorer()
    scorer.load(scorer.train(data))
    stranger = PersonHistory("new", (Event("new", "view", AS_OF - timedelta(days=1)),))
    assert set(scorer.score(stranger, AS_OF).values()) == {None}


def test_clv_scorer_score_many_matches_one_by_one(data: TrainingData) -> None:
    scorer = ClvScorer()
    scorer.train(data)
    people = [_history(data.events, p) for p in data.events.people[:40]]
    together = scorer.score_many(people, AS_OF)
    for person in people:
        assert together[person.person_id] == scorer.score(person, AS_OF)


@pytest.mark.parametrize("factory", [ChurnScorer, PropensityScorer], ids=["churn", "propensity"])
def test_classifier_scorers_store_validation_metrics_and_restore_their_model(
    data: TrainingData, factory: type
) -> None:
    scorer = factory()
    version = scorer.train(data)
    assert version.metrics["validation"]["auc"] > version.metrics["recency_baseline"]["auc"]
    restored = factory()
    restored.load(ModelVersion.from_json(version.to_json(), artifact=version.artifact))
    people = [_history(data.events, p) for p in data.events.people[:60]]
    for person in people:
        assert scorer.score(person, AS_OF) == restored.score(person, AS_OF)
    values = [v for p in people for v in scorer.score(p, AS_OF).values() if v is not None]
    assert values
    assert all(0.0 <= v <= 1.0 for v in values)  # type: ignore[operator]


def test_churn_risk_is_only_scored_for_recent_buyers(data: TrainingData) -> None:
    scorer = ChurnScorer()
    scorer.train(data)
    browser = PersonHistory("b", (Event("b", "view", AS_OF - timedelta(days=3)),))
    lapsed = PersonHistory("l", (Event("l", "purchase", AS_OF - timedelta(days=200), 5.0),))
    assert scorer.score(browser, AS_OF) == {"churn_risk": None}
    assert scorer.score(lapsed, AS_OF) == {"churn_risk": None}


def test_loading_another_scorers_version_is_refused(data: TrainingData) -> None:
    version = ModelVersion.create("send_time", {"hour_prior": []}, {})
    with pytest.raises(DataError, match="is for 'send_time', not 'clv'"):
        ClvScorer().load(version)


def test_scoring_before_training_or_loading_is_refused() -> None:
    with pytest.raises(DataError, match="has no model"):
        ClvScorer().score(PersonHistory("a", ()), AS_OF)


def test_send_time_scorer_gives_a_local_hour_and_day(data: TrainingData) -> None:
    scorer = SendTimeScorer()
    version = scorer.train(data)
    restored = SendTimeScorer()
    restored.load(ModelVersion.from_json(version.to_json()))
    # Mondays 19:10 UTC in winter: 20:10 in Paris (CET).
    evening = [
        Event("p", "open", datetime(2024, 1, 1, 19, 10, tzinfo=UTC) + timedelta(weeks=k))
        for k in range(10)
    ]
    in_paris = PersonHistory("p", tuple(evening), timezone="Europe/Paris")
    scores = restored.score(in_paris, AS_OF)
    assert scores == {"best_send_hour": 20, "best_send_day": 0}
    assert scores == scorer.score(in_paris, AS_OF)
