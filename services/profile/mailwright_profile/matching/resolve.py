"""Identity resolution of a batch of records: which records are one person.

The stages, in order:
1. normalise every record (`features.build_features`);
2. link with certainty the records that share a user id or a normalised email;
3. block: gather candidate pairs with the blocking rules, far fewer than all pairs;
4. compare each candidate pair into a comparison vector;
5. fit the Fellegi-Sunter model by EM, u starting from random pairs;
6. score each pair (match weight, term-frequency adjusted, and match probability);
7. merge pairs at or above `threshold`, strongest first; keep pairs in the review band
   [`review_threshold`, `threshold`) that ended in different profiles for a person to
   look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mailwright_profile.matching.blocking import (
    DEFAULT_BLOCKING_RULES,
    BlockingRule,
    CandidatePairs,
    candidate_pairs,
)
from mailwright_profile.matching.cluster import Clustering, FieldEvidence, IdentityGraph, Link
from mailwright_profile.matching.comparisons import (
    DEFAULT_COMPARISONS,
    NULL_LEVEL,
    Comparison,
    compare_pairs,
)
from mailwright_profile.matching.features import FeatureTable, build_features
from mailwright_profile.matching.model import MatchModel, exact_agreement_u, term_frequencies
from mailwright_profile.matching.records import Record, RecordError
from mailwright_profile.matching.training import (
    DEFAULT_TRAINING_SESSIONS,
    TrainingSession,
    train_model,
)

__all__ = [
    "Progress",
    "Resolution",
    "ResolutionSettings",
    "ScoredPair",
    "link_deterministic",
    "resolve",
]

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]
"""Told (stage, done, total) as work advances; a stage starts with done = 0."""
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ResolutionSettings:
    """How to resolve: thresholds on the match probability, blocking and model options."""

    threshold: float = 0.9
    review_threshold: float = 0.5
    default_region: str | None = None
    day_first: bool = False
    comparisons: tuple[Comparison, ...] = DEFAULT_COMPARISONS
    blocking_rules: tuple[BlockingRule, ...] = DEFAULT_BLOCKING_RULES
    max_block_size: int = 200
    window: int = 20
    random_pairs: int = 300_000
    em_iterations: int = 200
    training_sessions: tuple[TrainingSession, ...] = DEFAULT_TRAINING_SESSIONS
    term_frequency: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in (0, 1], not {self.threshold}")
        if not 0.0 < self.review_threshold <= self.threshold:
            raise ValueError(
                f"review_threshold must lie in (0, threshold={self.threshold}], "
                f"not {self.review_threshold}"
            )


@dataclass(frozen=True)
class ScoredPair:
    left: str
    right: str
    probability: float
    match_weight: float
    evidence: tuple[FieldEvidence, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """The outcome: profiles with their merges, pairs to review, and what it took."""

    clustering: Clustering
    model: MatchModel | None
    review: tuple[ScoredPair, ...]
    records: int
    comparisons: int
    deterministic_links: int
    matches: int
    em_iterations: int
    em_converged: bool
    pairs_per_rule: dict[str, int] = field(default_factory=dict)
    capped_blocks: int = 0
    unparsed: dict[str, int] = field(default_factory=dict)

    @property
    def clusters(self) -> int:
        return len(self.clustering.clusters)

    @property
    def merges(self) -> int:
        return len(self.clustering.merges)

    def profile_ids(self) -> dict[str, str]:
        """Every record id → its profile id."""
        return self.clustering.profile_ids()

    def explain(self, first: str, second: str) -> tuple[Link, ...] | None:
        """The merges that make two records one profile (see `Clustering.explain`)."""
        return self.clustering.explain(first, second)


def _noop(stage: str, done: int, total: int) -> None:
    return None


def _check_unique(records: Sequence[Record]) -> None:
    seen: set[str] = set()
    for index, record in enumerate(records):
        if record.record_id in seen:
            raise RecordError("record_id", f"duplicate {record.record_id!r} (record {index + 1})")
        seen.add(record.record_id)


def link_deterministic(table: FeatureTable, graph: IdentityGraph) -> int:
    """Join records that share a user id or a normalised email; returns the merges."""
    linked = 0
    for column in ("user_id", "email"):
        codes = table.code(column)
        values = table.column(column)
        first_row: dict[int, int] = {}
        for row in np.flatnonzero(codes >= 0):
            anchor = first_row.setdefault(int(codes[row]), int(row))
            if anchor == row:
                continue
            evidence = FieldEvidence(column, 1, "exact", float("inf"), values[anchor], values[row])
            link = Link(
                table.record_ids[anchor], table.record_ids[row], column, 1.0, evidence=(evidence,)
            )
            linked += graph.join(anchor, int(row), link)
    return linked


def _weights(
    table: FeatureTable,
    settings: ResolutionSettings,
    model: MatchModel,
    gamma: npt.NDArray[np.int8],
    left: npt.NDArray[np.int64],
) -> FloatArray:
    """Each pair's weight per comparison, rare exact agreements weighing more."""
    weights = model.field_weights(gamma)
    if not settings.term_frequency:
        return weights
    for index, comparison in enumerate(settings.comparisons):
        frequencies = term_frequencies(table, comparison)
        average = exact_agreement_u(table, comparison)
        level = comparison.exact_level()
        if frequencies is None or average is None or level is None:
            continue
        exact = np.flatnonzero(gamma[:, index] == level)
        codes = table.code(comparison.column)[left[exact]]
        floor = 1.0 / max(len(table), 1)
        weights[exact, index] += np.log2(average / np.maximum(frequencies[codes], floor))
    return weights


