"""Explaining a rule for one person: the tree with each node's truth value and the values
compared, as the reference evaluator sees them (``ExplainMembership`` returns this)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from mailwright.rules import ast
from mailwright.rules.person import Person
from mailwright.rules.printer import condition_text, to_text
from mailwright.rules.reference import outcome


@dataclass(frozen=True)
class Explanation:
    """One node of the explained tree.

    ``facts`` holds what the node compared: for a trait its ``actual`` value, for an event
    count the ``count`` and the window's bounds, for a sequence the ``anchor`` and
    ``deadline`` that decided it, for email engagement the ``engaged`` sends.
    """

    node: ast.Rule
    value: bool
    facts: Mapping[str, object] = field(default_factory=dict)
    children: tuple[Explanation, ...] = ()

    @property
    def text(self) -> str:
        """The node in the text form."""
        return to_text(self.node)

    @property
    def detail(self) -> str:
        """The facts in one line, e.g. ``count=1, expected='>= 3', after=…``."""
        return ", ".join(f"{k}={_show(v)}" for k, v in self.facts.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: datetimes as ISO 8601 strings, Decimals as strings."""
        out: dict[str, Any] = {
            "kind": _kind(self.node),
            "value": self.value,
            "facts": {k: _plain(v) for k, v in self.facts.items()},
        }
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        else:
            out["text"] = self.text
        return out


def explain(rule: ast.Rule, person: Person, now: datetime) -> Explanation:
    """Every node evaluated (no short cut), with its value and facts."""
    if isinstance(rule, ast.And | ast.Or):
        kids = tuple(explain(c, person, now) for c in rule.conditions)
        values = [k.value for k in kids]
        value = all(values) if isinstance(rule, ast.And) else any(values)
        return Explanation(rule, value, {}, kids)
    if isinstance(rule, ast.Not):
        inner = explain(rule.condition, person, now)
        return Explanation(rule, not inner.value, {}, (inner,))
    result = outcome(rule, person, now)
    return Explanation(rule, result.value, dict(result.facts))


def format_explanation(explanation: Explanation, indent: str = "  ") -> str:
    """A readable, indented rendering: one line per node, ``[x]`` true, ``[ ]`` false."""
    lines: list[str] = []
    stack: list[tuple[int, Explanation]] = [(0, explanation)]
    while stack:
        level, item = stack.pop()
        mark = "[x]" if item.value else "[ ]"
        node = item.node
        if isinstance(node, ast.And | ast.Or | ast.Not):
            label = {ast.And: "all of", ast.Or: "any of", ast.Not: "not"}[type(node)]
        else:
            label = condition_text(node)
        detail = item.detail
        lines.append(f"{indent * level}{mark} {label}" + (f"  ({detail})" if detail else ""))
        stack.extend((level + 1, c) for c in reversed(item.children))
    return "\n".join(lines)


def _kind(node: ast.Rule) -> str:
    name = type(node).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _show(value: object) -> str:
    plain = _plain(value)
    if plain is None:
        return "missing"
    if isinstance(plain, str):
        return plain if "T" in plain and plain[:4].isdigit() else repr(plain)
    return str(plain)
