"""Explain shows the tree with each node's truth value and the values compared."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings

from mailwright.rules import Event, Person, Rule, evaluate, explain, format_explanation, parse
from mailwright.testing.rules import instants, persons, rules

NOW = datetime(2024, 3, 10, tzinfo=UTC)
RULE = parse(
    'trait country = "FR" and (event "Order Completed" count >= 3 in last 30 days '
    'or not in segment "inactive")'
)
PERSON = Person(
    traits={"country": "FR"},
    events=(Event("Order Completed", NOW - timedelta(days=1)),),
    segments=frozenset({"inactive"}),
)


def test_every_node_has_its_value() -> None:
    result = explain(RULE, PERSON, NOW)
    assert result.value is False
    trait, either = result.children
    assert trait.value is True
    assert either.value is False
    count, membership = either.children
    assert (count.value, membership.value) == (False, False)


def test_leaves_carry_the_values_they_compared() -> None:
    result = explain(RULE, PERSON, NOW)
    trait, either = result.children
    count, membership = either.children
    assert trait.facts["actual"] == "FR"
    assert count.facts["count"] == 1
    assert count.facts["expected"] == ">= 3"
    assert count.facts["after"] == NOW - timedelta(days=30)
    assert membership.facts["member"] is True


def test_a_sequence_names_the_anchor_that_decided_it() -> None:
    rule = parse('event "A" then no "B" within 1 day')
    a = NOW - timedelta(days=3)
    result = explain(rule, Person(events=(Event("A", a),)), NOW)
    assert result.value is True
    assert result.facts == {"anchor": a, "deadline": a + timedelta(days=1)}


def test_the_dict_form_is_json_ready() -> None:
    data = explain(RULE, PERSON, NOW).to_dict()
    assert data["kind"] == "and"
    leaf = data["children"][1]["children"][0]
    assert leaf["kind"] == "event_count"
    assert leaf["text"] == 'event "Order Completed" count >= 3 in last 30 days'
    assert leaf["facts"]["after"] == "2024-02-09T00:00:00Z"
    json.dumps(data)


def test_the_text_form_shows_one_line_per_node() -> None:
    lines = format_explanation(explain(RULE, PERSON, NOW)).splitlines()
    assert lines[0] == "[ ] all of"
    assert lines[1] == "  [x] trait country = \"FR\"  (trait='country', actual='FR')"
    assert lines[3].startswith(
        '    [ ] event "Order Completed" count >= 3 in last 30 days  (count=1'
    )
    assert lines[4] == '    [ ] not in segment "inactive"  (member=True)'


@settings(max_examples=60, deadline=None)
@given(rules(), persons(), instants())
def test_the_explained_value_is_the_evaluated_value(
    rule: Rule, person: Person, now: datetime
) -> None:
    assert explain(rule, person, now).value == evaluate(rule, person, now)
