"""Printing a rule tree in its text form; ``parse(to_text(rule)) == rule`` for every tree.

The printed form is canonical: one line, lower-case keywords, durations in the largest
whole unit (``7 days``, ``90 minutes``), dates as ``2024-03-01`` when at midnight UTC and as
``2024-03-01T10:30:00Z`` otherwise, numbers in plain notation, defaults left out
(``count >= 1``, ``ever``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal

from mailwright.rules import ast

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def to_text(rule: ast.Rule) -> str:
    """The text form of a tree."""
    if isinstance(rule, ast.And | ast.Or):
        word = " and " if isinstance(rule, ast.And) else " or "
        return word.join(_grouped(child) for child in rule.conditions)
    if isinstance(rule, ast.Not):
        inner = rule.condition
        # "not in segment" would read back as the negated membership, not as not(...).
        needs_parens = isinstance(inner, ast.And | ast.Or) or (
            isinstance(inner, ast.SegmentMembership) and not inner.negated
        )
        return "not " + (f"({to_text(inner)})" if needs_parens else to_text(inner))
    return condition_text(rule)


def _grouped(rule: ast.Rule) -> str:
    text = to_text(rule)
    return f"({text})" if isinstance(rule, ast.And | ast.Or) else text


def condition_text(node: ast.Condition) -> str:
    """The text of one leaf."""
    if isinstance(node, ast.TraitCondition):
        return f"trait {name(node.trait)} {comparison(node.op, node.value)}"
    if isinstance(node, ast.TraitDateCondition):
        return f"trait {name(node.trait)} {node.op.value} {date(node.date)}"
    if isinstance(node, ast.TraitWithinLast):
        negation = "not " if node.negated else ""
        return f"trait {name(node.trait)} {negation}within last {duration(node.period)}"
    if isinstance(node, ast.EventCount):
        count = (
            ""
            if (node.op, node.count) == (ast.Operator.GE, 1)
            else f"count {node.op.value} {node.count}"
        )
        return _join("event", string(node.event), _where(node.filters), count, window(node.window))
    if isinstance(node, ast.EventAggregate):
        head = f"{node.aggregate.value}({name(node.property)}) of event"
        tail = f"{node.op.value} {number(node.value)}"
        return _join(head, string(node.event), _where(node.filters), window(node.window), tail)
    if isinstance(node, ast.DidNotPerform):
        return _join(
            "did not perform", string(node.event), _where(node.filters), window(node.window)
        )
    if isinstance(node, ast.Sequence):
        return _sequence(node)
    if isinstance(node, ast.LastEmailsEngagement):
        some = "any" if node.min_count == 1 else f"at least {node.min_count}"
        return f"{node.action.value} {some} of last {node.last} emails"
    if isinstance(node, ast.WindowEngagement):
        some = "an email" if node.min_count == 1 else f"at least {node.min_count} emails"
        return _join(node.action.value, some, window(node.window))
    negation = "not " if node.negated else ""
    return f"{negation}in segment {string(node.segment)}"


def _sequence(node: ast.Sequence) -> str:
    count = f"count >= {node.min_count}" if node.min_count > 1 else ""
    first = _join(
        "event", string(node.first.event), _where(node.first.filters), count, window(node.window)
    )
    per = f"per {name(node.per)}" if node.per is not None else ""
    return _join(
        first,
        "then no" if node.negated else "then",
        string(node.then.event),
        _where(node.then.filters),
        f"within {duration(node.within)}",
        per,
    )


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _where(filters: tuple[ast.PropertyFilter, ...]) -> str:
    if not filters:
        return ""
    tests = [f"{name(f.property)} {comparison(f.op, f.value)}" for f in filters]
    return f"where {tests[0]}" if len(tests) == 1 else f"where ({' and '.join(tests)})"


def filters_text(filters: tuple[ast.PropertyFilter, ...]) -> str:
    """The text of property tests alone (what ``parse_filters`` reads)."""
    return " and ".join(f"{name(f.property)} {comparison(f.op, f.value)}" for f in filters)


def comparison(op: ast.Operator, value: ast.Scalar | tuple[ast.Scalar, ...] | None) -> str:
    """``= "FR"``, ``in ["a", "b"]``, ``exists``."""
    if value is None:
        return op.value
    if isinstance(value, tuple):
        return f"{op.value} [{', '.join(scalar(v) for v in value)}]"
    return f"{op.value} {scalar(value)}"


def scalar(value: ast.Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return string(value)
    return number(value)


def number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def string(value: str) -> str:
    """A double-quoted string literal with escapes."""
    return '"' + _escape(value, '"') + '"'


def name(value: str) -> str:
    """A trait or property name: bare when it looks like an identifier, else in backquotes."""
    return value if _NAME.fullmatch(value) else "`" + _escape(value, "`") + "`"


def _escape(value: str, quote: str) -> str:
    out = []
    for c in value:
        if c in ("\\", quote):
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif c == "\r":
            out.append("\\r")
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return "".join(out)


def date(value: datetime) -> str:
    naive = value.replace(tzinfo=None)
    if naive.time() == datetime.min.time():
        return naive.date().isoformat()
    return naive.isoformat() + "Z"


def duration(value: timedelta) -> str:
    minutes = value // timedelta(minutes=1)
    for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
        if minutes % size == 0:
            amount = minutes // size
            return f"{amount} {unit}{'' if amount == 1 else 's'}"
    raise AssertionError("unreachable: durations are whole minutes")


def window(value: ast.Window) -> str:
    """``in last 30 days``, ``between 2024-01-01 and 2024-02-01``, or "" for ever."""
    if isinstance(value, ast.LastPeriod):
        return f"in last {duration(value.period)}"
    if isinstance(value, ast.Between):
        return f"between {date(value.start)} and {date(value.end)}"
    return ""
