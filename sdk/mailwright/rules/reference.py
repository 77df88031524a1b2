"""The reference evaluator: what a rule means, for one person at one instant.

Plain Python that follows the node docstrings of :mod:`mailwright.rules.ast` line by line.
It is the oracle that the segment service's SQL compiler and incremental evaluator are
tested against, so it favours being obviously right over being fast: every condition
scans the whole history.

Each condition yields an :class:`Outcome`: its truth value and the facts it compared
(``count``, ``value``, ``anchor`` ...), which :mod:`mailwright.rules.explain` shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from mailwright.rules import ast
from mailwright.rules.person import EmailSend, Event, Person


@dataclass(frozen=True)
class Outcome:
    """A condition's truth value and the values it compared."""

    value: bool
    facts: Mapping[str, object] = field(default_factory=dict)


def evaluate(rule: ast.Rule, person: Person, now: datetime) -> bool:
    """Whether the person matches the rule at ``now``."""
    _require_aware(now)
    if isinstance(rule, ast.And):
        return all(evaluate(c, person, now) for c in rule.conditions)
    if isinstance(rule, ast.Or):
        return any(evaluate(c, person, now) for c in rule.conditions)
    if isinstance(rule, ast.Not):
        return not evaluate(rule.condition, person, now)
    return outcome(rule, person, now).value


def outcome(node: ast.Condition, person: Person, now: datetime) -> Outcome:
    """The outcome of one condition (a leaf) at ``now``."""
    _require_aware(now)
    evaluator: Callable[[Any, Person, datetime], Outcome] = _EVALUATORS[type(node)]
    return evaluator(node, person, now)


def _require_aware(now: datetime) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


# ---------------------------------------------------------------------------------------
# Values: no coercion between kinds; numbers compared by value


def as_number(value: object) -> Decimal | None:
    """A number as an exact Decimal (a float by its shortest repr); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    return None


def as_instant(value: object) -> datetime | None:
    """A date value as an aware UTC datetime: datetime, date or ISO 8601 string; else None."""
    if isinstance(value, datetime):
        instant = value
    elif isinstance(value, date):
        instant = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            instant = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    if instant.tzinfo is None or instant.utcoffset() is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def equal(literal: ast.Scalar, actual: object) -> bool:
    if isinstance(literal, bool):
        return isinstance(actual, bool) and actual == literal
    if isinstance(literal, str):
        return isinstance(actual, str) and actual == literal
    number = as_number(actual)
    return number is not None and number == literal


def compare(op: ast.Operator, left: Decimal | int, right: Decimal | int) -> bool:
    """``left op right`` for one of the six comparators."""
    return {
        ast.Operator.EQ: left == right,
        ast.Operator.NE: left != right,
        ast.Operator.LT: left < right,
        ast.Operator.LE: left <= right,
        ast.Operator.GT: left > right,
        ast.Operator.GE: left >= right,
    }[op]


def test(
    op: ast.Operator, literal: ast.Scalar | tuple[ast.Scalar, ...] | None, actual: object
) -> bool:
    """Whether a trait or property value (None when missing) passes ``op literal``."""
    if op is ast.Operator.EXISTS:
        return actual is not None
    if op is ast.Operator.NOT_EXISTS:
        return actual is None
    if actual is None:
        return False
    if op in (ast.Operator.IN, ast.Operator.NOT_IN):
        assert isinstance(literal, tuple)
        found = any(equal(item, actual) for item in literal)
        return found if op is ast.Operator.IN else not found
    assert literal is not None
    assert not isinstance(literal, tuple)
    if op is ast.Operator.EQ:
        return equal(literal, actual)
    if op is ast.Operator.NE:
        return not equal(literal, actual)
    if op in ast.ORDERINGS:
        number = as_number(actual)
        return number is not None and isinstance(literal, Decimal) and compare(op, number, literal)
    if op is ast.Operator.CONTAINS:
        if isinstance(actual, str):
            return isinstance(literal, str) and literal in actual
        if isinstance(actual, list | tuple):
            return any(equal(literal, item) for item in actual)
        return False
    # STARTS_WITH
    return isinstance(actual, str) and isinstance(literal, str) and actual.startswith(literal)


def group_key(value: object) -> tuple[str, object] | None:
    """The correlation key of a ``per`` property value: equal values, equal keys."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return ("string", value)
    number = as_number(value)
    return ("number", number) if number is not None else None


