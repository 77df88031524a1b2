"""Identity resolution on generated records: speed and quality, each beside a baseline.

One run resolves N generated records (100,000; 10,000 with --quick) and measures:

- comparisons/s: candidate pairs turned into comparison vectors per second (all levels of
  every comparison), against a plain Python loop of rapidfuzz Jaro-Winkler over the same
  pairs on four fields, and against bare `rapidfuzz.process.cpdist` (the pairwise form of
  `cdist`) over the same pairs and fields;
- records/s end to end (normalise, block, compare, fit by EM, score, cluster), against
  the records/s of that plain Jaro-Winkler loop alone: how much the whole resolution
  costs beside just scoring its candidate pairs once;
- precision, recall and F1 against the generator's truth, against the deterministic
  links alone (shared user id or normalised email) on the same records.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from bench.common import Result
from mailwright_profile.matching.blocking import candidate_pairs
from mailwright_profile.matching.cluster import IdentityGraph
from mailwright_profile.matching.evaluate import PairwiseScores, pairwise_scores
from mailwright_profile.matching.features import FeatureTable, build_features
from mailwright_profile.matching.generate import generate_records
from mailwright_profile.matching.resolve import ResolutionSettings, link_deterministic, resolve

_FIELDS = ("first_name", "last_name", "email", "address")


class _StageClock:
    """When each stage of `resolve` was first reported."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.started.setdefault(stage, time.perf_counter())

    def seconds(self, stage: str, next_stage: str) -> float:
        return self.started[next_stage] - self.started[stage]


def _values(table: FeatureTable, field: str) -> list[str]:
    return ["" if value is None else value for value in table.column(field)]


def _loop_seconds(table: FeatureTable, left: Sequence[int], right: Sequence[int]) -> float:
    columns = [_values(table, field) for field in _FIELDS]
    similarity = JaroWinkler.normalized_similarity
    started = time.perf_counter()
    for a, b in zip(left, right, strict=True):
        for values in columns:
            similarity(values[a], values[b])
    return time.perf_counter() - started


def _cpdist_seconds(table: FeatureTable, left: Sequence[int], right: Sequence[int]) -> float:
    columns = [_values(table, field) for field in _FIELDS]
    pairs = [([values[a] for a in left], [values[b] for b in right]) for values in columns]
    started = time.perf_counter()
    for queries, choices in pairs:
        process.cpdist(queries, choices, scorer=JaroWinkler.normalized_similarity, workers=-1)
    return time.perf_counter() - started


def _deterministic_scores(table: FeatureTable, truth: dict[str, str]) -> PairwiseScores:
    graph = IdentityGraph(table.record_ids, list(table.column("user_id")))
    link_deterministic(table, graph)
    return pairwise_scores(graph.clustering().profile_ids(), truth)


def _quality(name: str, value: float, baseline: float, goal: str) -> Result:
    return Result(
        name=f"identity {name}",
        value=100 * value,
        unit=f"% {name}",
        baseline=100 * baseline,
        baseline_unit=f"% {name}, deterministic links only",
        ratio=value / baseline if baseline else float("inf"),
        goal=goal,
    )


def run(quick: bool) -> list[Result]:
    count = 10_000 if quick else 100_000
    generated = generate_records(count, seed=7)
    settings = ResolutionSettings(default_region="US")

    clock = _StageClock()
    started = time.perf_counter()
    resolution = resolve(generated.records, settings, progress=clock)
    total_seconds = time.perf_counter() - started
    compare_rate = resolution.comparisons / clock.seconds("comparing", "fitting")
    scores = pairwise_scores(resolution.profile_ids(), generated.truth)

    table = build_features(generated.records, default_region=settings.default_region)
    candidates = candidate_pairs(
        table, settings.blocking_rules, max_block_size=settings.max_block_size
    )
    left, right = candidates.left.tolist(), candidates.right.tolist()
    loop_rate = len(left) / _loop_seconds(table, left, right)
    cpdist_rate = len(left) / _cpdist_seconds(table, left, right)
    deterministic = _deterministic_scores(table, generated.truth)

    records_rate = count / total_seconds
    loop_records_rate = count / (len(left) / loop_rate)
    return [
        Result(
            "identity comparisons/s",
            compare_rate,
            "pairs/s (all levels, 5 comparisons + nicknames, dates, address/phone)",
            loop_rate,
            "pairs/s (Python loop, Jaro-Winkler on 4 fields)",
            compare_rate / loop_rate,
            ">= 1.0",
        ),
        Result(
            "identity comparisons/s vs cpdist",
            compare_rate,
            "pairs/s",
            cpdist_rate,
            "pairs/s (bare rapidfuzz cpdist, Jaro-Winkler on 4 fields)",
            compare_rate / cpdist_rate,
            ">= 0.2",
        ),
        Result(
            f"identity records/s ({count:,} records, {resolution.comparisons:,} pairs)",
            records_rate,
            "records/s end to end",
            loop_records_rate,
            "records/s of the Jaro-Winkler loop alone",
            records_rate / loop_records_rate,
            ">= 0.05",
        ),
        # exact links are all but always right: give up at most 3 % of their precision
        _quality("precision", scores.precision, deterministic.precision, ">= 0.97 (and >= 95 %)"),
        _quality("recall", scores.recall, deterministic.recall, ">= 1.5 (target >= 95 %)"),
        _quality("F1", scores.f1, deterministic.f1, ">= 1.3 (target >= 95 %)"),
    ]
