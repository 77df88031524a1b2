"""The filter language of `ListProfiles`: comparisons of traits, joined by AND, OR, NOT.

    traits.country = "FR" AND computed_traits.orders_count > 2
    NOT traits.vip = true OR (traits.plan = "pro" AND last_seen_time >= "2025-01-01T00:00:00Z")
    traits.phone = null          (the trait is absent)

A field is `traits.<key>`, `computed_traits.<key>` (keys of letters, digits and `_`), or
one of `create_time`, `update_time`, `first_seen_time`, `last_seen_time` (compared with an
RFC 3339 string). Operators: `=`, `!=`, `<`, `<=`, `>`, `>=`. Values: a double-quoted
string (with `\\"` and `\\\\`), a number, `true`, `false`, `null`. AND binds tighter than
OR; keywords are case-insensitive.

Meaning: a comparison between values of different kinds is false (a number never equals
a string); an absent trait makes every comparison false except `= null` (true) and
`!= null` (false). Strings compare by code point, so timestamps written in UTC with `Z`
compare in time order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailwright.errors import InvalidArgument
from mailwright_profile.normalizers import parse_timestamp

__all__ = [
    "TIME_FIELDS",
    "And",
    "Comparison",
    "Filter",
    "Not",
    "Or",
    "matches",
    "parse_filter",
    "pushdown",
]

MAX_FILTER_CHARS = 2000
MAX_COMPARISONS = 20
TIME_FIELDS = ("create_time", "update_time", "first_seen_time", "last_seen_time")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<paren>[()])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class Comparison:
    scope: str  # "traits", "computed_traits" or "time"
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    part: Filter


Filter = Comparison | And | Or | Not


def _bad(position: int, message: str) -> InvalidArgument:
    return InvalidArgument.field("filter", f"{message} (at character {position + 1})")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise _bad(position, "unexpected character")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.index = 0
        self.comparisons = 0
        self.length = len(text)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token is None:
            raise _bad(self.length, "unexpected end of filter")
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token[0] == "word" and token[1].upper() == word:
            self.index += 1
            return True
        return False

    def parse(self) -> Filter:
        tree = self.disjunction()
        token = self.peek()
        if token is not None:
            raise _bad(token[2], f"unexpected {token[1]!r}")
        return tree

    def disjunction(self) -> Filter:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Filter:
        parts = [self.unary()]
        while self.keyword("AND"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Filter:
        if self.keyword("NOT"):
            return Not(self.unary())
        token = self.peek()
        if token is not None and token[1] == "(":
            self.take()
            inner = self.disjunction()
            closing = self.take()
            if closing[1] != ")":
                raise _bad(closing[2], "expected )")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        kind, text, position = self.take()
        if kind != "word":
            raise _bad(position, f"expected a field, got {text!r}")
        scope, key = _field(text, position)
        op_kind, op, op_position = self.take()
        if op_kind != "op":
            raise _bad(op_position, f"expected an operator ({', '.join(OPERATORS)})")
        value = self.value()
        if scope == "time":
            if not isinstance(value, str) or parse_timestamp(value) is None:
                raise _bad(position, f"{key} is compared with an RFC 3339 time string")
        elif value is None and op not in ("=", "!="):
            raise _bad(op_position, "null is only compared with = or !=")
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise _bad(position, f"more than {MAX_COMPARISONS} comparisons")
        return Comparison(scope, key, op, value)

    def value(self) -> Any:
        kind, text, position = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            number = float(text)
            return (
                int(number)
                if number.is_integer() and "." not in text and "e" not in text.lower()
                else number
            )
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        raise _bad(position, f"expected a value, got {text!r}")


def _field(text: str, position: int) -> tuple[str, str]:
    if text in TIME_FIELDS:
        return "time", text
    scope, _, key = text.partition(".")
    if scope in ("traits", "computed_traits") and _KEY.match(key):
        return scope, key
    raise _bad(
        position,
        f"unknown field {text!r}: use traits.<key>, computed_traits.<key> or "
        + ", ".join(TIME_FIELDS),
    )


def parse_filter(text: str) -> Filter | None:
    """The filter's tree, None for an empty filter; InvalidArgument on `filter` if bad."""
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidArgument.field("filter", f"longer than {MAX_FILTER_CHARS} characters")
    if not text.strip():
        return None
    return _Parser(text).parse()


def _compare(held: Any, op: str, wanted: Any) -> bool:
    if wanted is None:
        return (held is None) == (op == "=")
    if held is None:
        return False
    numbers = (int, float)
    if isinstance(wanted, bool) or isinstance(held, bool):
        if not (isinstance(wanted, bool) and isinstance(held, bool)):
            return False
    elif isinstance(wanted, numbers) != isinstance(held, numbers) or (
        not isinstance(wanted, numbers) and not (isinstance(held, str) and isinstance(wanted, str))
    ):
        return False
    if op == "=":
        return bool(held == wanted)
    if op == "!=":
        return bool(held != wanted)
    if isinstance(held, bool):
        return False
    return bool(
        {"<": held < wanted, "<=": held <= wanted, ">": held > wanted, ">=": held >= wanted}[op]
    )


def matches(
    tree: Filter | None,
    traits: Mapping[str, Any],
    computed: Mapping[str, Any],
    times: Mapping[str, datetime | None],
) -> bool:
    """Whether a profile passes the filter."""
    if tree is None:
        return True
    if isinstance(tree, And):
        return all(matches(p, traits, computed, times) for p in tree.parts)
    if isinstance(tree, Or):
        return any(matches(p, traits, computed, times) for p in tree.parts)
    if isinstance(tree, Not):
        return not matches(tree.part, traits, computed, times)
    if tree.scope == "time":
        moment = times.get(tree.key)
        wanted = parse_timestamp(tree.value)
        if moment is None or wanted is None:
            return False
        return _compare(moment.timestamp(), tree.op, wanted.timestamp())
    source = traits if tree.scope == "traits" else computed
    return _compare(source.get(tree.key), tree.op, tree.value)


def pushdown(tree: Filter | None) -> list[Comparison]:
    """Comparisons every passing profile satisfies that the database can test (plain
    traits and times, from the top-level AND); the full filter is checked after."""
    if tree is None:
        return []
    parts = tree.parts if isinstance(tree, And) else (tree,)
    return [
        p
        for p in parts
        if isinstance(p, Comparison)
        and p.scope in ("traits", "time")
        and p.value is not None
        and not (isinstance(p.value, bool) and p.op not in ("=", "!="))
    ]
