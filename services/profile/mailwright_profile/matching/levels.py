"""Comparison levels: the vectorised tests that place a pair of records at a level.

A level tests every pair of a `PairView` at once and answers with a boolean array. The
string work (Jaro-Winkler, Damerau-Levenshtein) is done by rapidfuzz on the pairs where
both values are present, once per column and kind, and cached on the view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from mailwright_profile.matching.features import FeatureTable, ObjectArray

__all__ = [
    "NULL_LEVEL",
    "AllOf",
    "AnyOf",
    "DamerauWithin",
    "EitherPresent",
    "Exact",
    "JaroWinklerAtLeast",
    "Level",
    "Nickname",
    "Not",
    "PairView",
    "SwappedDayMonth",
    "SwappedNames",
]

NULL_LEVEL = -1
BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.int64]


class PairView:
    """Pairs of rows of a feature table, with the per-column work cached."""

    def __init__(self, table: FeatureTable, left: IndexArray, right: IndexArray) -> None:
        self.table = table
        self.left = left
        self.right = right
        self._scores: dict[tuple[str, str], npt.NDArray[np.float64]] = {}

    def __len__(self) -> int:
        return len(self.left)

    def codes(self, column: str) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        code = self.table.code(column)
        return code[self.left], code[self.right]

    def present(self, column: str) -> BoolArray:
        left, right = self.codes(column)
        result: BoolArray = (left >= 0) & (right >= 0)
        return result

    def score(self, column: str, kind: str) -> npt.NDArray[np.float64]:
        """Jaro-Winkler similarity or Damerau-Levenshtein distance for each pair.

        Pairs missing a value score 0 similarity or a large distance.
        """
        key = (column, kind)
        if key not in self._scores:
            present = self.present(column)
            values: ObjectArray = self.table.column(column)
            left = values[self.left[present]]
            right = values[self.right[present]]
            if kind == "jw":
                result = np.zeros(len(self), dtype=np.float64)
                if len(left):
                    result[present] = process.cpdist(
                        left, right, scorer=JaroWinkler.normalized_similarity, workers=-1
                    )
            else:
                result = np.full(len(self), 1_000.0)
                if len(left):
                    result[present] = process.cpdist(
                        left, right, scorer=DamerauLevenshtein.distance, workers=-1
                    )
            self._scores[key] = result
        return self._scores[key]


class Level:
    """One level of a comparison: a label for people and a vectorised test."""

    label: str

    def test(self, pairs: PairView) -> BoolArray:
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Level):
    """Equal normalised values in `column`."""

    column: str
    label: str = "exact"

    def test(self, pairs: PairView) -> BoolArray:
        left, right = pairs.codes(self.column)
        result: BoolArray = (left == right) & (left >= 0)
        return result


@dataclass(frozen=True)
class JaroWinklerAtLeast(Level):
    """Jaro-Winkler similarity of `column` at or above `threshold`."""

    column: str
    threshold: float
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", f"jaro-winkler >= {self.threshold:g}")

    def test(self, pairs: PairView) -> BoolArray:
        result: BoolArray = pairs.score(self.column, "jw") >= self.threshold
        return result


@dataclass(frozen=True)
class DamerauWithin(Level):
    """At most `distance` insertions, deletions, substitutions or transpositions apart."""

    column: str
    distance: int
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", f"damerau-levenshtein <= {self.distance}")

    def test(self, pairs: PairView) -> BoolArray:
        result: BoolArray = pairs.score(self.column, "dl") <= self.distance
        return result


@dataclass(frozen=True)
class Nickname(Level):
    """First names that may stand for the same formal name (Bob and Robert)."""

    label: str = "nickname"

    def test(self, pairs: PairView) -> BoolArray:
        names = pairs.table.formal_first_names
        left = names[pairs.left][:, :, None]
        right = names[pairs.right][:, None, :]
        result: BoolArray = ((left == right) & (left >= 0)).any(axis=(1, 2))
        return result


@dataclass(frozen=True)
class SwappedNames(Level):
    """First and last names written the other way round on one side."""

    label: str = "first and last names swapped"

    def test(self, pairs: PairView) -> BoolArray:
        first_left, first_right = pairs.codes("first_name")
        last_left, last_right = pairs.codes("last_name")
        result: BoolArray = (
            (first_left == last_right)
            & (last_left == first_right)
            & (first_left >= 0)
            & (last_left >= 0)
            & (first_left != last_left)
        )
        return result


@dataclass(frozen=True)
class SwappedDayMonth(Level):
    """The same date with day and month read the other way round on one side."""

    label: str = "day and month swapped"

    def test(self, pairs: PairView) -> BoolArray:
        date_left, date_right = pairs.codes("birth_date")
        swapped_left, swapped_right = pairs.codes("birth_swapped")
        result: BoolArray = ((swapped_left == date_right) & (swapped_left >= 0)) | (
            (swapped_right == date_left) & (swapped_right >= 0)
        )
        return result


@dataclass(frozen=True)
class AllOf(Level):
    """Passes where every one of `levels` passes."""

    levels: tuple[Level, ...]
    label: str

    def test(self, pairs: PairView) -> BoolArray:
        result = self.levels[0].test(pairs)
        for level in self.levels[1:]:
            result = result & level.test(pairs)
        return result


@dataclass(frozen=True)
class AnyOf(Level):
    """Passes where at least one of `levels` passes."""

    levels: tuple[Level, ...]
    label: str

    def test(self, pairs: PairView) -> BoolArray:
        result = self.levels[0].test(pairs)
        for level in self.levels[1:]:
            result = result | level.test(pairs)
        return result


@dataclass(frozen=True)
class EitherPresent(Level):
    """A value in `column` on at least one side."""

    column: str
    label: str = ""

    def test(self, pairs: PairView) -> BoolArray:
        left, right = pairs.codes(self.column)
        result: BoolArray = (left >= 0) | (right >= 0)
        return result


@dataclass(frozen=True)
class Not(Level):
    """Passes where `level` does not."""

    level: Level
    label: str

    def test(self, pairs: PairView) -> BoolArray:
        return ~self.level.test(pairs)
