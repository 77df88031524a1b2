"""A protobuf rule from outside is validated, and every problem names its field."""

from datetime import timedelta

import pytest

from mailwright.rules import (
    EmailAction,
    EventCount,
    EventSpec,
    InvalidRuleError,
    LastEmailsEngagement,
    Not,
    SegmentMembership,
    Sequence,
    from_proto,
    parse,
    to_proto,
)
from mailwright.segment.v1 import rule_pb2 as pb


def field_error(msg: pb.Rule) -> InvalidRuleError:
    with pytest.raises(InvalidRuleError) as info:
        from_proto(msg)
    return info.value


def test_an_empty_rule_is_refused() -> None:
    assert field_error(pb.Rule()).field == "rule"


def test_an_unspecified_operator_is_named() -> None:
    msg = to_proto(parse("trait a = 1 and trait b = 2"))
    msg.conjunction.conditions[1].trait.operator = pb.OPERATOR_UNSPECIFIED
    error = field_error(msg)
    assert error.field == "conjunction.conditions[1].trait.operator"


def test_a_duration_with_seconds_is_refused() -> None:
    msg = to_proto(parse('event "A" in last 7 days'))
    msg.event_count.window.last.seconds += 30
    error = field_error(msg)
    assert error.field == "event_count.window.last"
    assert "whole number of minutes" in error.message


def test_an_and_with_one_condition_is_refused() -> None:
    msg = pb.Rule()
    msg.conjunction.conditions.add().segment_membership.segment = "a"
    error = field_error(msg)
    assert error.field == "conjunction.conditions"


def test_a_tree_nested_too_deep_is_refused() -> None:
    msg = to_proto(SegmentMembership("a"))
    for _ in range(60):
        outer = pb.Rule()
        outer.negation.condition.CopyFrom(msg)
        msg = outer
    assert "nested deeper than 50" in field_error(msg).message


def test_a_number_beyond_15_digits_is_refused() -> None:
    msg = to_proto(parse("trait x > 1"))
    msg.trait.value.number_value = 0.1 + 0.2
    error = field_error(msg)
    assert error.field == "trait.value"
    assert "15 significant digits" in error.message


def test_an_in_list_must_not_be_empty() -> None:
    msg = to_proto(parse('trait x in ["a"]'))
    del msg.trait.value.list_value.values[:]
    assert field_error(msg).field == "trait.value"


def test_exists_takes_no_value() -> None:
    msg = to_proto(parse("trait x exists"))
    msg.trait.value.string_value = "a"
    assert field_error(msg).field == "trait.value"


def test_a_window_set_to_ever_false_is_refused() -> None:
    msg = to_proto(parse('event "A"'))
    msg.event_count.window.ever = False
    assert field_error(msg).field == "event_count.window.ever"


def test_a_missing_window_means_ever() -> None:
    msg = to_proto(parse('event "A" in last 1 day'))
    msg.event_count.ClearField("window")
    assert from_proto(msg) == EventCount("A")


def test_an_aggregate_compares_with_a_number() -> None:
    msg = to_proto(parse('sum(revenue) of event "A" > 1'))
    msg.event_aggregate.value.string_value = "1"
    assert field_error(msg).field == "event_aggregate.value"


def test_unset_min_counts_mean_one() -> None:
    msg = to_proto(LastEmailsEngagement(EmailAction.OPENED, 5))
    msg.last_emails_engagement.min_count = 0
    assert from_proto(msg) == LastEmailsEngagement(EmailAction.OPENED, 5, 1)


def test_an_empty_event_name_in_a_sequence_step_is_named() -> None:
    msg = to_proto(Sequence(EventSpec("A"), EventSpec("B"), timedelta(days=1)))
    msg.sequence.then.event = ""
    error = field_error(msg)
    assert error.field == "sequence.then.event"


def test_a_timestamp_with_nanoseconds_is_refused() -> None:
    msg = to_proto(parse("trait d before 2024-01-01"))
    msg.trait_date.date.nanos = 1
    assert field_error(msg).field == "trait_date.date"


def test_negation_round_trips_with_its_child() -> None:
    rule = Not(SegmentMembership("vip", negated=True))
    assert from_proto(to_proto(rule)) == rule
