"""Subject-line and content choice: Thompson sampling over variants with Beta posteriors.

Each variant's open (or click) rate has a Beta posterior from its sends and successes. For
a recipient, one rate is drawn from every posterior and the variant with the highest
draw is chosen: a variant is chosen as often as it is likely to be the best, so the
experiment explores while uncertain and exploits as evidence builds. An optional floor
of uniform exploration keeps every variant measured.

Per-segment choice (a segment, or any feature bucket) uses a simple hierarchical model:
a segment's posterior starts from the variant's overall rate, worth `pooling` pseudo-sends,
and is updated by the segment's own sends, so a small segment borrows from the whole and a
large one follows its own data.

The draw for a recipient is seeded by (seed, experiment, recipient): given the same
counts, a retried send picks the same variant. This module depends on numpy and the
standard library only, so the delivery service can take it as it is.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class VariantStats:
    """Sends of a variant and how many of them succeeded (opened or clicked)."""

    sends: int = 0
    successes: int = 0

    def __post_init__(self) -> None:
        if self.sends < 0 or self.successes < 0 or self.successes > self.sends:
            raise ValueError(
                f"successes: need 0 <= successes <= sends, got {self.successes} of {self.sends}"
            )


@dataclass(frozen=True)
class Choice:
    variant: str
    explored: bool  # chosen by the uniform exploration floor, not by the draw
    draws: Mapping[str, float]


@dataclass(frozen=True)
class ThompsonSampler:
    """The choice rule for one experiment; counts are passed in on every call."""

    variants: tuple[str, ...]
    experiment: str = ""
    seed: int = 0
    prior_successes: float = 1.0
    prior_failures: float = 1.0
    exploration: float = 0.0  # probability of a uniformly random variant
    pooling: float = 20.0  # pseudo-sends a segment borrows from the overall rate

    def __post_init__(self) -> None:
        if not self.variants or len(set(self.variants)) != len(self.variants):
            raise ValueError("variants: need at least one, each named once")
        if not (self.prior_successes > 0 and self.prior_failures > 0):
            raise ValueError("prior_successes: the Beta prior needs positive parameters")
        if not 0.0 <= self.exploration <= 1.0:
            raise ValueError(f"exploration: must be within [0, 1], got {self.exploration}")
        if not (self.pooling >= 0 and math.isfinite(self.pooling)):
            raise ValueError(f"pooling: must be >= 0, got {self.pooling}")

    def posterior(
        self,
        stats: Mapping[str, VariantStats],
        segment_stats: Mapping[str, VariantStats] | None = None,
    ) -> tuple[FloatArray, FloatArray]:
        """Beta parameters (a, b) per variant, in the order of `variants`."""
        overall = [stats.get(v, VariantStats()) for v in self.variants]
        a = np.array([self.prior_successes + s.successes for s in overall], dtype=np.float64)
        b = np.array(
            [self.prior_failures + s.sends - s.successes for s in overall], dtype=np.float64
        )
        if segment_stats is None:
            return a, b
        rate = a / (a + b)
        local = [segment_stats.get(v, VariantStats()) for v in self.variants]
        seg_a = np.array([s.successes for s in local], dtype=np.float64)
        seg_b = np.array([s.sends - s.successes for s in local], dtype=np.float64)
        pseudo = self.pooling
        return (
            self.prior_successes + pseudo * rate + seg_a,
            self.prior_failures + pseudo * (1 - rate) + seg_b,
        )

    def expected_rates(
        self,
        stats: Mapping[str, VariantStats],
        segment_stats: Mapping[str, VariantStats] | None = None,
    ) -> dict[str, float]:
        """Posterior mean open (or click) probability of each variant."""
        a, b = self.posterior(stats, segment_stats)
        return dict(zip(self.variants, (a / (a + b)).tolist(), strict=True))

    def choose(
        self,
        recipient: str,
        stats: Mapping[str, VariantStats],
        segment_stats: Mapping[str, VariantStats] | None = None,
    ) -> Choice:
        """The variant for one recipient: deterministic given the seed and the counts."""
        rng = np.random.default_rng(self._recipient_seed(recipient))
        a, b = self.posterior(stats, segment_stats)
        draws = rng.beta(a, b)
        explore = rng.random() < self.exploration
        index = int(rng.integers(len(self.variants))) if explore else int(np.argmax(draws))
        return Choice(
            self.variants[index], explore, dict(zip(self.variants, draws.tolist(), strict=True))
        )

    def choose_many(
        self,
        recipients: Iterable[str],
        stats: Mapping[str, VariantStats],
        segment_stats: Mapping[str, VariantStats] | None = None,
    ) -> dict[str, str]:
        return {r: self.choose(r, stats, segment_stats).variant for r in recipients}

    def probability_best(
        self,
        stats: Mapping[str, VariantStats],
        draws: int = 10_000,
        segment_stats: Mapping[str, VariantStats] | None = None,
    ) -> dict[str, float]:
        """Monte Carlo probability that each variant has the highest rate."""
        rng = np.random.default_rng(self._recipient_seed("probability_best"))
        a, b = self.posterior(stats, segment_stats)
        samples = rng.beta(a, b, size=(draws, len(self.variants)))
        wins = np.bincount(np.argmax(samples, axis=1), minlength=len(self.variants))
        return dict(zip(self.variants, (wins / draws).tolist(), strict=True))

    def _recipient_seed(self, recipient: str) -> int:
        key = f"{self.seed}\x1f{self.experiment}\x1f{recipient}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def tally(outcomes: Sequence[tuple[str, bool]]) -> dict[str, VariantStats]:
    """Counts from (variant, succeeded) pairs: a convenience for callers and tests."""
    sends: dict[str, int] = {}
    wins: dict[str, int] = {}
    for variant, succeeded in outcomes:
        sends[variant] = sends.get(variant, 0) + 1
        wins[variant] = wins.get(variant, 0) + int(succeeded)
    return {v: VariantStats(sends[v], wins[v]) for v in sends}
