"""Parse, print and parse again gives the same tree; so does tree -> protobuf -> tree."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings

from mailwright.rules import (
    DateOperator,
    EventCount,
    LastPeriod,
    Not,
    Operator,
    Rule,
    SegmentMembership,
    TraitCondition,
    TraitDateCondition,
    from_proto,
    parse,
    to_proto,
    to_text,
)
from mailwright.segment.v1 import rule_pb2
from mailwright.testing.rules import rules

ROUND_TRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(rules(wild=True))
def test_printed_text_parses_back_to_the_same_tree(rule: Rule) -> None:
    assert parse(to_text(rule)) == rule


@settings(ROUND_TRIP, max_examples=75)
@given(rules(wild=True))
def test_printing_is_canonical(rule: Rule) -> None:
    text = to_text(rule)
    assert to_text(parse(text)) == text


@ROUND_TRIP
@given(rules(wild=True))
def test_protobuf_form_converts_back_to_the_same_tree(rule: Rule) -> None:
    wire = to_proto(rule).SerializeToString()
    assert from_proto(rule_pb2.Rule.FromString(wire)) == rule


def test_the_issue_examples_print_as_written() -> None:
    for text in [
        'trait country = "FR" and (event "Order Completed" count >= 3 in last 30 days '
        'or not in segment "inactive")',
        'event "Product Viewed" count >= 3 in last 14 days then no "Order Completed" '
        "within 7 days per product_id",
        'sum(revenue) of event "Order Completed" where currency = "EUR" in last 90 days > 100',
        'did not perform "Order Completed" in last 90 days',
        "opened any of last 5 emails",
        "trait last_purchase_date within last 30 days",
    ]:
        assert to_text(parse(text)) == text


def test_the_printer_uses_the_largest_whole_unit() -> None:
    assert to_text(EventCount("X", window=LastPeriod(timedelta(minutes=90)))) == (
        'event "X" in last 90 minutes'
    )
    assert to_text(EventCount("X", window=LastPeriod(timedelta(hours=48)))) == (
        'event "X" in last 2 days'
    )
    assert to_text(EventCount("X", window=LastPeriod(timedelta(hours=1)))) == (
        'event "X" in last 1 hour'
    )


def test_names_that_are_not_identifiers_are_backquoted() -> None:
    rule = TraitCondition("first name`s", Operator.EXISTS)
    assert to_text(rule) == r"trait `first name\`s` exists"
    assert parse(to_text(rule)) == rule


def test_not_of_a_membership_keeps_its_parentheses() -> None:
    rule = Not(SegmentMembership("vip"))
    assert to_text(rule) == 'not (in segment "vip")'
    assert parse(to_text(rule)) == rule


def test_dates_print_as_a_day_at_midnight_and_as_utc_instants_otherwise() -> None:
    midnight = TraitDateCondition("d", DateOperator.AFTER, datetime(2024, 3, 1, tzinfo=UTC))
    instant = TraitDateCondition(
        "d", DateOperator.AFTER, datetime(2024, 3, 1, 10, 30, 0, 500, tzinfo=UTC)
    )
    assert to_text(midnight) == "trait d after 2024-03-01"
    assert to_text(instant) == "trait d after 2024-03-01T10:30:00.000500Z"


def test_numbers_print_in_plain_notation() -> None:
    rule = TraitCondition("x", Operator.GT, Decimal("1E+3"))
    assert to_text(rule) == "trait x > 1000"
    assert to_text(TraitCondition("x", Operator.GT, Decimal("0.000001"))) == "trait x > 0.000001"


def test_control_characters_in_strings_are_escaped() -> None:
    rule = TraitCondition("x", Operator.EQ, 'a"b\\c\nd\x01')
    assert to_text(rule) == r'trait x = "a\"b\\c\nd\u0001"'
    assert parse(to_text(rule)) == rule
