"""Pairwise precision, recall and F1."""

from __future__ import annotations

import pytest

from mailwright_profile.matching.evaluate import pairwise_scores


def test_a_perfect_clustering_scores_one() -> None:
    truth = {"a": "p1", "b": "p1", "c": "p2"}
    scores = pairwise_scores({"a": "x", "b": "x", "c": "y"}, truth)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)


def test_scores_count_pairs() -> None:
    truth = {"a": "p1", "b": "p1", "c": "p1", "d": "p2"}
    predicted = {"a": "x", "b": "x", "c": "y", "d": "y"}  # a-b right, c-d wrong, a-c b-c missed
    scores = pairwise_scores(predicted, truth)
    assert scores.true_positives == 1
    assert scores.predicted_pairs == 2
    assert scores.true_pairs == 3
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(1 / 3)
    assert scores.f1 == pytest.approx(0.4)


def test_no_predicted_pairs_is_full_precision() -> None:
    scores = pairwise_scores({"a": "x", "b": "y"}, {"a": "p", "b": "p"})
    assert scores.precision == 1.0
    assert scores.recall == 0.0


def test_different_record_ids_are_an_error_naming_them() -> None:
    with pytest.raises(ValueError, match="r2"):
        pairwise_scores({"r1": "x"}, {"r1": "p", "r2": "p"})
