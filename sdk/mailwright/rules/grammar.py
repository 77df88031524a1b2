"""Reading the text form of a rule into the tree (the grammar is ``grammar.lark``).

``parse(text)`` gives the tree; ``parse_located(text)`` also gives where each node and some
of its fields sit in the text, so that the checker can point at them. Errors are
:class:`~mailwright.rules.errors.RuleSyntaxError` with line, column and what was expected,
in plain words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from lark import Lark
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from mailwright.rules import ast, tree
from mailwright.rules.builder import Builder, FieldKey, Located, spans_of
from mailwright.rules.errors import RuleSyntaxError, Span
from mailwright.rules.syntax_words import describe_expected, hint_for

MAX_TEXT_LENGTH = 100_000

KEYWORDS = (
    "and", "or", "not", "trait", "before", "after", "within", "the", "last", "in", "contains",
    "starts", "with", "exists", "event", "then", "per", "where", "count", "of", "did",
    "perform", "between", "ever", "opened", "clicked", "any", "at", "least", "an", "segment",
)  # fmt: skip
"""Reserved words (``emails``/``email``, ``no``, ``true``, ``false`` and the aggregate and
unit names are keywords too in their places). Names may still use them: a name is only
read where a name is expected."""


def _grammar() -> str:
    text = resources.files("mailwright.rules").joinpath("grammar.lark").read_text("utf-8")
    keywords = [f"_{k.upper()}.2: /{k}(?![A-Za-z0-9_])/i" for k in KEYWORDS]
    keywords.append("_EMAILS.2: /emails?(?![A-Za-z0-9_])/i")
    return text + "\n" + "\n".join(keywords) + "\n"


_PARSER = Lark(
    _grammar(),
    parser="lalr",
    start=["start", "filter_list"],
    propagate_positions=True,
    maybe_placeholders=True,
)


@dataclass(frozen=True)
class ParsedRule:
    """A parsed rule and where its parts sit in the text."""

    rule: ast.Rule
    spans: Mapping[FieldKey, Span]

    def span(self, path: tree.Path, field: str = "") -> Span | None:
        """The span of a node's field, else of the node, else None."""
        return self.spans.get((path, field)) or self.spans.get((path, ""))


def parse(text: str) -> ast.Rule:
    """The tree of a rule's text; raises RuleSyntaxError."""
    return parse_located(text).rule


def parse_located(text: str) -> ParsedRule:
    """The tree of a rule's text and the spans of its nodes; raises RuleSyntaxError."""
    located: Located = _read(text, "start", "a condition")
    return ParsedRule(located.node, spans_of(located))


def parse_filters(text: str) -> tuple[ast.PropertyFilter, ...]:
    """Property tests alone, joined by ``and``: ``currency = "EUR" and revenue > 50``.

    For conditions on one event's properties (journey triggers); they mean what the
    ``where`` of an event condition means (see ``reference.filters_match``).
    """
    filters: tuple[ast.PropertyFilter, ...] = _read(text, "filter_list", "a property test")
    return filters


def _read(text: str, start: str, what: str) -> Any:
    if not isinstance(text, str):
        raise TypeError("rule text must be a string")
    if len(text) > MAX_TEXT_LENGTH:
        raise RuleSyntaxError(f"rule text is longer than {MAX_TEXT_LENGTH} characters", 1, 1)
    if not text.strip():
        raise RuleSyntaxError(f"rule text is empty; expected {what}", 1, 1)
    try:
        tree = _PARSER.parse(text, start=start)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return Builder().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, RuleSyntaxError):
            raise exc.orig_exc from None
        raise


def _syntax_error(text: str, exc: UnexpectedInput) -> RuleSyntaxError:
    line, column = exc.line, exc.column
    at_end = isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    )
    if at_end or line < 1:
        # Point just past the last character written, not at the last token's start.
        lines = text.rstrip().split("\n")
        line, column = len(lines), len(lines[-1]) + 1
    expected: set[str] = set()
    if isinstance(exc, UnexpectedToken):
        expected = set(exc.accepts or exc.expected)
        found = "end of the rule" if exc.token.type == "$END" else f'"{exc.token}"'
    elif isinstance(exc, UnexpectedCharacters):
        expected = set(exc.allowed or ())
        found = f'"{exc.char}"'
    else:
        expected = set(getattr(exc, "expected", ()) or ())
        found = "end of the rule"
    words = describe_expected(expected)
    message = f"unexpected {found}; expected {words[0] if len(words) == 1 else _one_of(words)}"
    hint = hint_for(expected, found)
    if hint:
        message += f" ({hint})"
    return RuleSyntaxError(message, line, column, words)


def _one_of(words: list[str]) -> str:
    return "one of " + ", ".join(words[:-1]) + " or " + words[-1]