# ---------------------------------------------------------------------------------------
# Windows and events


def in_window(window: ast.Window, t: datetime, now: datetime) -> bool:
    """Whether an instant ``t`` lies inside the window at ``now`` (never after ``now``)."""
    if t > now:
        return False
    if isinstance(window, ast.LastPeriod):
        return now - window.period < t
    if isinstance(window, ast.Between):
        return window.start <= t < window.end
    return True


def window_facts(window: ast.Window, now: datetime) -> dict[str, object]:
    if isinstance(window, ast.LastPeriod):
        return {"after": now - window.period, "until": now}
    if isinstance(window, ast.Between):
        return {"from": window.start, "before": min(window.end, now)}
    return {"until": now}


def filters_match(properties: Mapping[str, object], filters: Iterable[ast.PropertyFilter]) -> bool:
    """Whether event properties pass every filter (a missing property fails its filter)."""
    return all(test(f.op, f.value, properties.get(f.property)) for f in filters)


def matches(event: Event, name: str, filters: Iterable[ast.PropertyFilter]) -> bool:
    return event.name == name and filters_match(event.properties, filters)


def matching_events(
    person: Person,
    name: str,
    filters: Iterable[ast.PropertyFilter],
    window: ast.Window,
    now: datetime,
) -> list[Event]:
    """The events of the person matching name and filters inside the window, oldest first."""
    filters = tuple(filters)
    found = [
        e
        for e in person.events
        if matches(e, name, filters) and in_window(window, e.timestamp, now)
    ]
    return sorted(found, key=lambda e: e.timestamp)


# ---------------------------------------------------------------------------------------
# Conditions


def _trait(node: ast.TraitCondition, person: Person, now: datetime) -> Outcome:
    actual = person.traits.get(node.trait)
    return Outcome(test(node.op, node.value, actual), {"trait": node.trait, "actual": actual})


def _trait_date(node: ast.TraitDateCondition, person: Person, now: datetime) -> Outcome:
    instant = as_instant(person.traits.get(node.trait))
    if instant is None:
        value = False
    elif node.op is ast.DateOperator.BEFORE:
        value = instant < node.date
    else:
        value = instant > node.date
    return Outcome(value, {"actual": instant, node.op.value: node.date})


def _trait_within(node: ast.TraitWithinLast, person: Person, now: datetime) -> Outcome:
    instant = as_instant(person.traits.get(node.trait))
    inside = instant is not None and now - node.period < instant <= now
    value = (instant is not None and not inside) if node.negated else inside
    return Outcome(value, {"actual": instant, "after": now - node.period, "until": now})


def _event_count(node: ast.EventCount, person: Person, now: datetime) -> Outcome:
    count = len(matching_events(person, node.event, node.filters, node.window, now))
    facts = {"count": count, "expected": f"{node.op.value} {node.count}"}
    return Outcome(compare(node.op, count, node.count), facts | window_facts(node.window, now))


def aggregate(kind: ast.Aggregate, values: list[Decimal]) -> Decimal | None:
    """sum is 0 over nothing; avg, min and max have no value over nothing."""
    if kind is ast.Aggregate.SUM:
        return sum(values, Decimal(0))
    if not values:
        return None
    if kind is ast.Aggregate.AVERAGE:
        return sum(values, Decimal(0)) / len(values)
    return min(values) if kind is ast.Aggregate.MIN else max(values)


def _event_aggregate(node: ast.EventAggregate, person: Person, now: datetime) -> Outcome:
    events = matching_events(person, node.event, node.filters, node.window, now)
    numbers = [as_number(e.properties.get(node.property)) for e in events]
    values = [n for n in numbers if n is not None]
    result = aggregate(node.aggregate, values)
    value = result is not None and compare(node.op, result, node.value)
    facts = {
        "value": result,
        "expected": f"{node.op.value} {node.value}",
        "events": len(events),
        "values": len(values),
    }
    return Outcome(value, facts | window_facts(node.window, now))


