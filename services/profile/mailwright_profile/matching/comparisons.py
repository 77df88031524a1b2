"""Comparison levels: how alike two records are on one field, as a small integer.

A `Comparison` looks at one field of a pair of records and gives a level: -1 when the
value is missing on either side (the null level, which carries no evidence), 0 when the
values differ, and 1, 2, … for increasingly close agreement. Its levels (`levels.py`)
are listed from the closest agreement down; a pair gets the first level whose test it
passes. This module holds the comparisons `resolve` uses by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mailwright_profile.matching.features import FeatureTable
from mailwright_profile.matching.levels import (
    NULL_LEVEL,
    AllOf,
    AnyOf,
    DamerauWithin,
    EitherPresent,
    Exact,
    IndexArray,
    JaroWinklerAtLeast,
    Level,
    Nickname,
    Not,
    PairView,
    SwappedDayMonth,
    SwappedNames,
)

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
