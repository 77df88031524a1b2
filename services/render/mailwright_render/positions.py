"""Lines and columns: from offsets in a source, and back through compile-time rewrites.

Merge tags are translated before Jinja sees a template, and errors Jinja reports are in
the translated text. `OffsetMap` records every replacement so a position in the
translation maps back to where the author typed it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """A 1-based line and column."""

    line: int
    column: int


class LineIndex:
    """Offset ↔ line/column for one source text."""

    def __init__(self, source: str) -> None:
        self._starts = [0]
        position = source.find("\n")
        while position != -1:
            self._starts.append(position + 1)
            position = source.find("\n", position + 1)
        self._length = len(source)

    def position(self, offset: int) -> Position:
        offset = max(0, min(offset, self._length))
        line = bisect.bisect_right(self._starts, offset) - 1
        return Position(line + 1, offset - self._starts[line] + 1)

    def offset(self, line: int, column: int = 1) -> int:
        index = max(0, min(line - 1, len(self._starts) - 1))
        return min(self._starts[index] + max(column - 1, 0), self._length)

    @property
    def line_count(self) -> int:
        return len(self._starts)


@dataclass
class OffsetMap:
    """Replacements made to an original text, in order: (new start, new end, old start, old end)."""

    _spans: list[tuple[int, int, int, int]] = field(default_factory=list)

    def record(self, new_start: int, new_end: int, old_start: int, old_end: int) -> None:
        self._spans.append((new_start, new_end, old_start, old_end))

    def original(self, offset: int) -> int:
        """Where an offset of the rewritten text was in the original."""
        index = bisect.bisect_right([span[0] for span in self._spans], offset) - 1
        if index < 0:
            return offset
        _, new_end, old_start, old_end = self._spans[index]
        if offset < new_end:
            return old_start
        return old_end + (offset - new_end)
