"""Send time: local hours, shrinkage toward the population, machine opens ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.events import CLICK, OPEN, EventLog
from mailwright_profile.predict.sendtime import (
    dirichlet_multinomial_loglik,
    estimate_strength,
    fit_send_times,
    local_hour_and_day,
)

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday


def _opens(spec: dict[str, list[tuple[int, int]]], machine: set[str] = frozenset()) -> EventLog:
    """spec: person -> list of (UTC hour on Monday 2024-01-01 + days, count)."""
    people = tuple(spec)
    person, time, is_machine = [], [], []
    for index, name in enumerate(people):
        for offset_hours, count in spec[name]:
            for k in range(count):
                stamp = MONDAY + timedelta(hours=offset_hours, days=7 * k, minutes=5)
                person.append(index)
                time.append(stamp.timestamp())
                is_machine.append(name in machine)
    kinds = [OPEN] * len(person)
    return EventLog.from_arrays(people, person, kinds, time, machine=is_machine)


def _crowd(hour: int, people: int = 60, each: int = 8) -> dict[str, list[tuple[int, int]]]:
    return {f"crowd{i}": [(hour, each)] for i in range(people)}


def test_hours_are_local_to_the_persons_timezone() -> None:
    stamp = datetime(2024, 1, 3, 14, 30, tzinfo=UTC).timestamp()  # Wednesday
    hours, days = local_hour_and_day(np.array([stamp]), "America/New_York")
    assert (int(hours[0]), int(days[0])) == (9, 2)
    hours, days = local_hour_and_day(np.array([stamp]), "Asia/Tokyo")
    assert (int(hours[0]), int(days[0])) == (23, 2)


def test_daylight_saving_time_moves_the_local_hour() -> None:
    winter = datetime(2024, 1, 10, 12, tzinfo=UTC).timestamp()
    summer = datetime(2024, 7, 10, 12, tzinfo=UTC).timestamp()
    hours, _ = local_hour_and_day(np.array([winter, summer]), "Europe/Berlin")
    assert hours.tolist() == [13, 14]


def test_a_thin_history_is_shrunk_to_the_population_hour() -> None:
    log = _opens({**_crowd(10), "thin": [(3, 1)]})
    times = fit_send_times(log, {}, prior_strength=10.0)
    assert times.preference("thin").best_hour == 10


def test_a_long_history_keeps_the_persons_own_hour() -> None:
    log = _opens({**_crowd(10), "regular": [(20, 40)]})
    times = fit_send_times(log, {}, prior_strength=10.0)
    assert times.preference("regular").best_hour == 20


def test_best_hour_is_reported_in_local_time() -> None:
    log = _opens({**_crowd(10), "tokyo": [(11, 40)]})
    times = fit_send_times(log, {"tokyo": "Asia/Tokyo"}, prior_strength=10.0)
    assert times.preference("tokyo").best_hour == 20


def test_machine_opens_are_ignored() -> None:
    log = _opens({**_crowd(10), "proxy": [(4, 30)]}, machine={"proxy"})
    times = fit_send_times(log, {}, prior_strength=10.0)
    preference = times.preference("proxy")
    assert preference.events == 0
    assert preference.best_hour == 10


def test_clicks_can_weigh_more_than_opens() -> None:
    base = _opens({**_crowd(10), "p": [(8, 3)]})
    click_time = (MONDAY + timedelta(hours=18)).timestamp()
    index = base.people.index("p")
    log = EventLog.from_arrays(
        base.people,
        np.append(base.person, [index, index]),
        np.append(base.kind, [CLICK, CLICK]),
        np.append(base.time, [click_time, click_time + 60]),
    )
    assert fit_send_times(log, {}, prior_strength=1.0).preference("p").best_hour == 8
    weighted = fit_send_times(log, {}, prior_strength=1.0, click_weight=3.0)
    assert weighted.preference("p").best_hour == 18


def test_people_without_engagement_get_the_population_preference() -> None:
    log = EventLog.from_arrays(
        ("quiet", *_crowd(10)),
        [i + 1 for i in range(60) for _ in range(3)],
        [OPEN] * 180,
        [
            (MONDAY + timedelta(hours=10, days=7 * k)).timestamp()
            for _ in range(60)
            for k in range(3)
        ],
    )
    times = fit_send_times(log, {})
    assert times.preference("quiet").best_hour == 10
    assert times.preference("quiet").best_day == 0


def _simulated_counts(
    strength: float, people: int, events: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hours = np.arange(24)
    population = np.exp(-0.5 * ((hours - 11) / 4.0) ** 2) + 0.05
    population /= population.sum()
    preferences = rng.dirichlet(strength * population, size=people)
    counts = np.array([rng.multinomial(events, p) for p in preferences], dtype=float)
    return counts, population


def test_empirical_bayes_finds_the_strength_that_generated_the_data() -> None:
    counts, population = _simulated_counts(strength=20.0, people=1500, events=12, seed=2)
    estimate = estimate_strength(counts, population)
    # The true strength lies in the likelihood-ratio 95% confidence set around the
    # estimate: within chi2(1, 0.95) / 2 = 1.92 log-likelihood units of the maximum.
    best = dirichlet_multinomial_loglik(counts, population, estimate)
    assert best - dirichlet_multinomial_loglik(counts, population, 20.0) < 1.92


def test_shrinkage_predicts_held_out_opens_better_than_either_extreme() -> None:
    counts, population = _simulated_counts(strength=20.0, people=800, events=16, seed=3)
    rng = np.random.default_rng(4)
    held = np.array([rng.multivariate_hypergeometric(row.astype(int), 4) for row in counts])
    seen = counts - held

    def held_out_loglik(strength: float) -> float:
        posterior = (seen + strength * population) / (seen.sum(1, keepdims=True) + strength)
        return float(np.sum(held * np.log(posterior)))

    chosen = estimate_strength(seen, population)
    assert held_out_loglik(chosen) > held_out_loglik(0.01)
    assert held_out_loglik(chosen) > held_out_loglik(1e6)


def test_unknown_timezone_is_a_data_error() -> None:
    log = _opens({"a": [(1, 1)]})
    with pytest.raises(DataError, match="unknown timezone 'Mars/Olympus'"):
        fit_send_times(log, {"a": "Mars/Olympus"})