def _evidence(
    table: FeatureTable,
    settings: ResolutionSettings,
    model: MatchModel,
    levels: npt.NDArray[np.int8],
    weights: FloatArray,
    a: int,
    b: int,
) -> tuple[FieldEvidence, ...]:
    evidence = []
    for index, comparison in enumerate(settings.comparisons):
        level = int(levels[index])
        values = table.column(comparison.column)
        label = "missing" if level == NULL_LEVEL else comparison.labels[level]
        evidence.append(
            FieldEvidence(
                comparison.name, level, label, float(weights[index]), values[a], values[b]
            )
        )
    return tuple(evidence)


@dataclass(frozen=True)
class _Scores:
    """Candidate pairs with their comparison vectors and weights, strongest first."""

    left: npt.NDArray[np.int64]
    right: npt.NDArray[np.int64]
    gamma: npt.NDArray[np.int8]
    weights: FloatArray  # per pair and comparison
    total: FloatArray
    probability: FloatArray
    order: npt.NDArray[np.int64]


def _score(
    table: FeatureTable,
    settings: ResolutionSettings,
    candidates: CandidatePairs,
    gamma: npt.NDArray[np.int8],
    model: MatchModel,
) -> _Scores:
    weights = _weights(table, settings, model, gamma, candidates.left)
    total = weights.sum(axis=1)
    # strongest first; ties in pair order, so that the result does not depend on sorting
    order = np.lexsort((np.arange(len(total)), -total)).astype(np.int64)
    return _Scores(
        candidates.left, candidates.right, gamma, weights, total, model.probability(total), order
    )


def _merge(
    graph: IdentityGraph,
    table: FeatureTable,
    settings: ResolutionSettings,
    model: MatchModel,
    scores: _Scores,
    report: Progress,
) -> int:
    """Join the pairs at or above the threshold, strongest first; returns how many."""
    ids = table.record_ids
    accepted = scores.order[scores.probability[scores.order] >= settings.threshold]
    report("clustering", 0, len(accepted))
    for step, k in enumerate(accepted):
        a, b = int(scores.left[k]), int(scores.right[k])
        if not graph.same(a, b):
            evidence = _evidence(table, settings, model, scores.gamma[k], scores.weights[k], a, b)
            probability, weight = float(scores.probability[k]), float(scores.total[k])
            graph.join(a, b, Link(ids[a], ids[b], "match", probability, weight, evidence))
        if step % 10_000 == 0:
            report("clustering", step, len(accepted))
    report("clustering", len(accepted), len(accepted))
    return len(accepted)


