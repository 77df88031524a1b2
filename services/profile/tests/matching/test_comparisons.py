"""Comparison levels: how alike two records are, field by field."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from mailwright_profile.matching.comparisons import (
    DEFAULT_COMPARISONS,
    NULL_LEVEL,
    Comparison,
    Exact,
    JaroWinklerAtLeast,
    compare_pairs,
)
from mailwright_profile.matching.features import build_features
from mailwright_profile.matching.records import Record

Labels = Callable[[dict[str, str], dict[str, str]], dict[str, str]]


def test_identical_names_are_exact_whatever_the_case_and_accents(levels: Labels) -> None:
    result = levels(
        {"first_name": "José", "last_name": "Núñez"}, {"first_name": "JOSE", "last_name": "nunez"}
    )
    assert result["first_name"] == "exact"
    assert result["last_name"] == "exact"


def test_a_nickname_matches_its_formal_name(levels: Labels) -> None:
    assert levels({"first_name": "Bob"}, {"first_name": "Robert"})["first_name"] == "nickname"
    assert levels({"first_name": "Liz"}, {"first_name": "Beth"})["first_name"] == "nickname"


def test_a_transposed_letter_is_one_edit_in_the_last_name(levels: Labels) -> None:
    result = levels({"last_name": "Johnson"}, {"last_name": "Jonhson"})
    assert result["last_name"] == "damerau-levenshtein <= 1"


def test_a_close_first_name_falls_in_a_jaro_winkler_band(levels: Labels) -> None:
    result = levels({"first_name": "Katherine"}, {"first_name": "Katherina"})
    assert result["first_name"] == "jaro-winkler >= 0.92"


def test_names_that_sound_alike_share_a_phonetic_code(levels: Labels) -> None:
    # jaro-winkler 0.89: below the 0.92 band, but both are STFN
    assert levels({"first_name": "Stephen"}, {"first_name": "Steven"})["first_name"] == (
        "same phonetic code"
    )
    assert levels({"last_name": "Catherine"}, {"last_name": "Kathryn"})["last_name"] == (
        "same phonetic code"
    )


def test_swapped_first_and_last_names_count_once_on_the_first_name(levels: Labels) -> None:
    result = levels(
        {"first_name": "Valentina", "last_name": "Li"},
        {"first_name": "Li", "last_name": "Valentina"},
    )
    assert result["first_name"] == "first and last names swapped"
    assert result["last_name"] == "missing"


def test_a_missing_value_on_either_side_is_the_null_level(levels: Labels) -> None:
    result = levels({"first_name": "Ann"}, {"first_name": "Ann", "birth_date": "1980-01-01"})
    assert result["birth_date"] == "missing"
    assert result["email"] == "missing"


def test_different_values_are_level_zero(levels: Labels) -> None:
    assert levels({"first_name": "Ann"}, {"first_name": "Zoltan"})["first_name"] == "different"


@pytest.mark.parametrize(
    ("left", "right", "label"),
    [
        ("1985-03-14", "14.03.1985", "exact"),
        ("1985-03-04", "1985-04-03", "day and month swapped"),
        ("1985-03-14", "1985-03-15", "one character apart"),
        ("1985-03-01", "1985-03-28", "same year and month"),
        ("1985-03-01", "1985-11-28", "same year"),
        ("1985-03-01", "1971-11-28", "different"),
    ],
)
def test_birth_dates_agree_in_part(levels: Labels, left: str, right: str, label: str) -> None:
    assert levels({"birth_date": left}, {"birth_date": right})["birth_date"] == label


def test_emails_agree_after_provider_rules(levels: Labels) -> None:
    result = levels({"email": "Jane.Doe@gmail.com"}, {"email": "janedoe+news@googlemail.com"})
    assert result["email"] == "exact"


def test_the_same_local_part_at_another_provider_is_a_level_of_its_own(levels: Labels) -> None:
    result = levels({"email": "zx81fan@yahoo.com"}, {"email": "zx81fan@gmail.com"})
    assert result["email"] == "same local part"


def test_a_local_part_made_of_the_name_says_nothing_at_another_provider(levels: Labels) -> None:
    traits = {"first_name": "John", "last_name": "Smith"}
    result = levels(
        {**traits, "email": "john.smith85@yahoo.com"}, {**traits, "email": "john.smith85@aol.com"}
    )
    assert result["email"] == "missing"


def test_the_same_address_and_phone_is_the_top_contact_level(levels: Labels) -> None:
    home = {"address_line1": "12 Oak Street", "postal_code": "94110", "phone": "415 555 0123"}
    other = {"address_line1": "12 oak st.", "postal_code": "94110-1234", "phone": "+14155550123"}
    assert levels(home, other)["address_and_phone"] == "same address and phone"


def test_a_shared_address_makes_a_shared_surname_no_evidence(levels: Labels) -> None:
    home = {"address_line1": "12 Oak Street", "city": "Boston", "last_name": "Walsh"}
    result = levels({**home, "first_name": "Ann"}, {**home, "first_name": "Tom"})
    assert result["address_and_phone"] == "same address"
    assert result["last_name"] == "missing"


def test_contact_levels_fall_back_to_postal_code_city_and_country(levels: Labels) -> None:
    assert (
        levels({"postal_code": "02139", "city": "Cambridge"}, {"postal_code": "02139"})[
            "address_and_phone"
        ]
        == "same postal code"
    )
    assert levels({"city": "St. Louis"}, {"city": "Saint Louis"})["address_and_phone"] == (
        "same city"
    )
    assert levels({"country": "USA"}, {"country": "United States"})["address_and_phone"] == (
        "same country"
    )


def test_compare_pairs_gives_one_row_per_pair_and_one_column_per_comparison() -> None:
    records = [Record(str(i), first_name=name) for i, name in enumerate(["Ann", "Anne", "Bo"])]
    table = build_features(records)
    gamma = compare_pairs(
        table, DEFAULT_COMPARISONS, np.array([0, 0, 1]), np.array([1, 2, 2]), chunk_size=2
    )
    assert gamma.shape == (3, len(DEFAULT_COMPARISONS))
    assert (gamma[:, 1:] == NULL_LEVEL).all()  # nothing but first names


def test_labels_run_from_different_to_the_closest_agreement() -> None:
    comparison = Comparison(
        "name", "first_name", (Exact("first_name"), JaroWinklerAtLeast("first_name", 0.9))
    )
    assert comparison.labels == ("different", "jaro-winkler >= 0.9", "exact")
    assert comparison.level_count == 3
    assert comparison.exact_level() == 2


def test_a_comparison_needs_levels() -> None:
    with pytest.raises(ValueError, match="no levels"):
        Comparison("empty", "first_name", ())
