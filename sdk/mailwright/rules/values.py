"""Literal values, operators and the invariants every rule node checks on construction.

Re-exported by :mod:`mailwright.rules.ast`; kept apart so that the tree module reads as the
specification of the nodes.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NoReturn, TypeAlias

from mailwright.rules.errors import InvalidRuleError

MAX_NESTING = 50
"""Deepest tree the parser and ``from_proto`` accept; the checker's limits are tighter."""
MAX_NAME_LENGTH = 200
MAX_STRING_LENGTH = 1000
MAX_LIST_LENGTH = 1000
MAX_COUNT = 1_000_000
MAX_LAST_EMAILS = 1000
MAX_NUMBER_DIGITS = 15
MIN_DURATION = timedelta(minutes=1)
MAX_DURATION = timedelta(days=3650)

Scalar: TypeAlias = str | bool | Decimal
"""A literal value in a rule. Numbers are always :class:`~decimal.Decimal`."""


class Operator(enum.Enum):
    """How a trait or an event property is compared with a literal."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"
    NOT_IN = "not in"
    CONTAINS = "contains"
    STARTS_WITH = "starts with"
    EXISTS = "exists"
    NOT_EXISTS = "not exists"


COMPARATORS = frozenset(
    {Operator.EQ, Operator.NE, Operator.LT, Operator.LE, Operator.GT, Operator.GE}
)
"""The six operators that compare two numbers (the only ones counts and aggregates take)."""
ORDERINGS = frozenset({Operator.LT, Operator.LE, Operator.GT, Operator.GE})


class DateOperator(enum.Enum):
    BEFORE = "before"
    AFTER = "after"


class Aggregate(enum.Enum):
    SUM = "sum"
    AVERAGE = "avg"
    MIN = "min"
    MAX = "max"


class EmailAction(enum.Enum):
    OPENED = "opened"
    CLICKED = "clicked"
    OPENED_OR_CLICKED = "opened or clicked"


# ---------------------------------------------------------------------------------------
# Validation helpers


def fail(field: str, message: str) -> NoReturn:
    raise InvalidRuleError(field, message)


def check_name(field: str, value: object, what: str = "name") -> None:
    if not isinstance(value, str) or not value:
        fail(field, f"{what} must be a non-empty string")
    assert isinstance(value, str)
    if len(value) > MAX_NAME_LENGTH:
        fail(field, f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        fail(field, f"{what} contains a control character")


def check_scalar(field: str, value: object) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            fail(field, f"string is longer than {MAX_STRING_LENGTH} characters")
        return
    if isinstance(value, Decimal):
        if not value.is_finite():
            fail(field, "number must be finite")
        digits = value.normalize().as_tuple().digits if value else (0,)
        if len(digits) > MAX_NUMBER_DIGITS:
            fail(field, f"number has more than {MAX_NUMBER_DIGITS} significant digits")
        if value and not (-MAX_NUMBER_DIGITS <= value.adjusted() < MAX_NUMBER_DIGITS):
            fail(field, f"number must lie between 1e-{MAX_NUMBER_DIGITS} and 1e{MAX_NUMBER_DIGITS}")
        return
    fail(field, f"value must be a string, a boolean or a Decimal, not {type(value).__name__}")


def check_comparison(op: Operator, value: object) -> None:
    """A literal fits its operator: a list for in/not in, nothing for exists, else a scalar."""
    if not isinstance(op, Operator):
        fail("op", "must be an Operator")
    if op in (Operator.EXISTS, Operator.NOT_EXISTS):
        if value is not None:
            fail("value", f"'{op.value}' takes no value")
    elif op in (Operator.IN, Operator.NOT_IN):
        if not isinstance(value, tuple) or not value:
            fail("value", f"'{op.value}' takes a non-empty tuple of values")
        assert isinstance(value, tuple)
        if len(value) > MAX_LIST_LENGTH:
            fail("value", f"a list holds at most {MAX_LIST_LENGTH} values")
        for i, item in enumerate(value):
            check_scalar(f"value[{i}]", item)
    else:
        check_scalar("value", value)
        if op in ORDERINGS and not (isinstance(value, Decimal)):
            fail("value", f"'{op.value}' compares numbers; the value must be a number")
        if op is Operator.STARTS_WITH and not isinstance(value, str):
            fail("value", "'starts with' takes a string")


def check_instant(field: str, value: object) -> None:
    if not isinstance(value, datetime):
        fail(field, "must be a datetime")
    assert isinstance(value, datetime)
    if value.tzinfo is None or value.utcoffset() is None:
        fail(field, "must be timezone-aware (UTC)")


def check_duration(field: str, value: object) -> None:
    if not isinstance(value, timedelta):
        fail(field, "must be a timedelta")
    assert isinstance(value, timedelta)
    if value % timedelta(minutes=1):
        fail(field, "must be a whole number of minutes")
    if not MIN_DURATION <= value <= MAX_DURATION:
        fail(field, "must be between 1 minute and 3650 days")


def check_count(field: str, value: object, minimum: int = 0, maximum: int = MAX_COUNT) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        fail(field, "must be an integer")
    assert isinstance(value, int)
    if not minimum <= value <= maximum:
        fail(field, f"must be between {minimum} and {maximum}")
