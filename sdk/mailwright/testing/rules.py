"""Hypothesis strategies for rule trees and person histories.

For property tests of anything that reads the rule language: the text and protobuf round
trips here, and the segment service's test that its SQL and incremental evaluators agree
with the reference evaluator at every point in time. Names, values and times are drawn
from small pools so that random rules and random histories actually meet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from mailwright.rules import ast
from mailwright.rules.person import EmailSend, Event, Person

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""Histories are drawn in the 60 days from this instant."""
HORIZON = timedelta(days=60)

EVENT_NAMES = ("Order Completed", "Product Viewed", "Product Added")
PROPERTIES = ("product_id", "revenue", "currency")
TRAITS = ("country", "plan", "clv_12m", "churn_risk", "tags", "last_purchase_date")
SEGMENTS = ("loyal-buyers", "inactive", "vip")
STRING_VALUES = ("FR", "DE", "EUR", "USD", "p1", "p2", "pro")


# ---------------------------------------------------------------------------------------
# Rule trees


def numbers() -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False
    ).map(lambda d: d.normalize() + 0)


def scalars(wild: bool = False) -> st.SearchStrategy[ast.Scalar]:
    """Literal values; ``wild`` adds arbitrary text (quotes, escapes, unicode)."""
    text = st.text(max_size=12) if wild else st.sampled_from(STRING_VALUES)
    return st.one_of(text, numbers(), st.booleans())


def names(pool: tuple[str, ...], wild: bool) -> st.SearchStrategy[str]:
    if not wild:
        return st.sampled_from(pool)
    odd = st.text(
        st.characters(min_codepoint=32, blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
    )
    return st.one_of(st.sampled_from(pool), st.sampled_from(("count", "and", "a.b", "x y")), odd)


def durations(max_days: int = 30) -> st.SearchStrategy[timedelta]:
    return st.one_of(
        st.integers(1, 180).map(lambda m: timedelta(minutes=m)),
        st.integers(1, 48).map(lambda h: timedelta(hours=h)),
        st.integers(1, max_days).map(lambda d: timedelta(days=d)),
    )


def instants() -> st.SearchStrategy[datetime]:
    """Instants inside the history horizon, to the minute, sometimes at midnight."""
    minutes = int(HORIZON / timedelta(minutes=1))
    return st.one_of(
        st.integers(0, minutes).map(lambda m: EPOCH + timedelta(minutes=m)),
        st.integers(0, HORIZON.days).map(lambda d: EPOCH + timedelta(days=d)),
    )


def windows() -> st.SearchStrategy[ast.Window]:
    between = st.tuples(instants(), instants()).filter(lambda p: p[0] < p[1])
    return st.one_of(
        st.just(ast.Ever()),
        durations().map(ast.LastPeriod),
        between.map(lambda p: ast.Between(p[0], p[1])),
    )


@st.composite
def comparisons(
    draw: st.DrawFn, wild: bool = False
) -> tuple[ast.Operator, ast.Scalar | tuple[ast.Scalar, ...] | None]:
    op = draw(st.sampled_from(list(ast.Operator)))
    if op in (ast.Operator.EXISTS, ast.Operator.NOT_EXISTS):
        return op, None
    if op in (ast.Operator.IN, ast.Operator.NOT_IN):
        return op, tuple(draw(st.lists(scalars(wild), min_size=1, max_size=3)))
    if op in ast.ORDERINGS:
        return op, draw(numbers())
    if op is ast.Operator.STARTS_WITH:
        return op, draw(st.text(max_size=6) if wild else st.sampled_from(STRING_VALUES))
    return op, draw(scalars(wild))


@st.composite
def property_filters(draw: st.DrawFn, wild: bool = False) -> ast.PropertyFilter:
    op, value = draw(comparisons(wild))
    return ast.PropertyFilter(draw(names(PROPERTIES, wild)), op, value)


def filter_lists(wild: bool = False) -> st.SearchStrategy[tuple[ast.PropertyFilter, ...]]:
    return st.lists(property_filters(wild), max_size=2).map(tuple)


def event_names(wild: bool) -> st.SearchStrategy[str]:
    return names(EVENT_NAMES, wild) if wild else st.sampled_from(EVENT_NAMES)


def conditions(wild: bool = False) -> st.SearchStrategy[ast.Condition]:
    """Every kind of leaf. ``wild`` draws odd names and strings (for round trips)."""
    comparators = st.sampled_from(sorted(ast.COMPARATORS, key=lambda o: o.value))
    actions = st.sampled_from(list(ast.EmailAction))
    trait = names(TRAITS, wild)
    return st.one_of(
        st.builds(lambda t, c: ast.TraitCondition(t, *c), trait, comparisons(wild)),
        st.builds(
            ast.TraitDateCondition, trait, st.sampled_from(list(ast.DateOperator)), instants()
        ),
        st.builds(ast.TraitWithinLast, trait, durations(), st.booleans()),
        st.builds(
            ast.EventCount,
            event_names(wild),
            comparators,
            st.integers(0, 4),
            windows(),
            filter_lists(wild),
        ),
        st.builds(
            ast.EventAggregate,
            st.sampled_from(list(ast.Aggregate)),
            names(PROPERTIES, wild),
            event_names(wild),
            comparators,
            numbers(),
            windows(),
            filter_lists(wild),
        ),
        st.builds(ast.DidNotPerform, event_names(wild), windows(), filter_lists(wild)),
        st.builds(
            ast.Sequence,
            st.builds(ast.EventSpec, event_names(wild), filter_lists(wild)),
            st.builds(ast.EventSpec, event_names(wild), filter_lists(wild)),
            durations(max_days=10),
            st.booleans(),
            st.integers(1, 3),
            windows(),
            st.one_of(st.none(), names(PROPERTIES, wild)),
        ),
        st.builds(ast.LastEmailsEngagement, actions, st.integers(1, 5), st.integers(1, 3)),
        st.builds(ast.WindowEngagement, actions, windows(), st.integers(1, 3)),
        st.builds(ast.SegmentMembership, names(SEGMENTS, wild), st.booleans()),
    )


def rules(wild: bool = False, max_leaves: int = 8) -> st.SearchStrategy[ast.Rule]:
    """Random trees of And, Or and Not over random conditions."""

    def extend(children: st.SearchStrategy[ast.Rule]) -> st.SearchStrategy[ast.Rule]:
        group = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(group.map(ast.And), group.map(ast.Or), children.map(ast.Not))

    return st.recursive(conditions(wild), extend, max_leaves=max_leaves)


# ---------------------------------------------------------------------------------------
# People


def property_values() -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from(STRING_VALUES),
        st.integers(-5, 200),
        st.decimals(min_value=0, max_value=500, places=2),
        st.booleans(),
        st.none(),
    )


