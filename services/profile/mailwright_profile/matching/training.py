"""Fitting the match model to a batch of records without labels.

Naive EM over the candidate pairs finds the strongest structure in them, which is not
always "same person": pairs in one city, or one household (same surname, address and
phone), agree on many fields at once and pull the match class towards them. So the model
is fitted in three steps:

1. u from random pairs: nearly all are non-matches, so the share of random pairs at each
   level estimates u for the whole population of pairs.
2. m from training sessions. A session takes the pairs of one blocking rule on fields
   that belong to a person rather than a household (the same email; the same first
   name, last name and birth date), leaves out the comparisons of those fields (they
   agree by construction) and fits m and the session's λ by EM with u held. Each
   comparison's m is the mean over the sessions that could see it.
3. u and λ for all pairs: EM over the candidates plus a random sample of the pairs that
   blocking left out (weighted up to their number), with m held. This recovers the small
   u of rare agreements (a shared address and phone is rare overall, common in
   households) that random pairs are too few to see, and λ, the chance that two random
   records are one person.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mailwright_profile.matching.blocking import (
    BlockingRule,
    CandidatePairs,
    candidate_pairs,
    column_key,
    combined_key,
    random_pairs,
)
from mailwright_profile.matching.comparisons import NULL_LEVEL, Comparison, compare_pairs
from mailwright_profile.matching.features import FeatureTable
from mailwright_profile.matching.model import (
    MatchModel,
    exact_agreement_u,
    fit_em,
    initial_m,
    level_frequencies,
)

__all__ = ["DEFAULT_TRAINING_SESSIONS", "TrainingReport", "TrainingSession", "train_model"]

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
GammaArray = npt.NDArray[np.int8]


@dataclass(frozen=True)
class TrainingSession:
    """Pairs that share `rule`'s key train m for every comparison not in `excludes`."""

    rule: BlockingRule
    excludes: tuple[str, ...]


DEFAULT_TRAINING_SESSIONS: tuple[TrainingSession, ...] = (
    TrainingSession(BlockingRule("same email", column_key("email")), ("email",)),
    TrainingSession(
        BlockingRule(
            "same name and birth date",
            combined_key(("first_name", None), ("last_name", None), ("birth_date", None)),
        ),
        ("first_name", "last_name", "birth_date"),
    ),
)


@dataclass(frozen=True)
class TrainingReport:
    model: MatchModel
    iterations: int
    converged: bool
    session_pairs: dict[str, int]
    untrained: tuple[str, ...]  # comparisons no session could train: m is a default


def _population_u(
    table: FeatureTable, comparisons: Sequence[Comparison], random_gamma: GammaArray
) -> list[FloatArray]:
    u = [
        values.copy()
        for values in level_frequencies(random_gamma, [c.level_count for c in comparisons])
    ]
    for index, comparison in enumerate(comparisons):
        exact = exact_agreement_u(table, comparison)
        level = comparison.exact_level()
        if exact is not None and level is not None:
            others = np.arange(len(u[index])) != level
            u[index][others] = u[index][others] / u[index][others].sum() * (1.0 - exact)
            u[index][level] = exact
    return u


def _session_m(
    table: FeatureTable,
    comparisons: Sequence[Comparison],
    sessions: Sequence[TrainingSession],
    u: Sequence[FloatArray],
    max_block_size: int,
) -> tuple[list[FloatArray], dict[str, int], tuple[str, ...]]:
    names = [comparison.name for comparison in comparisons]
    estimates: list[list[FloatArray]] = [[] for _ in comparisons]
    sizes: dict[str, int] = {}
    for session in sessions:
        unknown = set(session.excludes) - set(names)
        if unknown:
            raise ValueError(
                f"training session {session.rule.name!r} excludes unknown {sorted(unknown)}"
            )
        pairs = candidate_pairs(table, (session.rule,), max_block_size=max_block_size, window=5)
        sizes[session.rule.name] = len(pairs)
        if len(pairs) < 20:
            continue
        gamma = compare_pairs(table, comparisons, pairs.left, pairs.right)
        excluded = [names.index(name) for name in session.excludes]
        gamma[:, excluded] = NULL_LEVEL
        fitted = fit_em(gamma, comparisons, u=u, prior=0.9, fix_u=True, max_iterations=100)
        for index in range(len(comparisons)):
            if index not in excluded and (gamma[:, index] != NULL_LEVEL).sum() >= 20:
                estimates[index].append(fitted.model.m[index])
    defaults = initial_m([c.level_count for c in comparisons])
    m = [np.mean(found, axis=0) if found else defaults[i] for i, found in enumerate(estimates)]
    untrained = tuple(name for name, found in zip(names, estimates, strict=True) if not found)
    return m, sizes, untrained


def train_model(
    table: FeatureTable,
    comparisons: Sequence[Comparison],
    candidates: CandidatePairs,
    candidate_gamma: GammaArray,
    *,
    sessions: Sequence[TrainingSession] = DEFAULT_TRAINING_SESSIONS,
    random_pair_count: int = 300_000,
    max_block_size: int = 200,
    seed: int = 0,
    max_iterations: int = 200,
) -> TrainingReport:
    """Fit m, u and λ to a batch (see the module's docstring for how)."""
    n = len(table)
    left, right = random_pairs(n, random_pair_count, seed)
    outside = ~np.isin(left * n + right, candidates.left * n + candidates.right)
    background = compare_pairs(table, comparisons, left[outside], right[outside])
    u = _population_u(table, comparisons, background)
    m, sizes, untrained = _session_m(table, comparisons, sessions, u, max_block_size)
    if untrained:
        log.warning("no training pairs for comparisons %s; their m is a default", untrained)
    left_out = n * (n - 1) // 2 - len(candidates)
    fitted = fit_em(
        candidate_gamma,
        comparisons,
        u=u,
        m=m,
        prior=max(len(candidates) / max(n * n, 1) * 0.1, 1e-12),
        background=background,
        background_weight=left_out / max(len(background), 1),
        fix_m=True,
        max_iterations=max_iterations,
    )
    return TrainingReport(
        model=fitted.model,
        iterations=fitted.iterations,
        converged=fitted.converged,
        session_pairs=sizes,
        untrained=untrained,
    )
