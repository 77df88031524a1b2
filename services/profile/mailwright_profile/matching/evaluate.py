"""Pairwise precision, recall and F1 of a clustering against the truth.

A pair of records is predicted when both are in one profile and true when both describe
one person. Precision is the share of predicted pairs that are true, recall the share of
true pairs that are predicted. Counting pairs (not records) is the usual measure for
entity resolution: one wrong merge of two large clusters costs many pairs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["PairwiseScores", "pairwise_scores"]


@dataclass(frozen=True)
class PairwiseScores:
    true_positives: int
    predicted_pairs: int
    true_pairs: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def _pairs(size: int) -> int:
    return size * (size - 1) // 2


def pairwise_scores(predicted: Mapping[str, str], truth: Mapping[str, str]) -> PairwiseScores:
    """Scores of predicted cluster labels against true ones, both keyed by record id.

    Both mappings must hold the same record ids; a difference is a `ValueError` that
    names a few of the ids at fault.
    """
    if predicted.keys() != truth.keys():
        missing = sorted(truth.keys() - predicted.keys())[:3]
        extra = sorted(predicted.keys() - truth.keys())[:3]
        raise ValueError(
            f"record ids differ: missing from prediction {missing}, not in truth {extra}"
        )
    both = Counter((predicted[record], truth[record]) for record in truth)
    return PairwiseScores(
        true_positives=sum(_pairs(count) for count in both.values()),
        predicted_pairs=sum(_pairs(count) for count in Counter(predicted.values()).values()),
        true_pairs=sum(_pairs(count) for count in Counter(truth.values()).values()),
    )