@st.composite
def events(draw: st.DrawFn) -> Event:
    props = draw(st.dictionaries(st.sampled_from(PROPERTIES), property_values(), max_size=3))
    return Event(draw(st.sampled_from(EVENT_NAMES)), draw(instants()), props)


@st.composite
def email_sends(draw: st.DrawFn) -> EmailSend:
    sent = draw(instants())
    later = st.integers(0, 7 * 24 * 60).map(lambda m: sent + timedelta(minutes=m))
    return EmailSend(
        send_id=draw(st.uuids()).hex,
        sent_at=sent,
        opens=tuple(draw(st.lists(later, max_size=2))),
        clicks=tuple(draw(st.lists(later, max_size=1))),
        machine_opens=tuple(draw(st.lists(later, max_size=1))),
    )


def trait_values() -> st.SearchStrategy[object]:
    return st.one_of(
        property_values(),
        instants(),
        instants().map(lambda d: d.isoformat()),
        st.lists(st.sampled_from(STRING_VALUES), max_size=3),
    )


@st.composite
def persons(draw: st.DrawFn) -> Person:
    return Person(
        traits=draw(st.dictionaries(st.sampled_from(TRAITS), trait_values(), max_size=4)),
        events=tuple(draw(st.lists(events(), max_size=12))),
        emails=tuple(draw(st.lists(email_sends(), max_size=6))),
        segments=frozenset(draw(st.sets(st.sampled_from(SEGMENTS)))),
    )
