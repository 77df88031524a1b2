"""Tree nodes refuse invalid values on construction, naming the field."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mailwright.rules import (
    And,
    Between,
    DateOperator,
    EmailAction,
    EventCount,
    InvalidRuleError,
    LastEmailsEngagement,
    LastPeriod,
    Not,
    Operator,
    SegmentMembership,
    TraitCondition,
    TraitDateCondition,
    conditions,
    depth,
    segment_references,
    walk,
)

JAN1 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: TraitCondition("", Operator.EXISTS), "trait"),
        (lambda: TraitCondition("a\nb", Operator.EXISTS), "trait"),
        (lambda: TraitCondition("x", Operator.IN, ()), "value"),
        (lambda: TraitCondition("x", Operator.EXISTS, "a"), "value"),
        (lambda: TraitCondition("x", Operator.EQ, 3), "value"),
        (lambda: TraitCondition("x", Operator.EQ, Decimal("NaN")), "value"),
        (lambda: TraitCondition("x", Operator.GT, "a"), "value"),
        (lambda: TraitCondition("x", Operator.STARTS_WITH, Decimal(1)), "value"),
        (lambda: EventCount("A", Operator.IN, 1), "op"),
        (lambda: EventCount("A", count=-1), "count"),
        (lambda: LastPeriod(timedelta(seconds=90)), "period"),
        (lambda: LastPeriod(timedelta(days=4000)), "period"),
        (lambda: Between(JAN1, JAN1), "end"),
        (lambda: TraitDateCondition("d", DateOperator.BEFORE, datetime(2024, 1, 1)), "date"),
        (lambda: LastEmailsEngagement(EmailAction.OPENED, 0), "last"),
        (lambda: And((SegmentMembership("a"),)), "conditions"),
        (lambda: And((SegmentMembership("a"), "b")), "conditions[1]"),  # type: ignore[arg-type]
        (lambda: Not("x"), "condition"),  # type: ignore[arg-type]
    ],
)
def test_invalid_nodes_are_refused(build: object, field: str) -> None:
    with pytest.raises(InvalidRuleError) as info:
        build()  # type: ignore[operator]
    assert info.value.field == field


def test_datetimes_are_stored_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    node = TraitDateCondition("d", DateOperator.BEFORE, datetime(2024, 1, 1, 1, tzinfo=paris))
    assert node.date == JAN1
    assert node.date.tzinfo is UTC


def test_walk_gives_paths_parents_first() -> None:
    a, b, c = SegmentMembership("a"), SegmentMembership("b"), SegmentMembership("c")
    rule = And((a, Not(b), c))
    assert [path for path, _ in walk(rule)] == [(), (0,), (1,), (1, 0), (2,)]
    assert depth(rule) == 3
    assert conditions(rule) == [a, b, c]
    assert segment_references(rule) == {"a", "b", "c"}
