"""Point-in-time features and labels: exact values, and no leakage from the future."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import DAY, KINDS, Event, EventLog
from mailwright_profile.predict.features import (
    FEATURE_NAMES,
    Task,
    build_features,
    build_labels,
    labelled_set,
)

START = datetime(2024, 1, 1, tzinfo=UTC)


def _at(day: float) -> datetime:
    return START + timedelta(days=day)


def _log(*events: tuple[str, str, float] | tuple[str, str, float, float, bool]) -> EventLog:
    built = []
    for event in events:
        person, kind, day, *rest = event
        value = float(rest[0]) if rest else 0.0
        machine = bool(rest[1]) if len(rest) > 1 else False
        built.append(Event(person, kind, _at(day), value, machine))  # type: ignore[arg-type]
    return EventLog.from_events(built)


def _row(log: EventLog, cutoff_day: float, person: str) -> dict[str, float]:
    features = build_features(log, _at(cutoff_day))
    values = features.values[features.person_ids.index(person)]
    return dict(zip(features.names, values.tolist(), strict=True))


def test_features_count_windows_and_recency_from_the_past() -> None:
    log = _log(
        ("a", "purchase", 5, 20.0, False),
        ("a", "purchase", 80, 30.0, False),
        ("a", "open", 95),
        ("a", "click", 96),
        ("a", "view", 97),
    )
    row = _row(log, 100, "a")
    assert row["purchases_30d"] == 1
    assert row["purchases_365d"] == 2
    assert row["days_since_last_purchase"] == pytest.approx(20)
    assert row["revenue_90d"] == 30
    assert row["revenue_total"] == 50
    assert row["mean_days_between_purchases"] == pytest.approx(75)
    assert row["tenure_days"] == pytest.approx(95)
    assert row["days_since_last_event"] == pytest.approx(3)
    assert row["opens_7d"] == 1
    assert row["clicks_30d"] == 1
    assert row["views_7d"] == 1


def test_never_happened_is_nan() -> None:
    row = _row(_log(("a", "open", 5)), 10, "a")
    assert np.isnan(row["days_since_last_purchase"])
    assert np.isnan(row["mean_days_between_purchases"])
    assert row["purchases_total"] == 0


def test_machine_opens_are_not_engagement() -> None:
    log = _log(("a", "open", 5, 0.0, True), ("a", "open", 6, 0.0, True), ("a", "open", 7))
    row = _row(log, 10, "a")
    assert row["opens_7d"] == 1
    assert row["days_since_last_open"] == pytest.approx(3)


def test_events_at_the_cutoff_itself_are_future() -> None:
    log = _log(("a", "open", 1), ("a", "purchase", 10, 5.0, False))
    assert _row(log, 10, "a")["purchases_total"] == 0


def test_people_first_seen_after_the_cutoff_are_not_in_the_population() -> None:
    log = _log(("a", "open", 1), ("b", "open", 20))
    assert build_features(log, _at(10)).person_ids == ("a",)


events_strategy = st.lists(
    st.tuples(
        st.integers(0, 4),
        st.integers(0, len(KINDS) - 1),
        st.floats(0, 100, allow_nan=False),
        st.floats(0, 500, allow_nan=False),
        st.booleans(),
    ),
    max_size=60,
)


def _from_rows(rows: list[tuple[int, int, float, float, bool]]) -> EventLog:
    """Rows of (person, kind, timestamp, value, machine)."""
    people = tuple(f"p{i}" for i in range(5))
    if not rows:
        return EventLog.from_arrays(people, [], [], [])
    person, kind, time, value, machine = zip(*rows, strict=True)
    return EventLog.from_arrays(people, person, kind, time, value, machine)


@settings(max_examples=100, deadline=None)
@given(events_strategy, events_strategy, st.floats(1, 99, allow_nan=False))
def test_features_at_a_cutoff_ignore_whatever_happens_after_it(
    history: list[tuple[int, int, float, float, bool]],
    other_future: list[tuple[int, int, float, float, bool]],
    cutoff_day: float,
) -> None:
    cutoff = START + timedelta(days=cutoff_day)
    c = cutoff.timestamp()
    past = [(p, k, START.timestamp() + d * DAY, v, m) for p, k, d, v, m in history]
    # The same past with an unrelated future: other events at or after the cutoff.
    future = [(p, k, c + d * DAY, v, m) for p, k, d, v, m in other_future]
    a = build_features(_from_rows(past), cutoff)
    b = build_features(_from_rows([row for row in past if row[2] < c] + future), cutoff)
    assert a.person_ids == b.person_ids
    np.testing.assert_array_equal(a.values, b.values)


def test_labels_come_only_from_the_window_after_the_cutoff() -> None:
    base = [("a", "purchase", 5, 1.0, False), ("b", "purchase", 6, 1.0, False)]
    inside = _log(*base, ("a", "purchase", 15, 1.0, False), ("b", "purchase", 45, 1.0, False))
    features = build_features(inside, _at(10))
    _, propensity = build_labels(inside, features, Task("propensity", horizon_days=30))
    assert dict(zip(features.person_ids, propensity.tolist(), strict=True)) == {"a": 1, "b": 0}


def test_churn_is_among_recent_buyers_and_means_no_purchase_in_the_horizon() -> None:
    log = _log(
        ("active-stays", "purchase", 80, 1.0, False),
        ("active-stays", "purchase", 120, 1.0, False),
        ("active-leaves", "purchase", 90, 1.0, False),
        ("long-gone", "purchase", 1, 1.0, False),
        ("never-bought", "open", 95),
        ("end", "open", 200),
    )
    features = build_features(log, _at(100))
    population, churned = build_labels(log, features, Task("churn", 60, active_days=30))
    labels = {
        person: int(label)
        for person, keep, label in zip(features.person_ids, population, churned, strict=True)
        if keep
    }
    assert labels == {"active-stays": 0, "active-leaves": 1}


def test_a_label_window_past_the_end_of_the_data_is_refused() -> None:
    log = _log(("a", "purchase", 1, 1.0, False), ("a", "open", 50))
    with pytest.raises(DataError, match=r"^cutoff: the label window ends"):
        labelled_set(log, _at(40), Task("propensity", 30))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(DataError, match="has no timezone"):
        EventLog.from_events([Event("a", "open", datetime(2024, 1, 1))])


def test_unknown_event_kind_is_refused() -> None:
    with pytest.raises(DataError, match="unknown kind 'refund'"):
        EventLog.from_events([Event("a", "refund", START)])  # type: ignore[arg-type]


def test_feature_names_are_unique() -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
