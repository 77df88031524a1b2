"""Errors in rule text name the line and column and what was expected, in plain words."""

import re

import pytest

from mailwright.rules import RuleSyntaxError, parse
from mailwright.rules.grammar import MAX_TEXT_LENGTH


def error_of(text: str) -> RuleSyntaxError:
    with pytest.raises(RuleSyntaxError) as info:
        parse(text)
    return info.value


def assert_plain(error: RuleSyntaxError) -> None:
    """No parser internals leak: no terminal names, no $END, no Token reprs."""
    text = str(error)
    assert "$END" not in text
    assert "Token(" not in text
    assert not re.search(r"\b_?[A-Z]{2,}(_[A-Z]+)*\b", text.replace("YYYY-MM-DD", "")), text


def test_a_bare_event_name_asks_for_quotes() -> None:
    error = error_of("event Order Completed")
    assert (error.line, error.column) == (1, 7)
    assert 'unexpected "Order"' in error.message
    assert "double-quoted string" in error.message
    assert 'e.g. "Order Completed"' in error.message
    assert_plain(error)


def test_the_position_is_on_the_right_line_and_column() -> None:
    error = error_of('trait country = "FR" and\n  event "X" count >= in last 7 days')
    assert (error.line, error.column) == (2, 22)
    assert "expected a whole number" in error.message
    assert_plain(error)


def test_a_rule_that_stops_early_says_a_condition_was_expected() -> None:
    error = error_of('trait country = "FR" and')
    assert (error.line, error.column) == (1, 25)
    assert "unexpected end of the rule" in error.message
    assert "a condition (trait, event" in error.message
    assert_plain(error)


def test_an_unclosed_parenthesis_expects_it() -> None:
    error = error_of('(trait country = "FR"')
    assert error.message == 'unexpected end of the rule; expected ")"'
    assert (error.line, error.column) == (1, 22)


def test_an_unknown_character_is_named() -> None:
    error = error_of("trait x ~ 1")
    assert (error.line, error.column) == (1, 9)
    assert 'unexpected "~"' in error.message
    assert "a comparison (=, !=, <, <=, >, >=)" in error.message
    assert_plain(error)


def test_a_word_run_into_a_keyword_is_not_read_as_the_keyword() -> None:
    error = error_of("trait x = 1 andtrait y = 2")
    assert (error.line, error.column) == (1, 13)
    assert 'unexpected "andtrait"' in error.message


def test_an_unknown_unit_lists_the_units() -> None:
    error = error_of('event "A" in last 7 years')
    assert (error.line, error.column) == (1, 21)
    assert "a unit (minutes, hours, days, weeks)" in error.message
    assert "15m, 2h, 7d" in error.message


def test_an_invalid_date_is_refused_at_its_position() -> None:
    error = error_of("trait d before 2024-13-01")
    assert (error.line, error.column) == (1, 16)
    assert '"2024-13-01" is not a valid date' in error.message


def test_a_reversed_date_range_is_refused() -> None:
    error = error_of('event "A" between 2024-02-01 and 2024-01-01')
    assert error.column == 34
    assert "must be after its start" in error.message


def test_an_unknown_escape_is_refused_at_the_backslash() -> None:
    error = error_of(r'trait x = "ab\q"')
    assert (error.line, error.column) == (1, 14)
    assert 'unknown escape "\\q"' in error.message


def test_an_unterminated_string_is_refused() -> None:
    error = error_of('trait x = "abc')
    assert (error.line, error.column) == (1, 11)
    assert 'unexpected """' in error.message


def test_ordering_a_string_is_refused_at_the_comparison() -> None:
    error = error_of('trait x < "a"')
    assert (error.line, error.column) == (1, 9)
    assert "compares numbers" in error.message


def test_a_sequence_first_step_takes_only_at_least_counts() -> None:
    error = error_of('event "A" count = 2 then "B" within 1 day')
    assert (error.line, error.column) == (1, 11)
    assert "count > N" in error.message


def test_a_zero_duration_is_refused() -> None:
    error = error_of('event "A" in last 0 days')
    assert "between 1 minute and 3650 days" in error.message


def test_a_number_with_too_many_digits_is_refused() -> None:
    error = error_of("trait x = 1234567890.1234567")
    assert "more than 15 significant digits" in error.message


def test_empty_text_is_refused() -> None:
    assert "empty" in error_of("   \n ").message


def test_overlong_text_is_refused_before_parsing() -> None:
    error = error_of("trait x = 1 or " * (MAX_TEXT_LENGTH // 10))
    assert "longer than" in error.message


def test_nesting_beyond_the_hard_limit_is_refused_without_recursion_errors() -> None:
    error = error_of("not " * 5000 + "trait x = 1")
    assert "nested deeper than 50 levels" in error.message


def test_the_error_lists_what_was_expected() -> None:
    error = error_of("opened some emails")
    assert error.expected
    assert all(not w.startswith("_") for w in error.expected)
    assert_plain(error)


def test_a_name_too_long_is_refused_at_the_name() -> None:
    error = error_of("trait x = 1 and trait " + "a" * 300 + " exists")
    assert (error.line, error.column) == (1, 23)
    assert "longer than 200 characters" in error.message


def test_an_empty_segment_id_is_refused_at_the_id() -> None:
    error = error_of('in segment ""')
    assert (error.line, error.column) == (1, 12)
