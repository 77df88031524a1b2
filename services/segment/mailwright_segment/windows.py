"""Windows as integer ranges, and how a range splits into whole days and edges.

Instants are integer microseconds, so every window of the language is a half-open range
``[start, stop)`` at ``now``:

* ``in last P``: ``now - P < t <= now``  →  ``[now - P + 1, now + 1)``
* ``between S and E``: ``S <= t < E`` and ``t <= now``  →  ``[S, min(E, now + 1))``
* ``ever``: ``t <= now``  →  ``(-inf, now + 1)``

The day buckets answer the whole UTC days inside the range; the hits of the partial days
at either end (the *edges*) answer the rest, so a bucketed count is exact to the
microsecond: ``split`` gives the day range ``[first_day, end_day)`` and the edge ranges.
The batch (SQL) and incremental evaluators both use this split, so they count the same
events even after old hits have been pruned.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailwright.rules import ast
from mailwright_segment.values import MICROS_PER_DAY, micros_of, to_micros


@dataclass(frozen=True)
class Span:
    """``start <= t < stop``; ``start`` None means no lower bound."""

    start: int | None
    stop: int

    @property
    def empty(self) -> bool:
        return self.start is not None and self.start >= self.stop

    def contains(self, t: int) -> bool:
        return t < self.stop and (self.start is None or t >= self.start)

    def clipped(self, stop: int) -> Span:
        return Span(self.start, min(self.stop, stop))


@dataclass(frozen=True)
class Split:
    """Whole days ``[first_day, end_day)`` (``first_day`` None: from the beginning) and the
    edge ranges around them. No whole day: ``days`` is None and one edge is the span."""

    days: tuple[int | None, int] | None
    edges: tuple[Span, ...]


def span_of(window: ast.Window, now: int) -> Span:
    if isinstance(window, ast.LastPeriod):
        return Span(now - micros_of(window.period) + 1, now + 1)
    if isinstance(window, ast.Between):
        return Span(to_micros(window.start), min(to_micros(window.end), now + 1))
    return Span(None, now + 1)


def split(span: Span) -> Split:
    if span.empty:
        return Split(None, ())
    end_day = span.stop // MICROS_PER_DAY
    if span.start is None:
        return Split((None, end_day), (Span(end_day * MICROS_PER_DAY, span.stop),))
    first_day = -(-span.start // MICROS_PER_DAY)
    if first_day >= end_day:
        return Split(None, (span,))
    return Split(
        (first_day, end_day),
        (
            Span(span.start, first_day * MICROS_PER_DAY),
            Span(end_day * MICROS_PER_DAY, span.stop),
        ),
    )
