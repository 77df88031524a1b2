"""The normalisers: one canonical form for the many ways people write a value."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mailwright.normalize import (
    correct_clock_skew,
    email_local_part,
    fold_text,
    format_money,
    format_timestamp,
    normalize_country,
    normalize_currency,
    normalize_date,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
    parse_date,
    parse_money,
    parse_timestamp,
    region_of_locale,
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


@pytest.mark.parametrize(
    ("locale", "region"),
    [("en-GB", "GB"), ("fr_FR.UTF-8", "FR"), ("zh-Hant-TW", "TW"), ("en", None), ("", None)],
)
def test_region_of_locale_is_its_country(locale: str, region: str | None) -> None:
    assert region_of_locale(locale) == region


# ---------------------------------------------------------------------------- times

UTC_NOON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        "2025-03-01T12:00:00Z",
        "2025-03-01T12:00:00.000Z",
        "2025-03-01T13:00:00+01:00",
        "2025-03-01T07:00:00-0500",
        "2025-03-01 12:00:00",
        1740830400000,
        "1740830400000",
        1740830400000.0,
        datetime(2025, 3, 1, 12, 0),
    ],
)
def test_parse_timestamp_reads_iso_8601_and_epoch_milliseconds_as_utc(raw: object) -> None:
    parsed = parse_timestamp(raw)
    assert parsed == UTC_NOON
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("yesterday", "not an ISO 8601"),
        ("", "empty"),
        (True, "boolean"),
        (float("nan"), "finite"),
        (1e20, "outside the years"),
        ([], "not list"),
        ("2" * 80, "longer than"),
    ],
)
def test_parse_timestamp_says_why_it_refuses(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_timestamp(raw)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
def test_formatted_timestamps_read_back_to_the_millisecond(moment: datetime) -> None:
    moment = moment.replace(tzinfo=UTC, microsecond=moment.microsecond // 1000 * 1000)
    assert parse_timestamp(format_timestamp(moment)) == moment


def test_clock_skew_moves_the_event_by_the_client_clocks_error() -> None:
    client_fast_by_an_hour = timedelta(hours=1)
    happened = UTC_NOON
    original = happened + client_fast_by_an_hour
    sent = original + timedelta(seconds=30)
    received = happened + timedelta(seconds=30)
    assert correct_clock_skew(original, sent, received) == happened


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=1)),
)
def test_without_skew_the_event_keeps_its_time(happened: datetime, delay: timedelta) -> None:
    assume(happened < datetime.max.replace(tzinfo=UTC) - delay)
    sent = happened + delay
    assert correct_clock_skew(happened, sent, sent) == happened


# ---------------------------------------------------------------------------- money


@pytest.mark.parametrize(("raw", "code"), [("eur", "EUR"), (" USD ", "USD"), ("jpy", "JPY")])
def test_normalize_currency_gives_the_iso_4217_code(raw: str, code: str) -> None:
    assert normalize_currency(raw) == code


@pytest.mark.parametrize("raw", ["euro", "ZZZ", "", "US"])
def test_normalize_currency_of_an_unknown_code_is_none(raw: str) -> None:
    assert normalize_currency(raw) is None


@pytest.mark.parametrize(
    ("raw", "amount"),
    [
        (19.99, "19.99"),
        ("19.990", "19.990"),
        (5, "5"),
        ("-0.5", "-0.5"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_parse_money_is_exact(raw: object, amount: str) -> None:
    assert parse_money(raw) == Decimal(amount)
    assert format_money(parse_money(raw)) == amount


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("1,299.00", "plain decimal"),
        ("1e3", "plain decimal"),
        ("NaN", "plain decimal"),
        ("12 EUR", "plain decimal"),
        (True, "boolean"),
        (None, "NoneType"),
        (float("inf"), "finite"),
        ("9" * 30, "larger than"),
    ],
)
def test_parse_money_refuses_what_is_not_a_plain_amount(raw: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_money(raw)


def test_format_money_never_writes_an_exponent_or_negative_zero() -> None:
    assert format_money(Decimal("1E+2")) == "100"
    assert format_money(Decimal("-0.00")) == "0.00"
