"""next_change finds when time alone changes a rule's result: the same just before it,
different at it."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailwright.rules import (
    EmailSend,
    Event,
    Person,
    Rule,
    change_times,
    evaluate,
    next_change,
    parse,
)
from mailwright.testing.rules import instants, persons, rules

T = datetime(2024, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)


def assert_changes_at(rule: Rule, person: Person, now: datetime, expected: datetime) -> None:
    assert next_change(rule, person, now) == expected
    before = evaluate(rule, person, now)
    assert evaluate(rule, person, expected - US) == before
    assert evaluate(rule, person, expected) != before


def test_an_event_leaving_the_window_is_the_next_change() -> None:
    rule = parse('event "A" in last 7 days')
    person = Person(events=(Event("A", T), Event("A", T + DAY)))
    assert_changes_at(rule, person, T + 2 * DAY, T + 8 * DAY)


def test_a_count_changes_only_when_it_crosses_the_threshold() -> None:
    rule = parse('event "A" count >= 2 in last 7 days')
    person = Person(events=(Event("A", T), Event("A", T + DAY), Event("A", T + 2 * DAY)))
    assert_changes_at(rule, person, T + 2 * DAY, T + 8 * DAY)


def test_a_then_no_wait_maturing_is_the_next_change() -> None:
    rule = parse('event "A" then no "B" within 7 days')
    person = Person(events=(Event("A", T),))
    assert_changes_at(rule, person, T + DAY, T + 7 * DAY)


def test_did_not_perform_becomes_true_when_the_last_event_leaves() -> None:
    rule = parse('did not perform "Order Completed" in last 90 days')
    person = Person(events=(Event("Order Completed", T),))
    assert_changes_at(rule, person, T, T + 90 * DAY)


def test_a_future_trait_date_enters_then_leaves_within_last() -> None:
    rule = parse("trait renewal within last 30 days")
    person = Person(traits={"renewal": (T + 5 * DAY).isoformat()})
    assert_changes_at(rule, person, T, T + 5 * DAY)
    assert_changes_at(rule, person, T + 5 * DAY, T + 35 * DAY)


def test_an_open_leaving_the_engagement_window_is_the_next_change() -> None:
    rule = parse("opened an email in last 30 days")
    person = Person(emails=(EmailSend("1", T, opens=(T + DAY,)),))
    assert_changes_at(rule, person, T + 2 * DAY, T + 31 * DAY)


def test_rules_that_do_not_move_with_time_have_no_next_change() -> None:
    person = Person(
        traits={"country": "FR"},
        events=(Event("A", T),),
        emails=(EmailSend("1", T, opens=(T,)),),
        segments=frozenset({"vip"}),
    )
    for text in [
        'trait country = "FR"',
        "trait signup before 2024-01-01",
        'event "A" count >= 1',
        'event "A" between 2024-01-01 and 2024-04-01',
        "opened any of last 3 emails",
        'in segment "vip"',
    ]:
        assert next_change(parse(text), person, T + DAY) is None, text


def test_candidates_that_change_nothing_are_skipped() -> None:
    rule = parse('event "A" in last 7 days or in segment "vip"')
    person = Person(events=(Event("A", T),), segments=frozenset({"vip"}))
    assert change_times(rule, person, T) == [T + 7 * DAY]
    assert next_change(rule, person, T) is None


def test_data_after_now_is_not_known_yet() -> None:
    rule = parse('event "A" in last 7 days')
    person = Person(events=(Event("A", T), Event("A", T + 3 * DAY)))
    assert next_change(rule, person, T + DAY) == T + 7 * DAY


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules(), persons(), instants(), st.lists(st.integers(1, 90 * 24 * 60), max_size=4))
def test_the_result_holds_until_the_next_change_and_differs_at_it(
    rule: Rule, person: Person, now: datetime, probes: list[int]
) -> None:
    past = person.as_of(now)
    current = evaluate(rule, past, now)
    following = next_change(rule, past, now)
    if following is not None:
        assert following > now
        assert evaluate(rule, past, following - US) == current
        assert evaluate(rule, past, following) != current
    for minutes in probes:
        probe = now + timedelta(minutes=minutes) - timedelta(seconds=1)
        if following is None or probe < following:
            assert evaluate(rule, past, probe) == current
