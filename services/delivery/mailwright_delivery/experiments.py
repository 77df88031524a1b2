"""Experiments: who gets which variant, who is held out, which variant won, and the
Thompson-sampling bandit.

Assignment hashes the campaign id and the person: the same person always lands in the
same bucket of the same campaign, on every replica and after every retry, and buckets of
different purposes (holdout, test cohort, variant) are independent because each hashes
its own salt.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from mailwright_delivery.model import Experiment, ExperimentKind, Variant

_NORMAL = NormalDist()


def bucket(salt: str, key: str) -> float:
    """A uniform number in [0, 1) fixed by `salt` and `key` (SHA-256, 64 bits)."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def weighted_choice(variants: Sequence[Variant], point: float) -> Variant:
    """The variant whose share of the total weight covers `point` in [0, 1)."""
    total = sum(max(v.weight, 0.0) for v in variants)
    if total <= 0:
        return variants[min(int(point * len(variants)), len(variants) - 1)]
    edge = 0.0
    for variant in variants:
        edge += max(variant.weight, 0.0) / total
        if point < edge:
            return variant
    return variants[-1]


@dataclass(frozen=True)
class Assignment:
    variant: str = ""
    holdout: bool = False
    # WINNER experiments: False for the rest of the audience, who wait for the winner.
    in_test: bool = True


def assign(experiment: Experiment, campaign: str, profile_id: str) -> Assignment:
    """The fixed part of a person's assignment in a campaign.

    Bandit sends get their variant when they are sent (the posterior moves meanwhile),
    and the rest of a WINNER audience gets the winner once chosen.
    """
    if experiment.holdout_fraction > 0 and (
        bucket(f"{campaign}:holdout", profile_id) < experiment.holdout_fraction
    ):
        return Assignment(holdout=True)
    if experiment.kind is ExperimentKind.NONE or not experiment.variants:
        return Assignment()
    if experiment.kind is ExperimentKind.BANDIT:
        return Assignment()
    if experiment.kind is ExperimentKind.WINNER and (
        bucket(f"{campaign}:test", profile_id) >= experiment.test_fraction
    ):
        return Assignment(in_test=False)
    variant = weighted_choice(experiment.variants, bucket(f"{campaign}:variant", profile_id))
    return Assignment(variant=variant.key)


# -- significance ------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """left - right, with a (1 - alpha) confidence interval and a two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float


def two_proportions(
    left_successes: int, left_trials: int, right_successes: int, right_trials: int, alpha: float
) -> Difference:
    """Two-proportion z-test (pooled variance for the p-value, unpooled for the interval)."""
    if left_trials <= 0 or right_trials <= 0:
        return Difference(0.0, 0.0, 0.0, 1.0)
    p1 = left_successes / left_trials
    p2 = right_successes / right_trials
    diff = p1 - p2
    pooled = (left_successes + right_successes) / (left_trials + right_trials)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / left_trials + 1 / right_trials))
    p_value = 1.0 if se_pooled == 0 else 2 * (1 - _NORMAL.cdf(abs(diff) / se_pooled))
    se = math.sqrt(p1 * (1 - p1) / left_trials + p2 * (1 - p2) / right_trials)
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    return Difference(diff, diff - z * se, diff + z * se, min(1.0, max(0.0, p_value)))


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of a per-send value (revenue)."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(0.0, (self.squares - self.total**2 / self.n) / (self.n - 1))


def two_means(left: Moments, right: Moments, alpha: float) -> Difference:
    """Welch's test of two means with the normal approximation (audiences are large)."""
    if left.n < 2 or right.n < 2:
        return Difference(left.mean - right.mean, 0.0, 0.0, 1.0)
    diff = left.mean - right.mean
    se = math.sqrt(left.variance / left.n + right.variance / right.n)
    if se == 0:
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0)
    p_value = 2 * (1 - _NORMAL.cdf(abs(diff) / se))
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    return Difference(diff, diff - z * se, diff + z * se, p_value)


@dataclass(frozen=True)
class Arm:
    """A variant's results: successes out of trials (opens of sends, say), or moments."""

    key: str
    successes: int
    trials: int
    moments: Moments | None = None

    @property
    def rate(self) -> float:
        if self.moments is not None:
            return self.moments.mean
        return self.successes / self.trials if self.trials else 0.0


@dataclass(frozen=True)
class Winner:
    key: str
    significant: bool
    p_value: float


def compare_arms(left: Arm, right: Arm, alpha: float) -> Difference:
    if left.moments is not None and right.moments is not None:
        return two_means(left.moments, right.moments, alpha)
    return two_proportions(left.successes, left.trials, right.successes, right.trials, alpha)


def choose_winner(arms: Sequence[Arm], alpha: float) -> Winner:
    """The best arm when it beats every other at `alpha` (Bonferroni-corrected for the
    number of comparisons); otherwise the first arm, the control, since the test could
    not tell the variants apart."""
    if not arms:
        raise ValueError("arms: no variant to choose from")
    if len(arms) == 1:
        return Winner(arms[0].key, False, 1.0)
    best = max(arms, key=lambda arm: arm.rate)
    corrected = alpha / (len(arms) - 1)
    worst_p = 0.0
    for other in arms:
        if other is best:
            continue
        worst_p = max(worst_p, compare_arms(best, other, corrected).p_value)
    if worst_p < corrected and best.rate > 0:
        return Winner(best.key, True, worst_p)
    return Winner(arms[0].key, False, worst_p)


# -- Thompson sampling -------------------------------------------------------------


def thompson_choice(arms: Mapping[str, tuple[int, int]], rng: random.Random) -> str:
    """Draw each arm's rate from Beta(1 + successes, 1 + failures); the highest draw wins.

    `arms` maps a variant key to (successes, trials); ties go to the first arm listed.
    """
    if not arms:
        raise ValueError("arms: no variant to choose from")
    best_key = ""
    best_draw = -1.0
    for key, (successes, trials) in arms.items():
        failures = max(trials - successes, 0)
        draw = rng.betavariate(1 + max(successes, 0), 1 + failures)
        if draw > best_draw:
            best_key, best_draw = key, draw
    return best_key


def send_rng(send_id: str) -> random.Random:
    """A generator seeded by the send: a retried send draws the same variant."""
    return random.Random(int.from_bytes(hashlib.sha256(send_id.encode()).digest()[:8], "big"))