def _review(
    graph: IdentityGraph,
    table: FeatureTable,
    settings: ResolutionSettings,
    model: MatchModel,
    scores: _Scores,
) -> list[ScoredPair]:
    """Pairs in the review band whose records ended in different profiles, and pairs
    above the threshold that a conflict kept apart (two user ids, two anchors)."""
    ids = table.record_ids
    probability = scores.probability[scores.order]
    band = scores.order[probability >= settings.review_threshold]
    review = []
    for k in band:
        a, b = int(scores.left[k]), int(scores.right[k])
        if not graph.same(a, b):
            evidence = _evidence(table, settings, model, scores.gamma[k], scores.weights[k], a, b)
            review.append(
                ScoredPair(
                    ids[a],
                    ids[b],
                    float(scores.probability[k]),
                    float(scores.total[k]),
                    evidence,
                )
            )
    return review


def _compare(
    table: FeatureTable, settings: ResolutionSettings, report: Progress
) -> tuple[CandidatePairs, npt.NDArray[np.int8]]:
    report("blocking", 0, 1)
    candidates = candidate_pairs(
        table,
        settings.blocking_rules,
        max_block_size=settings.max_block_size,
        window=settings.window,
    )
    report("blocking", 1, 1)
    done = 0

    def compared(count: int) -> None:
        nonlocal done
        done += count
        report("comparing", done, len(candidates))

    report("comparing", 0, len(candidates))
    gamma = compare_pairs(
        table, settings.comparisons, candidates.left, candidates.right, progress=compared
    )
    log.info("compared %d candidate pairs of %d records", len(candidates), len(table))
    return candidates, gamma


def resolve(
    records: Sequence[Record],
    settings: ResolutionSettings | None = None,
    progress: Progress | None = None,
    *,
    model: MatchModel | None = None,
    anchors: Sequence[str | None] | None = None,
) -> Resolution:
    """Group records into profiles. Raises `RecordError` for duplicate record ids.

    `progress` is told (stage, done, total) as the stages advance: normalising,
    blocking, comparing, fitting, clustering. With `model`, pairs are scored with it
    instead of a model fitted to these records (a batch too small to fit one). With
    `anchors`, records anchored to different values (profiles already resolved) are
    never put in one profile.
    """
    settings = settings or ResolutionSettings()
    report = progress or _noop
    _check_unique(records)
    report("normalising", 0, len(records))
    table = build_features(
        records, default_region=settings.default_region, day_first=settings.day_first
    )
    report("normalising", len(records), len(records))
    graph = IdentityGraph(table.record_ids, list(table.column("user_id")), anchors)
    deterministic = link_deterministic(table, graph)
    candidates, gamma = _compare(table, settings, report)
    review: list[ScoredPair] = []
    matches, iterations, converged = 0, 0, False
    if len(candidates):
        if model is None:
            report("fitting", 0, 1)
            fitted = train_model(
                table,
                settings.comparisons,
                candidates,
                gamma,
                sessions=settings.training_sessions,
                random_pair_count=settings.random_pairs,
                max_block_size=settings.max_block_size,
                seed=settings.seed,
                max_iterations=settings.em_iterations,
            )
            model, iterations, converged = fitted.model, fitted.iterations, fitted.converged
            report("fitting", 1, 1)
        elif model.names != tuple(c.name for c in settings.comparisons):
            raise ValueError("the given model was fitted for other comparisons")
        scores = _score(table, settings, candidates, gamma, model)
        matches = _merge(graph, table, settings, model, scores, report)
        review = _review(graph, table, settings, model, scores)
    return Resolution(
        clustering=graph.clustering(),
        model=model,
        review=tuple(review),
        records=len(records),
        comparisons=len(candidates),
        deterministic_links=deterministic,
        matches=matches,
        em_iterations=iterations,
        em_converged=converged,
        pairs_per_rule=candidates.pairs_per_rule,
        capped_blocks=candidates.capped_blocks,
        unparsed=dict(table.unparsed),
    )
