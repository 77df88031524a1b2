"""The Fellegi-Sunter model: m and u probabilities per comparison level, fitted by EM.

For each comparison j and level l, m[j][l] is the probability that a matching pair is at
level l, u[j][l] that a non-matching pair is. A pair's match weight is the sum over its
comparisons of log2(m/u) at its levels (missing values add nothing), and with the prior
λ (the share of candidate pairs that match) its match probability is
λ·2^w / (λ·2^w + 1 - λ).

m, u and λ are estimated without labels by expectation-maximisation over the comparison
vectors of the candidate pairs, u starting from the levels of random pairs (almost all of
which are non-matches). EM runs on the distinct comparison vectors with their counts, so
an iteration costs the number of distinct vectors (hundreds to a few thousand), not the
number of pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mailwright_profile.matching.comparisons import NULL_LEVEL, Comparison
from mailwright_profile.matching.features import FeatureTable

__all__ = [
    "EMResult",
    "MatchModel",
    "exact_agreement_u",
    "fit_em",
    "initial_m",
    "level_frequencies",
    "term_frequencies",
]

FloatArray = npt.NDArray[np.float64]
GammaArray = npt.NDArray[np.int8]
_PSEUDO_COUNT = 0.5
_FLOOR = 1e-9


@dataclass(frozen=True)
class MatchModel:
    """Fitted m and u probabilities per comparison level and the prior λ."""

    names: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    m: tuple[FloatArray, ...]
    u: tuple[FloatArray, ...]
    prior: float

    def __post_init__(self) -> None:
        for name, labels, m, u in zip(self.names, self.labels, self.m, self.u, strict=True):
            if not len(labels) == len(m) == len(u):
                raise ValueError(f"comparison {name!r}: labels, m and u differ in length")
        if not 0.0 < self.prior < 1.0:
            raise ValueError(f"prior must lie strictly between 0 and 1, not {self.prior}")

    def level_weights(self, comparison: int) -> FloatArray:
        """log2(m/u) of each level of one comparison."""
        weights: FloatArray = np.log2(self.m[comparison] / self.u[comparison])
        return weights

    def field_weights(self, gamma: GammaArray) -> FloatArray:
        """The weight each comparison gives each pair (0 at the null level)."""
        weights = np.zeros(gamma.shape, dtype=np.float64)
        for column in range(gamma.shape[1]):
            level = gamma[:, column]
            present = level != NULL_LEVEL
            weights[present, column] = self.level_weights(column)[level[present]]
        return weights

    def probability(self, weight: FloatArray) -> FloatArray:
        """Match probabilities of pairs with the given total match weights."""
        log_odds = np.log2(self.prior / (1.0 - self.prior)) + weight
        result: FloatArray = 1.0 / (1.0 + np.exp2(-np.clip(log_odds, -1000.0, 1000.0)))
        return result

    def to_json(self) -> dict[str, object]:
        """The model as plain JSON (comparison names, labels, m, u, prior)."""
        return {
            "names": list(self.names),
            "labels": [list(labels) for labels in self.labels],
            "m": [[float(x) for x in values] for values in self.m],
            "u": [[float(x) for x in values] for values in self.u],
            "prior": self.prior,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MatchModel:
        """A model from `to_json`; ValueError when it is not one."""
        try:
            return cls(
                names=tuple(str(n) for n in raw["names"]),
                labels=tuple(tuple(str(x) for x in labels) for labels in raw["labels"]),
                m=tuple(np.asarray(values, dtype=np.float64) for values in raw["m"]),
                u=tuple(np.asarray(values, dtype=np.float64) for values in raw["u"]),
                prior=float(raw["prior"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a match model: {error}") from error

    def describe(self) -> list[dict[str, object]]:
        """Every level with its m, u and weight, for reports and documentation."""
        rows: list[dict[str, object]] = []
        for index, name in enumerate(self.names):
            weights = self.level_weights(index)
            for level, label in enumerate(self.labels[index]):
                rows.append(
                    {
                        "comparison": name,
                        "level": level,
                        "label": label,
                        "m": float(self.m[index][level]),
                        "u": float(self.u[index][level]),
                        "weight": float(weights[level]),
                    }
                )
        return rows


@dataclass(frozen=True)
class EMResult:
    model: MatchModel
    iterations: int
    converged: bool


def level_frequencies(gamma: GammaArray, level_counts: Sequence[int]) -> tuple[FloatArray, ...]:
    """The share of pairs at each level of each comparison, nulls left out (smoothed)."""
    result = []
    for column, count in enumerate(level_counts):
        levels = gamma[:, column]
        counts = np.bincount(levels[levels != NULL_LEVEL], minlength=count)[:count]
        smoothed = counts.astype(np.float64) + _PSEUDO_COUNT
        result.append(smoothed / smoothed.sum())
    return tuple(result)


def exact_agreement_u(table: FeatureTable, comparison: Comparison) -> float | None:
    """The chance that two different records agree exactly on the comparison's column:
    the sum of squared value frequencies, exact where random sampling sees too few
    agreements to estimate it."""
    if comparison.exact_level() is None:
        return None
    codes = table.code(comparison.column)
    counts = np.bincount(codes[codes >= 0]).astype(np.float64)
    total = counts.sum()
    if total < 2:
        return None
    return float(max((counts * (counts - 1)).sum() / (total * (total - 1)), _FLOOR))


def term_frequencies(table: FeatureTable, comparison: Comparison) -> FloatArray | None:
    """For a term-frequency comparison, the share of records holding each value code."""
    if not comparison.term_frequency or comparison.exact_level() is None:
        return None
    codes = table.code(comparison.column)
    counts = np.bincount(codes[codes >= 0]).astype(np.float64)
    frequencies: FloatArray = counts / max(counts.sum(), 1.0)
    return frequencies


def initial_m(level_counts: Sequence[int]) -> tuple[FloatArray, ...]:
    """A starting m: most matches agree exactly, fewer at each lower level."""
    result = []
    for count in level_counts:
        raw = 0.5 ** np.arange(count, 0, -1, dtype=np.float64) * 2.0
        raw[-1] = max(raw[-1], 0.6 * raw.sum())
        result.append(raw / raw.sum())
    return tuple(result)


def _compress(gamma: GammaArray, base: int) -> tuple[npt.NDArray[np.int8], FloatArray]:
    """The distinct comparison vectors and how many pairs have each."""
    if base ** gamma.shape[1] < 2**62:
        weights = base ** np.arange(gamma.shape[1], dtype=np.int64)
        keys = (gamma.astype(np.int64) + 1) @ weights
        unique, counts = np.unique(keys, return_counts=True)
        patterns = (unique[:, None] // weights[None, :]) % base - 1
        return patterns.astype(np.int8), counts.astype(np.float64)
    rows, counts = np.unique(gamma, axis=0, return_counts=True)
    return rows.astype(np.int8), counts.astype(np.float64)


def _log_table(probabilities: Sequence[FloatArray], width: int) -> FloatArray:
    """log of each level's probability, column 0 (the null level) being log 1 = 0."""
    table = np.zeros((len(probabilities), width), dtype=np.float64)
    for row, values in enumerate(probabilities):
        table[row, 1 : len(values) + 1] = np.log(np.maximum(values, _FLOOR))
    return table


