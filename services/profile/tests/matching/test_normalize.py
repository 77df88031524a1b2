"""The normalisers: one canonical form for the many ways people write a value."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright_profile.matching.normalize import (
    email_local_part,
    fold_text,
    normalize_country,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
    parse_date,
)


def test_fold_text_removes_accents_case_and_punctuation() -> None:
    assert fold_text("  Müller-Lüdenscheidt ") == "muller ludenscheidt"


def test_fold_text_joins_apostrophes_and_maps_special_letters() -> None:
    assert fold_text("O\u2019Brien Łódź Straße Ørsted") == "obrien lodz strasse orsted"


def test_fold_text_of_nothing_is_none() -> None:
    assert fold_text(" -- ") is None
    assert fold_text(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.O.Hn+news@GoogleMail.com", "john@gmail.com"),
        ("<Jane.Doe+shop@outlook.com>", "jane.doe@outlook.com"),
        ("mailto:a.b+x@example.co.uk", "a.b+x@example.co.uk"),
    ],
)
def test_normalize_email_applies_provider_rules(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


def test_normalize_email_keeps_the_local_part_without_provider_rules() -> None:
    assert normalize_email("J.Doe+x@gmail.com", provider_rules=False) == "j.doe+x@gmail.com"


@pytest.mark.parametrize("raw", ["", "no-at-sign", "a@", "@example.com", "a b@example.com", "a@b"])
def test_normalize_email_rejects_what_is_not_an_address(raw: str) -> None:
    assert normalize_email(raw) is None


@given(st.emails())
def test_normalize_email_is_idempotent(address: str) -> None:
    once = normalize_email(address)
    if once is not None:
        assert normalize_email(once) == once


def test_email_local_part_is_before_the_last_at() -> None:
    assert email_local_part("first.last@example.com") == "first.last"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", "US", "+14155550123"),
        ("+1 415 555 0123", None, "+14155550123"),
        ("07700 900123", "GB", "+447700900123"),
        ("+44 7700 900123", "US", "+447700900123"),
        ("0151 23456789", "de", "+4915123456789"),
    ],
)
def test_normalize_phone_gives_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(("raw", "region"), [("415 555 0123", None), ("12", "US"), ("abc", "US")])
def test_normalize_phone_rejects_unreadable_numbers(raw: str, region: str | None) -> None:
    assert normalize_phone(raw, region) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("USA", "US"),
        ("United States", "US"),
        ("deu", "DE"),
        ("Deutschland", "DE"),
        ("Allemagne", "DE"),
        ("fr", "FR"),
        ("Royaume-Uni", "GB"),
        ("UK", "GB"),
        ("Côte d\u2019Ivoire", "CI"),
    ],
)
def test_normalize_country_reads_codes_and_names(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


def test_normalize_country_of_an_unknown_name_is_none() -> None:
    assert normalize_country("Atlantis") is None


def test_normalize_postal_code_drops_spaces_and_zip_plus_four() -> None:
    assert normalize_postal_code("sw1a 1aa", "GB") == "SW1A1AA"
    assert normalize_postal_code("94110-1234", "US") == "94110"
    assert normalize_postal_code("94110-1234", None) == "941101234"


@pytest.mark.parametrize(
    "raw",
    [
        "1985-03-14",
        "1985/3/14",
        "19850314",
        "1985-03-14T08:30:00Z",
        "14.03.1985",
        "03/14/1985",
        "14/03/1985",
        "March 14, 1985",
        "14 Mar 1985",
        "14th March 1985",
        "14-Mar-85",
    ],
)
def test_normalize_date_reads_common_forms(raw: str) -> None:
    assert normalize_date(raw) == "1985-03-14"


def test_ambiguous_slashed_dates_follow_day_first() -> None:
    assert normalize_date("03/04/1985") == "1985-03-04"
    assert normalize_date("03/04/1985", day_first=True) == "1985-04-03"


def test_two_digit_years_are_never_in_the_future() -> None:
    today = date(2026, 6, 1)
    assert parse_date("01/02/26", today=today) == date(2026, 1, 2)
    assert parse_date("01/02/27", today=today) == date(1927, 1, 2)


@pytest.mark.parametrize("raw", ["1985-02-30", "31/31/1985", "yesterday", "Smarch 3, 1985", ""])
def test_normalize_date_rejects_impossible_or_unknown_dates(raw: str) -> None:
    assert normalize_date(raw) is None


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
def test_iso_dates_read_back_as_themselves(day: date) -> None:
    assert normalize_date(day.isoformat()) == day.isoformat()
    assert normalize_date(day.strftime("%d.%m.%Y")) == day.isoformat()
