"""Thompson sampling: converges to the best variant, explores, is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chisquare

from mailwright_profile.predict.bandit import ThompsonSampler, VariantStats, tally

VARIANTS = ("a", "b", "c")


def _run(
    sampler: ThompsonSampler, rates: dict[str, float], sends: int, batch: int = 100
) -> list[str]:
    """Send in batches; after each batch the counts are updated with simulated opens."""
    rng = np.random.default_rng(99)
    stats = {v: VariantStats() for v in sampler.variants}
    chosen: list[str] = []
    for start in range(0, sends, batch):
        picks = sampler.choose_many([f"r{i}" for i in range(start, start + batch)], stats)
        outcomes = [(v, bool(rng.random() < rates[v])) for v in picks.values()]
        for variant, update in tally(outcomes).items():
            old = stats[variant]
            stats[variant] = VariantStats(
                old.sends + update.sends, old.successes + update.successes
            )
        chosen += list(picks.values())
    return chosen


def test_converges_to_the_best_variant() -> None:
    chosen = _run(ThompsonSampler(VARIANTS, seed=1), {"a": 0.10, "b": 0.15, "c": 0.30}, 4000)
    last_quarter = chosen[-1000:]
    assert last_quarter.count("c") / len(last_quarter) > 0.9
    assert chosen.count("c") > chosen.count("b") > 0
    assert chosen.count("a") > 0  # the worse variants were tried


def test_exploration_floor_keeps_every_variant_in_use() -> None:
    sampler = ThompsonSampler(VARIANTS, seed=1, exploration=0.3)
    chosen = _run(sampler, {"a": 0.10, "b": 0.15, "c": 0.30}, 3000)[-1000:]
    # Each variant gets at least the floor's share, 0.3 / 3, less sampling noise.
    for variant in VARIANTS:
        assert chosen.count(variant) / 1000 > 0.1 - 3 * np.sqrt(0.1 * 0.9 / 1000)


def test_without_data_the_choice_is_uniform() -> None:
    sampler = ThompsonSampler(VARIANTS, seed=5)
    picks = list(sampler.choose_many([f"r{i}" for i in range(3000)], {}).values())
    counts = [picks.count(v) for v in VARIANTS]
    assert chisquare(counts).pvalue > 0.001


def test_the_same_recipient_and_counts_give_the_same_choice() -> None:
    stats = {"a": VariantStats(100, 12), "b": VariantStats(100, 14), "c": VariantStats(100, 13)}
    first = ThompsonSampler(VARIANTS, experiment="x", seed=3)
    again = ThompsonSampler(VARIANTS, experiment="x", seed=3)
    for recipient in ("r1", "r2", "r3", "r4"):
        assert first.choose(recipient, stats) == again.choose(recipient, stats)


def test_seeds_and_experiments_decorrelate_choices() -> None:
    stats = {"a": VariantStats(50, 5), "b": VariantStats(50, 5)}
    recipients = [f"r{i}" for i in range(400)]
    one = ThompsonSampler(("a", "b"), experiment="x").choose_many(recipients, stats)
    other = ThompsonSampler(("a", "b"), experiment="y").choose_many(recipients, stats)
    agreement = sum(one[r] == other[r] for r in recipients) / len(recipients)
    assert abs(agreement - 0.5) < 4 * np.sqrt(0.25 / len(recipients))


def test_a_segment_with_enough_data_follows_its_own_best_variant() -> None:
    overall = {"a": VariantStats(5000, 1000), "b": VariantStats(5000, 500)}
    segment = {"a": VariantStats(400, 20), "b": VariantStats(400, 120)}
    sampler = ThompsonSampler(("a", "b"), pooling=20.0)
    rates = sampler.expected_rates(overall, segment)
    assert rates["b"] > rates["a"]
    picks = sampler.choose_many([f"r{i}" for i in range(200)], overall, segment)
    assert list(picks.values()).count("b") > 190


def test_a_small_segment_borrows_the_overall_rates() -> None:
    overall = {"a": VariantStats(5000, 1000), "b": VariantStats(5000, 500)}
    segment = {"a": VariantStats(2, 0), "b": VariantStats(2, 1)}
    rates = ThompsonSampler(("a", "b"), pooling=50.0).expected_rates(overall, segment)
    assert rates["a"] > rates["b"]


def test_probability_best_is_decisive_with_decisive_data() -> None:
    stats = {"a": VariantStats(2000, 200), "b": VariantStats(2000, 400)}
    assert ThompsonSampler(("a", "b")).probability_best(stats)["b"] > 0.999


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"variants": ()}, "variants"),
        ({"variants": ("a", "a")}, "variants"),
        ({"variants": ("a",), "exploration": 1.5}, "exploration"),
        ({"variants": ("a",), "prior_failures": 0.0}, "prior_successes"),
        ({"variants": ("a",), "pooling": -1.0}, "pooling"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        ThompsonSampler(**kwargs)  # type: ignore[arg-type]


def test_more_successes_than_sends_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^successes:"):
        VariantStats(3, 4)
