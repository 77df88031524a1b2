from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mailwright_profile.matching.comparisons import DEFAULT_COMPARISONS, NULL_LEVEL, compare_pairs
from mailwright_profile.matching.features import build_features
from mailwright_profile.matching.records import Record


def compare_two(first: Record, second: Record) -> dict[str, str]:
    """The label of the level each default comparison gives the pair."""
    table = build_features([first, second], default_region="US")
    gamma = compare_pairs(table, DEFAULT_COMPARISONS, np.array([0]), np.array([1]))[0]
    return {
        comparison.name: "missing" if level == NULL_LEVEL else comparison.labels[level]
        for comparison, level in zip(DEFAULT_COMPARISONS, gamma, strict=True)
    }


@pytest.fixture
def levels() -> Callable[[dict[str, str], dict[str, str]], dict[str, str]]:
    """levels(left_traits, right_traits) → {comparison: level label}."""

    def compare(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
        return compare_two(Record("a", **left), Record("b", **right))

    return compare
