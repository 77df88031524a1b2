"""Comparison levels: how alike two records are on one field, as a small integer.

A `Comparison` looks at one field of a pair of records and gives a level: -1 when the
value is missing on either side (the null level, which carries no evidence), 0 when the
values differ, and 1, 2, … for increasingly close agreement. Its levels are listed from
the closest agreement down; a pair gets the first level whose test it passes. Every
test is vectorised over arrays of pair indices, with the string work done by rapidfuzz.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein, JaroWinkler

from mailwright_profile.matching.features import FeatureTable, ObjectArray

__all__ = [
    "DEFAULT_COMPARISONS",
    "NULL_LEVEL",
    "AllOf",
    "AnyOf",
    "Comparison",
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
    "compare_pairs",
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


@dataclass(frozen=True)
class Comparison:
    """How one field of two records compares, as a level.

    `column` decides the null level (missing on either side); `levels` are listed from
    the closest agreement down and a pair takes the first it passes, or 0 ("different").
    Where `null_when` passes, the pair takes the null level instead: the evidence is
    already counted by another comparison (swapped names count once, on the first name).
    With `term_frequency`, an exact agreement on a rare value weighs more than on a
    common one (see `model.MatchModel`).
    """

    name: str
    column: str
    levels: tuple[Level, ...]
    term_frequency: bool = False
    null_when: Level | None = None
    labels: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError(f"comparison {self.name!r} has no levels")
        labels = ("different", *(level.label for level in reversed(self.levels)))
        object.__setattr__(self, "labels", labels)

    @property
    def level_count(self) -> int:
        """Levels other than the null level: 0 (different) to len(levels)."""
        return len(self.levels) + 1

    def exact_level(self) -> int | None:
        """The level of an exact agreement on `column`, if the comparison has one."""
        top = self.levels[0]
        return (
            self.level_count - 1 if isinstance(top, Exact) and top.column == self.column else None
        )

    def compare(self, pairs: PairView) -> npt.NDArray[np.int8]:
        result = np.zeros(len(pairs), dtype=np.int8)
        undecided = np.ones(len(pairs), dtype=np.bool_)
        for index, level in enumerate(self.levels):
            passed = level.test(pairs) & undecided
            result[passed] = self.level_count - 1 - index
            undecided &= ~passed
        missing = ~pairs.present(self.column)
        if self.null_when is not None:
            missing |= self.null_when.test(pairs)
        result[missing] = NULL_LEVEL
        return result


def compare_pairs(
    table: FeatureTable,
    comparisons: Sequence[Comparison],
    left: IndexArray,
    right: IndexArray,
    *,
    chunk_size: int = 250_000,
    progress: Callable[[int], None] | None = None,
) -> npt.NDArray[np.int8]:
    """The comparison vectors of pairs (left[k], right[k]): one row per pair, one column
    per comparison. `progress` is told how many pairs each finished chunk held."""
    gamma = np.empty((len(left), len(comparisons)), dtype=np.int8)
    for start in range(0, len(left), chunk_size):
        stop = min(start + chunk_size, len(left))
        pairs = PairView(table, left[start:stop], right[start:stop])
        for column, comparison in enumerate(comparisons):
            gamma[start:stop, column] = comparison.compare(pairs)
        if progress is not None:
            progress(stop - start)
    return gamma


# A household shares its address and often its phone: the two are compared as one, so
# that agreeing on both is not counted as two independent coincidences.
_SAME_ADDRESS = AllOf(
    (Exact("address"), AnyOf((Exact("postal_code"), Exact("city")), "same postal code or city")),
    "same address",
)

DEFAULT_COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "first_name",
        "first_name",
        (
            Exact("first_name"),
            Nickname(),
            SwappedNames(),
            JaroWinklerAtLeast("first_name", 0.92),
            Exact("first_phonetic", label="same phonetic code"),
            JaroWinklerAtLeast("first_name", 0.8),
        ),
        term_frequency=True,
    ),
    Comparison(
        "last_name",
        "last_name",
        (
            Exact("last_name"),
            DamerauWithin("last_name", 1),
            JaroWinklerAtLeast("last_name", 0.92),
            Exact("last_phonetic", label="same phonetic code"),
            JaroWinklerAtLeast("last_name", 0.8),
        ),
        term_frequency=True,
        # Swapped names are counted once, on the first name. A household shares its
        # surname, so between records at one address or phone a shared surname is no
        # evidence of one person.
        null_when=AnyOf((SwappedNames(), _SAME_ADDRESS, Exact("phone")), "counted elsewhere"),
    ),
    Comparison(
        "email",
        "email",
        (
            Exact("email"),
            Exact("email_local", label="same local part"),
        ),
        # john.smith@ at two providers says little that the names have not said already
        null_when=AllOf(
            (
                Exact("email_local"),
                EitherPresent("email_from_name"),
                Not(Exact("email"), "different address"),
            ),
            "same local part, made of the name",
        ),
    ),
    Comparison(
        "birth_date",
        "birth_date",
        (
            Exact("birth_date"),
            SwappedDayMonth(),
            DamerauWithin("birth_date", 1, label="one character apart"),
            Exact("birth_month", label="same year and month"),
            Exact("birth_year", label="same year"),
        ),
    ),
    Comparison(
        "address_and_phone",
        "contact",
        (
            AllOf((_SAME_ADDRESS, Exact("phone")), "same address and phone"),
            _SAME_ADDRESS,
            Exact("phone", label="same phone"),
            AllOf(
                (
                    JaroWinklerAtLeast("address", 0.9),
                    AnyOf((Exact("postal_code"), Exact("city")), "same postal code or city"),
                ),
                "similar address",
            ),
            Exact("postal_code", label="same postal code"),
            AnyOf((Exact("city"), JaroWinklerAtLeast("city", 0.9)), "same city"),
            Exact("country", label="same country"),
        ),
    ),
)