def _maximise(
    patterns: npt.NDArray[np.int8], weights: FloatArray, level_counts: Sequence[int]
) -> tuple[FloatArray, ...]:
    result = []
    for column, count in enumerate(level_counts):
        levels = patterns[:, column]
        present = levels != NULL_LEVEL
        totals = np.bincount(levels[present], weights=weights[present], minlength=count)
        smoothed = totals[:count] + _PSEUDO_COUNT
        result.append(smoothed / smoothed.sum())
    return tuple(result)


def fit_em(
    gamma: GammaArray,
    comparisons: Sequence[Comparison],
    *,
    u: Sequence[FloatArray],
    m: Sequence[FloatArray] | None = None,
    prior: float = 0.1,
    background: GammaArray | None = None,
    background_weight: float = 1.0,
    fix_u: bool = False,
    fix_m: bool = False,
    max_iterations: int = 200,
    tolerance: float = 1e-6,
) -> EMResult:
    """Estimate m, u and λ from unlabelled comparison vectors by EM.

    `u` (usually the level frequencies of random pairs) and `m` (default `initial_m`)
    are the starting values; with `fix_u` (`fix_m`), u (m) stays as given.

    `background` stands for pairs that were not compared one by one: each of its rows
    counts `background_weight` times. Passing a random sample of the pairs left out by
    blocking, weighted up to their number, fits the model to all pairs of records: u and
    λ then describe all pairs (λ is the chance that two random records match), not the
    candidates, whose non-matches agree on blocking keys far more often than pairs at
    large. Stops when no parameter moves by more than `tolerance` or after
    `max_iterations`.
    """
    level_counts = [comparison.level_count for comparison in comparisons]
    if gamma.ndim != 2 or gamma.shape[1] != len(comparisons):
        raise ValueError("gamma must have one column per comparison")
    if len(gamma) == 0:
        raise ValueError("EM needs at least one comparison vector")
    width = max(level_counts) + 1
    patterns, counts = _compress(gamma, width)
    if background is not None and len(background):
        extra_patterns, extra_counts = _compress(background, width)
        patterns = np.concatenate((patterns, extra_patterns))
        counts = np.concatenate((counts, extra_counts * background_weight))
    columns = np.arange(len(level_counts))[None, :]
    m_now = tuple(np.asarray(values, dtype=np.float64) for values in (m or initial_m(level_counts)))
    u_now = tuple(np.asarray(values, dtype=np.float64) for values in u)
    prior_now = prior
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007
        log_m = _log_table(m_now, width)[columns, patterns + 1].sum(axis=1)
        log_u = _log_table(u_now, width)[columns, patterns + 1].sum(axis=1)
        log_odds = np.log(prior_now) - np.log1p(-prior_now) + log_m - log_u
        posterior = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700.0, 700.0)))
        match_weight = counts * posterior
        m_next = m_now if fix_m else _maximise(patterns, match_weight, level_counts)
        u_next = u_now if fix_u else _maximise(patterns, counts - match_weight, level_counts)
        prior_next = float(np.clip(match_weight.sum() / counts.sum(), 1e-15, 1.0 - 1e-9))
        change = max(
            abs(prior_next - prior_now),
            *(float(np.abs(a - b).max()) for a, b in zip(m_next, m_now, strict=True)),
            *(float(np.abs(a - b).max()) for a, b in zip(u_next, u_now, strict=True)),
        )
        m_now, u_now, prior_now = m_next, u_next, prior_next
        if change < tolerance:
            converged = True
            break
    model = MatchModel(
        names=tuple(comparison.name for comparison in comparisons),
        labels=tuple(comparison.labels for comparison in comparisons),
        m=m_now,
        u=u_now,
        prior=prior_now,
    )
    return EMResult(model=model, iterations=iteration, converged=converged)
