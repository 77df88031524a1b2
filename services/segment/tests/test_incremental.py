"""The incremental evaluator in memory: when results change by time, which rules a change
touches, and in which order segments are evaluated."""

from __future__ import annotations

from datetime import timedelta

from agreement import TICK, boundaries, periods
from hypothesis import given, settings
from hypothesis import strategies as st

from mailwright.rules import evaluate, next_change, parse
from mailwright.rules.person import Event, Person
from mailwright.rules.reference import as_instant
from mailwright.testing.rules import EPOCH, instants, persons, rules
from mailwright_segment import incremental
from mailwright_segment.index import IndexedSegment, RuleIndex
from mailwright_segment.persons import normalized, state_of
from mailwright_segment.specs import specs_of
from mailwright_segment.state import Hits
from mailwright_segment.values import from_micros, to_micros


@settings(max_examples=150, deadline=None)
@given(rule=rules(max_leaves=5), person=persons(), now=instants())
def test_next_change_matches_the_sdk_for_a_history_up_to_now(rule, person, now) -> None:  # type: ignore[no-untyped-def]
    past = normalized(person).as_of(now)
    state = state_of(past, specs_of(rule))
    plan = incremental.compile_rule(rule)
    assert plan.evaluate(state, to_micros(now)) == evaluate(rule, past, now)
    found = incremental.next_change(plan, state, to_micros(now))
    expected = next_change(rule, past, now)
    assert (None if found is None else from_micros(found)) == expected


@settings(max_examples=150, deadline=None)
@given(rule=rules(max_leaves=5), person=persons(), now=instants())
def test_next_change_also_sees_data_stamped_in_the_future(rule, person, now) -> None:  # type: ignore[no-untyped-def]
    full = normalized(person)
    plan = incremental.compile_rule(rule)
    state = state_of(full, specs_of(rule))
    found = incremental.next_change(plan, state, to_micros(now))
    current = evaluate(rule, full, now)
    # Every instant where the reference could change, and the instant just before it.
    horizon = now + timedelta(days=400)
    probes = set(boundaries(rule, [full]))
    for value in full.traits.values():
        instant = as_instant(value)
        if instant is not None:
            probes |= {instant + p + d for p in periods(rule) for d in (timedelta(0), -TICK)}
    limit = from_micros(found) if found is not None else horizon
    for t in sorted(p for p in probes if now < p < limit):
        assert evaluate(rule, full, t) == current, f"changed at {t} before {limit}"
    if found is not None:
        assert evaluate(rule, full, from_micros(found)) != current


def test_hits_with_equal_times_keep_arrival_order() -> None:
    hits = Hits()
    for at, group in ((5, "a"), (3, "b"), (5, "c"), (1, "d")):
        hits.add(at, None, group)
    assert hits.times == [1, 3, 5, 5]
    assert hits.groups == ["d", "b", "a", "c"]


def indexed(rules: dict[str, str]) -> RuleIndex:
    return RuleIndex(
        IndexedSegment.of(i, sid, 1, parse(text)) for i, (sid, text) in enumerate(rules.items())
    )


INDEX = {
    "french": 'trait country = "FR"',
    "buyers": 'event "Order Completed"',
    "openers": "opened any of last 3 emails",
    "french-buyers": 'in segment "french" and in segment "buyers"',
    "vip": 'in segment "french-buyers" and trait clv_12m > 100',
    "sequences": 'event "Product Viewed" then no "Order Completed" within 1 day',
}


def test_a_change_affects_only_the_rules_that_read_it() -> None:
    index = indexed(INDEX)
    assert index.affected(["country"], [], False) == {"french"}
    assert index.affected([], ["Order Completed"], False) == {"buyers", "sequences"}
    assert index.affected([], ["Page Viewed"], True) == {"openers"}
    assert index.affected(["clv_12m", "plan"], [], False) == {"vip"}


def test_segments_are_evaluated_after_the_segments_they_refer_to() -> None:
    index = indexed(INDEX)
    order = [s.segment_id for s in index.rounds(INDEX)]
    assert order.index("french") < order.index("french-buyers") < order.index("vip")
    assert order.index("buyers") < order.index("french-buyers")


def test_a_changed_membership_brings_its_dependents_into_the_round() -> None:
    index = indexed(INDEX)
    round_ = index.rounds(["french"])
    seen = []
    for segment in round_:
        seen.append(segment.segment_id)
        round_.changed(segment.segment_id)
    assert seen == ["french", "french-buyers", "vip"]


def test_a_new_person_matches_rules_about_absence() -> None:
    plan = incremental.compile_rule(parse('did not perform "Order Completed" in last 90 days'))
    state = state_of(Person(), specs_of(plan.rule))
    assert plan.evaluate(state, to_micros(EPOCH))


@given(now=st.integers(0, 10**15))
def test_nothing_changes_by_time_for_rules_of_fixed_facts(now: int) -> None:
    plan = incremental.compile_rule(parse('trait country = "FR" and in segment "vip"'))
    state = state_of(Person(traits={"country": "FR"}), [])
    assert incremental.next_change(plan, state, now) is None


def test_an_and_tests_its_cheap_conditions_first(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every test is a pure function of the person and the instant, so `and` and `or`
    try a trait before an event count (whatever the rule's order): a person the trait
    rules out costs no look at their events."""
    rule = parse('event "Product Viewed" count >= 5 in last 30 days and trait country = "FR"')
    plan = incremental.compile_rule(rule)
    looked: list[object] = []
    real = incremental.bisect_left
    monkeypatch.setattr(
        incremental, "bisect_left", lambda *a, **k: looked.append(a) or real(*a, **k)
    )
    now = EPOCH + timedelta(days=40)
    views = [EPOCH + timedelta(days=30, hours=h) for h in range(6)]
    for country, expected in (("DE", False), ("FR", True)):
        events = tuple(Event("Product Viewed", t) for t in views)
        person = Person(traits={"country": country}, events=events)
        state = state_of(normalized(person), specs_of(rule))
        assert plan.evaluate(state, to_micros(now)) is expected
        assert bool(looked) is (country == "FR")
