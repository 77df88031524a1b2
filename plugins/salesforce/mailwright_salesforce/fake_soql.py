"""A small SOQL reader for the fake Salesforce: the queries a connector sends.

`SELECT f, … FROM Object [WHERE condition] [ORDER BY f, …] [LIMIT n]`, where a condition
combines `field op value` (`=`, `!=`, `<`, `<=`, `>`, `>=`, `IN (…)`) with `AND`, `OR` and
parentheses; values are quoted strings (backslash escapes), datetimes
(`2026-03-01T12:00:00.000Z`), numbers, `true`/`false`/`null`. Anything else is a
`MALFORMED_QUERY`, as Salesforce answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:\\.|[^'\\])*')|(?P<datetime>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:?\d{2}))"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><=|>=|!=|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "'": "'", '"': '"', "\\": "\\"}


class SoqlError(ValueError):
    """The query cannot be read (`MALFORMED_QUERY`)."""


def parse_datetime(text: str) -> datetime:
    value = text.replace("Z", "+00:00")
    if value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return datetime.fromisoformat(value).astimezone(UTC)


def tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        if match is None:
            raise SoqlError(f"unexpected token at {position}")
        position = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(1)), value[1:-1])
        elif kind == "datetime":
            value = parse_datetime(value)
        elif kind == "number":
            value = float(value) if "." in value else int(value)
        out.append((kind, value))
    return out


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass
class Query:
    fields: list[str]
    sobject: str
    where: Predicate
    order: list[str]
    limit: int | None


class _Parser:
    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items
        self.at = 0

    def peek(self) -> tuple[str, Any] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def word(self, expected: str | None = None) -> str:
        item = self.peek()
        if (
            item is None
            or item[0] != "word"
            or (expected is not None and str(item[1]).upper() != expected)
        ):
            raise SoqlError(f"expected {expected or 'a name'}")
        self.at += 1
        return str(item[1])

    def op(self, expected: str) -> None:
        item = self.peek()
        if item is None or item != ("op", expected):
            raise SoqlError(f"expected {expected!r}")
        self.at += 1

    def is_word(self, word: str) -> bool:
        item = self.peek()
        return item is not None and item[0] == "word" and str(item[1]).upper() == word

    def names(self) -> list[str]:
        names = [self.word()]
        while self.peek() == ("op", ","):
            self.at += 1
            names.append(self.word())
        return names

    def value(self) -> Any:
        item = self.peek()
        if item is None:
            raise SoqlError("expected a value")
        self.at += 1
        kind, value = item
        if kind == "word":
            lowered = str(value).lower()
            if lowered in ("true", "false"):
                return lowered == "true"
            if lowered == "null":
                return None
            raise SoqlError(f"unexpected {value}")
        if kind == "op":
            raise SoqlError(f"unexpected {value}")
        return value

    def condition(self) -> Predicate:
        left = self.conjunction()
        while self.is_word("OR"):
            self.at += 1
            right = self.conjunction()
            left = _either(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.factor()
        while self.is_word("AND"):
            self.at += 1
            right = self.factor()
            left = _both(left, right)
        return left

    def factor(self) -> Predicate:
        if self.peek() == ("op", "("):
            self.at += 1
            inner = self.condition()
            self.op(")")
            return inner
        field = self.word()
        if self.is_word("IN"):
            self.at += 1
            self.op("(")
            values = [self.value()]
            while self.peek() == ("op", ","):
                self.at += 1
                values.append(self.value())
            self.op(")")
            return lambda record: record.get(field) in values
        item = self.peek()
        if item is None or item[0] != "op" or item[1] in ("(", ")", ","):
            raise SoqlError("expected an operator")
        self.at += 1
        value = self.value()
        return _compare(field, str(item[1]), value)


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda record: a(record) or b(record)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda record: a(record) and b(record)


def _compare(field: str, op: str, value: Any) -> Predicate:
    def check(record: Mapping[str, Any]) -> bool:
        have = record.get(field)
        if op == "=":
            return bool(have == value)
        if op == "!=":
            return bool(have != value)
        if have is None or value is None:
            return False
        try:
            return bool(
                {
                    "<": have < value,
                    "<=": have <= value,
                    ">": have > value,
                    ">=": have >= value,
                }[op]
            )
        except TypeError:
            raise SoqlError(f"{field} cannot be compared with that value") from None

    return check


def parse(text: str) -> Query:
    parser = _Parser(tokens(text))
    parser.word("SELECT")
    fields = parser.names()
    parser.word("FROM")
    sobject = parser.word()
    where: Predicate = lambda record: True  # noqa: E731
    order: list[str] = []
    limit = None
    if parser.is_word("WHERE"):
        parser.at += 1
        where = parser.condition()
    if parser.is_word("ORDER"):
        parser.at += 1
        parser.word("BY")
        order = parser.names()
    if parser.is_word("LIMIT"):
        parser.at += 1
        limit = int(parser.value())
    if parser.peek() is not None:
        raise SoqlError("unexpected text after the query")
    return Query(fields, sobject, where, order, limit)