def _did_not_perform(node: ast.DidNotPerform, person: Person, now: datetime) -> Outcome:
    count = len(matching_events(person, node.event, node.filters, node.window, now))
    return Outcome(count == 0, {"count": count} | window_facts(node.window, now))


def _sequence(node: ast.Sequence, person: Person, now: datetime) -> Outcome:
    firsts = matching_events(person, node.first.event, node.first.filters, node.window, now)
    thens = matching_events(person, node.then.event, node.then.filters, ast.Ever(), now)

    def key(event: Event) -> tuple[str, object] | None:
        return group_key(event.properties.get(node.per)) if node.per else ("all", None)

    anchors = 0
    for a in firsts:
        a_key = key(a)
        if a_key is None:
            continue
        # ``a`` is an anchor when enough first-step events of its group came at or before it.
        if (
            sum(1 for x in firsts if key(x) == a_key and x.timestamp <= a.timestamp)
            < node.min_count
        ):
            continue
        anchors += 1
        deadline = a.timestamp + node.within
        followers = [b for b in thens if key(b) == a_key and a.timestamp < b.timestamp <= deadline]
        facts: dict[str, object] = {"anchor": a.timestamp, "deadline": deadline}
        if node.per:
            facts["per"] = a_key[1]
        if not node.negated and followers:
            return Outcome(True, facts | {"then": followers[0].timestamp})
        if node.negated and not followers and deadline <= now:
            return Outcome(True, facts)
    return Outcome(False, {"first_events": len(firsts), "anchors": anchors})


def actions(send: EmailSend, action: ast.EmailAction, now: datetime) -> list[datetime]:
    """When the person opened/clicked this send, up to ``now``; machine opens never count."""
    times: list[datetime] = []
    if action in (ast.EmailAction.OPENED, ast.EmailAction.OPENED_OR_CLICKED):
        times.extend(send.opens)
    if action in (ast.EmailAction.CLICKED, ast.EmailAction.OPENED_OR_CLICKED):
        times.extend(send.clicks)
    return sorted(t for t in times if t <= now)


def last_sends(person: Person, count: int, now: datetime) -> list[EmailSend]:
    """The ``count`` most recent sends up to ``now`` (ties: the larger send id first)."""
    sent = [s for s in person.emails if s.sent_at <= now]
    return sorted(sent, key=lambda s: (s.sent_at, s.send_id), reverse=True)[:count]


def _last_emails(node: ast.LastEmailsEngagement, person: Person, now: datetime) -> Outcome:
    sends = last_sends(person, node.last, now)
    engaged = sum(1 for s in sends if actions(s, node.action, now))
    facts = {"engaged": engaged, "considered": len(sends), "required": node.min_count}
    return Outcome(engaged >= node.min_count, facts)


def _window_engagement(node: ast.WindowEngagement, person: Person, now: datetime) -> Outcome:
    engaged = sum(
        1
        for s in person.emails
        if any(in_window(node.window, t, now) for t in actions(s, node.action, now))
    )
    facts = {"engaged": engaged, "required": node.min_count} | window_facts(node.window, now)
    return Outcome(engaged >= node.min_count, facts)


def _segment(node: ast.SegmentMembership, person: Person, now: datetime) -> Outcome:
    member = node.segment in person.segments
    return Outcome(member != node.negated, {"member": member})


_EVALUATORS: dict[type, Callable[[Any, Person, datetime], Outcome]] = {
    ast.TraitCondition: _trait,
    ast.TraitDateCondition: _trait_date,
    ast.TraitWithinLast: _trait_within,
    ast.EventCount: _event_count,
    ast.EventAggregate: _event_aggregate,
    ast.DidNotPerform: _did_not_perform,
    ast.Sequence: _sequence,
    ast.LastEmailsEngagement: _last_emails,
    ast.WindowEngagement: _window_engagement,
    ast.SegmentMembership: _segment,
}
