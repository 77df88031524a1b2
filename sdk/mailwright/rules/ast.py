"""The canonical tree of a segment rule: one frozen dataclass per node kind.

Every evaluator (the reference evaluator here, the segment service's SQL compiler and its
incremental evaluator) gives each node the meaning written in its docstring. The common
conventions, which every docstring below relies on:

* Time is timezone-aware UTC. A rule is evaluated for one person *at* an instant ``now``;
  only data stamped at or before ``now`` exists (``t <= now``). Later data is ignored.
* Windows are half-open, start excluded and end included: "in last 7 days" at ``now`` holds
  the events with ``now - 7 days < t <= now``. An event at ``t`` therefore counts from
  ``now = t`` and stops counting at exactly ``now = t + 7 days``. Every condition is thus a
  step function of ``now`` that changes value only at such instants (right-continuous).
* "between D1 and D2" holds ``D1 <= t < D2`` (and ``t <= now``). A date ``2024-03-01`` is
  midnight UTC of that day.
* A comparison needs a value: any comparison on a missing trait or property (absent or
  null) is false, ``!=`` and ``not in`` included; only ``not exists`` is true for it. To
  include people without the trait, negate: ``not trait country = "FR"``.
* Values are compared without coercion: strings with strings (case-sensitive), numbers with
  numbers (int, float and Decimal by value; ``True`` is not ``1``), booleans with booleans.
  Values of another kind are simply not equal; ordering (``<`` …) needs two numbers.
* Durations are whole minutes, from one minute to ten years.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeAlias

# fmt: off
# isort: off
from mailwright.rules.values import (
    COMPARATORS, MAX_COUNT, MAX_LAST_EMAILS, MAX_NESTING, ORDERINGS, Aggregate, DateOperator,
    EmailAction, Operator, Scalar, check_comparison, check_count, check_duration, check_instant,
    check_name, check_scalar, fail,
)

__all__ = [
    "COMPARATORS", "MAX_NESTING", "ORDERINGS", "Aggregate", "And", "Between", "Condition",
    "DateOperator", "DidNotPerform", "EmailAction", "EventAggregate", "EventCount", "EventSpec",
    "Ever", "LastEmailsEngagement", "LastPeriod", "Not", "Operator", "Or", "PropertyFilter",
    "Rule", "Scalar", "SegmentMembership", "Sequence", "TraitCondition", "TraitDateCondition",
    "TraitWithinLast", "Window", "WindowEngagement", "check_duration", "check_scalar",
]
# isort: on
# fmt: on


def _utc(node: object, name: str) -> None:
    """Store a datetime field converted to UTC (same instant, canonical zone)."""
    value = getattr(node, name)
    check_instant(name, value)
    object.__setattr__(node, name, value.astimezone(UTC))


# ---------------------------------------------------------------------------------------
# Windows: when an event must have happened, relative to ``now``


@dataclass(frozen=True)
class LastPeriod:
    """``in last 7 days``: events with ``now - period < t <= now``."""

    period: timedelta

    def __post_init__(self) -> None:
        check_duration("period", self.period)


@dataclass(frozen=True)
class Between:
    """``between 2024-01-01 and 2024-02-01``: events with ``start <= t < end``, ``t <= now``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _utc(self, "start")
        _utc(self, "end")
        if not self.start < self.end:
            fail("end", "must be after start")


@dataclass(frozen=True)
class Ever:
    """``ever`` (the default): every event with ``t <= now``."""


Window: TypeAlias = LastPeriod | Between | Ever


def _check_window(window: object) -> None:
    if not isinstance(window, LastPeriod | Between | Ever):
        fail("window", "must be LastPeriod, Between or Ever")


# ---------------------------------------------------------------------------------------
# Boolean structure


@dataclass(frozen=True)
class And:
    """True when every condition is true. Holds at least two conditions."""

    conditions: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.conditions, tuple) or len(self.conditions) < 2:
            fail("conditions", "'and' needs a tuple of at least two conditions")
        for i, node in enumerate(self.conditions):
            _check_rule(f"conditions[{i}]", node)


@dataclass(frozen=True)
class Or:
    """True when at least one condition is true. Holds at least two conditions."""

    conditions: tuple[Rule, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.conditions, tuple) or len(self.conditions) < 2:
            fail("conditions", "'or' needs a tuple of at least two conditions")
        for i, node in enumerate(self.conditions):
            _check_rule(f"conditions[{i}]", node)


@dataclass(frozen=True)
class Not:
    """True when the condition is false (so true for a person without the trait at all)."""

    condition: Rule

    def __post_init__(self) -> None:
        _check_rule("condition", self.condition)


# ---------------------------------------------------------------------------------------
# Traits (profile, computed and predictive traits alike: ``clv_12m``, ``churn_risk``)


