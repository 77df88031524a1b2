"""Assignment, significance, winner selection and the bandit."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from mailwright_delivery.experiments import (
    Arm,
    Moments,
    assign,
    bucket,
    choose_winner,
    send_rng,
    thompson_choice,
    two_means,
    two_proportions,
)
from mailwright_delivery.model import Experiment, ExperimentKind, Variant

SPLIT = Experiment(ExperimentKind.SPLIT, (Variant("a"), Variant("b")), holdout_fraction=0.1)


@given(st.text(min_size=1, max_size=40))
def test_assignment_is_stable_for_a_person(profile_id: str) -> None:
    assert assign(SPLIT, "c1", profile_id) == assign(SPLIT, "c1", profile_id)


def test_assignment_follows_weights_and_holdout_share() -> None:
    experiment = Experiment(
        ExperimentKind.SPLIT, (Variant("a", weight=3), Variant("b", weight=1)), holdout_fraction=0.1
    )
    counts = Counter()
    for n in range(20_000):
        got = assign(experiment, "c1", f"p{n}")
        counts["holdout" if got.holdout else got.variant] += 1
    assert abs(counts["holdout"] / 20_000 - 0.1) < 0.01
    assert abs(counts["a"] / (counts["a"] + counts["b"]) - 0.75) < 0.02


def test_winner_experiments_keep_the_rest_waiting() -> None:
    experiment = Experiment(ExperimentKind.WINNER, (Variant("a"), Variant("b")), test_fraction=0.2)
    outside = [assign(experiment, "c1", f"p{n}") for n in range(5_000)]
    waiting = [a for a in outside if not a.in_test]
    assert abs(len(waiting) / 5_000 - 0.8) < 0.03
    assert all(a.variant == "" for a in waiting)


def test_buckets_of_different_campaigns_are_independent() -> None:
    same = sum((bucket("c1", f"p{n}") < 0.5) == (bucket("c2", f"p{n}") < 0.5) for n in range(4000))
    assert abs(same / 4000 - 0.5) < 0.04


def test_z_test_finds_a_real_difference_and_not_a_null_one() -> None:
    strong = two_proportions(300, 1000, 200, 1000, 0.05)
    assert strong.p_value < 0.001
    assert strong.low < 0.1 < strong.high
    null = two_proportions(200, 1000, 205, 1000, 0.05)
    assert null.p_value > 0.5
    assert null.low < 0 < null.high


def test_z_test_p_value_matches_the_textbook_value() -> None:
    # 0.30 vs 0.25 with 1000 each: pooled p = 0.275, z = 2.5031, two-sided p = 0.01231.
    result = two_proportions(300, 1000, 250, 1000, 0.05)
    assert abs(result.p_value - 0.01231) < 0.0002


def test_welch_test_on_revenue() -> None:
    left = Moments(1000, 12_000.0, 12_000.0 * 12 + 999 * 25)  # mean 12, var ~25
    right = Moments(1000, 10_000.0, 10_000.0 * 10 + 999 * 25)
    result = two_means(left, right, 0.05)
    assert abs(result.difference - 2.0) < 1e-9
    assert result.p_value < 0.001


def test_the_winner_must_beat_the_others_significantly() -> None:
    clear = [Arm("a", 200, 1000), Arm("b", 300, 1000)]
    assert choose_winner(clear, 0.05).key == "b"
    assert choose_winner(clear, 0.05).significant
    close = [Arm("a", 200, 1000), Arm("b", 210, 1000)]
    winner = choose_winner(close, 0.05)
    assert (winner.key, winner.significant) == ("a", False)


def test_thompson_sampling_converges_on_the_best_arm() -> None:
    rng = random.Random(7)
    truth = {"a": 0.05, "b": 0.10, "c": 0.04}
    results = {key: [0, 0] for key in truth}
    for _ in range(3000):
        arms = {k: (v[0], v[1]) for k, v in results.items()}
        chosen = thompson_choice(arms, rng)
        results[chosen][1] += 1
        results[chosen][0] += rng.random() < truth[chosen]
    assert results["b"][1] > 0.6 * 3000


def test_a_send_draws_the_same_variant_on_every_retry() -> None:
    arms = {"a": (10, 100), "b": (11, 100)}
    first = thompson_choice(arms, send_rng("send-1"))
    assert all(thompson_choice(arms, send_rng("send-1")) == first for _ in range(20))


def test_experiment_defaults() -> None:
    assert Experiment().window == timedelta(hours=4)
