"""When a rule's result can change by time alone, to schedule the next re-evaluation.

Without new data, every condition is a step function of ``now`` that changes only at
instants known in advance: an event leaving a sliding window (``t + period``), a "then no
B within T" wait maturing (``a.t + within``), a trait date entering or leaving "within
last N days" (``value`` and ``value + period``), an email action leaving its window.
:func:`change_times` lists those instants (a superset: some may not change anything);
:func:`next_change` walks them in order with the reference evaluator and returns the first
at which the result actually differs, so the result is the same on ``[now, next)`` and
different at ``next``.

Data stamped after ``now`` is treated as not yet known (it will arrive as new data and
trigger its own re-evaluation), and memberships of other segments as fixed (their own
changes are scheduled for them).
"""

from __future__ import annotations

from datetime import datetime

from mailwright.rules import ast, tree
from mailwright.rules.person import Person
from mailwright.rules.reference import actions, as_instant, evaluate, matches


def change_times(rule: ast.Rule, person: Person, now: datetime) -> list[datetime]:
    """The instants after ``now`` at which some condition of the rule may change, sorted."""
    past = person.as_of(now)
    found: set[datetime] = set()
    for node in tree.conditions(rule):
        found.update(_candidates(node, past, now))
    return sorted(t for t in found if t > now)


def next_change(rule: ast.Rule, person: Person, now: datetime) -> datetime | None:
    """The first instant after ``now`` at which the rule's result changes by time alone."""
    past = person.as_of(now)
    current = evaluate(rule, past, now)
    for t in change_times(rule, past, now):
        if evaluate(rule, past, t) != current:
            return t
    return None


def _candidates(node: ast.Condition, person: Person, now: datetime) -> list[datetime]:
    if isinstance(node, ast.TraitWithinLast):
        instant = as_instant(person.traits.get(node.trait))
        return [] if instant is None else [instant, instant + node.period]
    if isinstance(node, ast.EventCount | ast.EventAggregate | ast.DidNotPerform):
        return _leaving(person, node.event, node.filters, node.window)
    if isinstance(node, ast.Sequence):
        times = _leaving(person, node.first.event, node.first.filters, node.window)
        if node.negated:
            times += [
                e.timestamp + node.within
                for e in person.events
                if matches(e, node.first.event, node.first.filters)
            ]
        return times
    if isinstance(node, ast.WindowEngagement) and isinstance(node.window, ast.LastPeriod):
        period = node.window.period
        return [t + period for s in person.emails for t in actions(s, node.action, now)]
    # Traits compared with literals or fixed dates, the last N emails and memberships do
    # not move with time.
    return []


def _leaving(
    person: Person, event: str, filters: tuple[ast.PropertyFilter, ...], window: ast.Window
) -> list[datetime]:
    """When matching events leave a sliding window; fixed windows never lose events."""
    if not isinstance(window, ast.LastPeriod):
        return []
    return [e.timestamp + window.period for e in person.events if matches(e, event, filters)]