@dataclass(frozen=True)
class TraitCondition:
    """``trait country = "FR"``: the trait's current value compared with a literal.

    ``trait`` is the exact key (a dot is part of the key, nested objects are not walked).
    Operators: ``= != < <= > >=``; ``in``/``not in`` a non-empty list; ``contains`` (a
    substring of a string, or an element of a list trait); ``starts with`` (a string
    prefix); ``exists``/``not exists`` (present and not null). All case-sensitive.
    Missing trait: only ``not exists`` is true.
    """

    trait: str
    op: Operator
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        check_name("trait", self.trait, "trait key")
        check_comparison(self.op, self.value)


@dataclass(frozen=True)
class TraitDateCondition:
    """``trait signup_date before 2024-01-01``: ``value < date`` (``after``: ``value > date``).

    The trait must hold a date: a datetime, a date (midnight UTC) or an ISO 8601 string; a
    naive value is read as UTC. Anything else, or no value, makes the condition false.
    """

    trait: str
    op: DateOperator
    date: datetime

    def __post_init__(self) -> None:
        check_name("trait", self.trait, "trait key")
        if not isinstance(self.op, DateOperator):
            fail("op", "must be a DateOperator")
        _utc(self, "date")


@dataclass(frozen=True)
class TraitWithinLast:
    """``trait last_purchase_date within last 30 days``: ``now - period < value <= now``.

    A date in the future is not within the last 30 days. ``negated`` (``not within last 30
    days``) needs a date too: it is true when the trait holds a date outside that interval
    and false when the trait is missing, unlike ``not (trait x within last 30 days)``.
    """

    trait: str
    period: timedelta
    negated: bool = False

    def __post_init__(self) -> None:
        check_name("trait", self.trait, "trait key")
        check_duration("period", self.period)


# ---------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True)
class PropertyFilter:
    """``where currency = "EUR"``: an event property compared like a trait (same operators)."""

    property: str
    op: Operator
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        check_name("property", self.property, "property name")
        check_comparison(self.op, self.value)


def _check_filters(filters: object) -> None:
    if not isinstance(filters, tuple) or not all(isinstance(f, PropertyFilter) for f in filters):
        fail("filters", "must be a tuple of PropertyFilter")


@dataclass(frozen=True)
class EventSpec:
    """Which events a step matches: the exact (case-sensitive) name and every filter true."""

    event: str
    filters: tuple[PropertyFilter, ...] = ()

    def __post_init__(self) -> None:
        check_name("event", self.event, "event name")
        _check_filters(self.filters)


@dataclass(frozen=True)
class EventCount:
    """``event "Order Completed" where … count >= 3 in last 30 days``.

    Counts the matching events inside the window at ``now`` and compares the count with
    ``count`` (``op`` is one of ``= != < <= > >=``). ``event "X"`` alone means
    ``count >= 1 ever``. ``count < 1`` and ``count = 0`` are true for someone who never did it.
    """

    event: str
    op: Operator = Operator.GE
    count: int = 1
    window: Window = Ever()
    filters: tuple[PropertyFilter, ...] = ()

    def __post_init__(self) -> None:
        check_name("event", self.event, "event name")
        if self.op not in COMPARATORS:
            fail("op", "a count is compared with = != < <= > or >=")
        check_count("count", self.count)
        _check_window(self.window)
        _check_filters(self.filters)


@dataclass(frozen=True)
class EventAggregate:
    """``sum(revenue) of event "Order Completed" where … in last 90 days > 100``.

    Over the matching events inside the window, the numeric values of ``property`` (events
    where it is missing or not a number are left out) are aggregated and compared with
    ``value``. With no such value, ``sum`` is 0 while ``avg``, ``min`` and ``max`` have no
    value and the condition is false.
    """

    aggregate: Aggregate
    property: str
    event: str
    op: Operator
    value: Decimal
    window: Window = Ever()
    filters: tuple[PropertyFilter, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.aggregate, Aggregate):
            fail("aggregate", "must be an Aggregate")
        check_name("property", self.property, "property name")
        check_name("event", self.event, "event name")
        if self.op not in COMPARATORS:
            fail("op", "an aggregate is compared with = != < <= > or >=")
        if not isinstance(self.value, Decimal):
            fail("value", "must be a Decimal")
        check_scalar("value", self.value)
        _check_window(self.window)
        _check_filters(self.filters)


@dataclass(frozen=True)
class DidNotPerform:
    """``did not perform "Order Completed" in last 90 days``: no matching event in the window.

    Same meaning as ``count = 0``; its own node so that it reads (and explains) as written.
    """

    event: str
    window: Window = Ever()
    filters: tuple[PropertyFilter, ...] = ()

    def __post_init__(self) -> None:
        check_name("event", self.event, "event name")
        _check_window(self.window)
        _check_filters(self.filters)


