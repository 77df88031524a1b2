"""Errors of the rule language: syntax errors with positions, invalid trees, failed checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailwright.rules.check import Diagnostic


@dataclass(frozen=True)
class Span:
    """Where a piece of rule text sits: 1-based line and column of its start and end.

    ``end_line``/``end_column`` point just past the last character.
    """

    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


class RuleError(Exception):
    """Base class of every error the rule language raises."""


class RuleSyntaxError(RuleError):
    """The rule text cannot be read; names the line, the column and what was expected."""

    def __init__(self, message: str, line: int, column: int, expected: Sequence[str] = ()) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.expected = tuple(expected)
        super().__init__(f"line {line}, column {column}: {message}")


class InvalidRuleError(RuleError, ValueError):
    """A tree node breaks an invariant (an empty name, a negative count, a naive datetime).

    ``field`` names the offending field, as a dotted path when known
    (``"conjunction.conditions[1].event_count.count"`` for a protobuf rule).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class RuleCheckError(RuleError):
    """A rule failed its check against the taxonomy, the trait schema or the limits."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__("; ".join(str(d) for d in self.diagnostics))


class SegmentCycleError(RuleError):
    """Segments refer to each other in a loop; ``cycle`` lists the ids, first one repeated."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join(f'"{s}"' for s in self.cycle)
        super().__init__(f"segment references form a cycle: {path}")