@dataclass(frozen=True)
class Sequence:
    """``event A [count >= k] [window] then [no] B within T [per P]``.

    Let the *A events* be the events matching ``first`` inside ``window`` at ``now``, the
    *B events* those matching ``then`` with ``t <= now``. With ``per`` set, both must carry
    that property (not null) and only A and B events with equal values pair up; the
    conditions below then hold for some value. An *anchor* is an A event ``a`` such that at
    least ``min_count`` A events (of its value) happened at or before ``a.t``: with
    ``min_count = 3`` the third view and every later one are anchors.

    * ``negated = False`` ("A then B within T"): true when some anchor ``a`` has a B event
      ``b`` with ``a.t < b.t <= a.t + within``.
    * ``negated = True`` ("A then no B within T"): true when some anchor ``a`` has no B
      event with ``a.t < b.t <= a.t + within`` **and** the wait is over,
      ``a.t + within <= now``. Before ``T`` has elapsed it is not yet known, and false.

    Because the window is relative to ``now`` like everywhere else, a negated sequence with
    ``window = last W`` can only be true when ``W > within``; the person is then in the
    segment from ``a.t + within`` until ``a`` (or one of the A events counted for it) leaves
    the window. The checker refuses ``W <= within`` as never true.
    """

    first: EventSpec
    then: EventSpec
    within: timedelta
    negated: bool = False
    min_count: int = 1
    window: Window = Ever()
    per: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.first, EventSpec) or not isinstance(self.then, EventSpec):
            fail("first", "first and then must be EventSpec")
        check_duration("within", self.within)
        check_count("min_count", self.min_count, minimum=1)
        _check_window(self.window)
        if self.per is not None:
            check_name("per", self.per, "property name")


# ---------------------------------------------------------------------------------------
# Email engagement (machine opens, e.g. privacy-proxy prefetches, never count as opens)


@dataclass(frozen=True)
class LastEmailsEngagement:
    """``opened any of last 5 emails`` / ``clicked at least 2 of last 5 emails``.

    Takes the ``last`` most recent sends with ``sent_at <= now`` (ties broken by the larger
    send id first), fewer if fewer were sent, and counts those with an open (``opened``), a
    click (``clicked``) or either (``opened or clicked``) at or before ``now``; true when
    that count is at least ``min_count``. Nobody sent anything: false.
    """

    action: EmailAction
    last: int
    min_count: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.action, EmailAction):
            fail("action", "must be an EmailAction")
        check_count("last", self.last, minimum=1, maximum=MAX_LAST_EMAILS)
        check_count("min_count", self.min_count, minimum=1, maximum=MAX_LAST_EMAILS)


@dataclass(frozen=True)
class WindowEngagement:
    """``opened an email in last 30 days`` / ``clicked at least 2 emails in last 30 days``.

    Counts the distinct sends with an open (click, either) whose time lies inside the window
    at ``now``; true when that count is at least ``min_count``.
    """

    action: EmailAction
    window: Window = Ever()
    min_count: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.action, EmailAction):
            fail("action", "must be an EmailAction")
        _check_window(self.window)
        check_count("min_count", self.min_count, minimum=1, maximum=MAX_COUNT)


# ---------------------------------------------------------------------------------------
# Other segments


@dataclass(frozen=True)
class SegmentMembership:
    """``in segment "loyal-buyers"`` (``negated``: ``not in segment "loyal-buyers"``).

    Reads the person's current membership of the other segment (by id, in the same
    workspace). Segments may not refer to each other in a cycle.
    """

    segment: str
    negated: bool = False

    def __post_init__(self) -> None:
        check_name("segment", self.segment, "segment id")


Condition: TypeAlias = (
    TraitCondition
    | TraitDateCondition
    | TraitWithinLast
    | EventCount
    | EventAggregate
    | DidNotPerform
    | Sequence
    | LastEmailsEngagement
    | WindowEngagement
    | SegmentMembership
)
"""A leaf of the tree."""

Rule: TypeAlias = And | Or | Not | Condition
"""Any node; the root of a segment's rule."""

CONDITION_TYPES: tuple[type, ...] = (
    TraitCondition,
    TraitDateCondition,
    TraitWithinLast,
    EventCount,
    EventAggregate,
    DidNotPerform,
    Sequence,
    LastEmailsEngagement,
    WindowEngagement,
    SegmentMembership,
)


def _check_rule(field: str, node: object) -> None:
    if not isinstance(node, (And, Or, Not, *CONDITION_TYPES)):
        fail(field, f"must be a rule node, not {type(node).__name__}")
