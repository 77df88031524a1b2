"""The plain-text part: laid out once at publish from HTML events, tidied per recipient.

`TextWriter` collapses whitespace like a browser would and turns block elements into
line breaks. Jinja statements pass through it as zero-width pieces, exactly in order, so
the text part keeps the body's logic (loops, conditions, blocks) without re-parsing
HTML per recipient. `tidy` is the only per-recipient step: it squeezes the blank lines
that loops and conditions leave behind.
"""

from __future__ import annotations


class TextWriter:
    """Accumulates text with browser-like whitespace and requested line breaks."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._newlines = 0
        self._space = False
        self._started = False
        self._forced = 0
        self._line_start = True

    def block(self, newlines: int, *, force: bool = False) -> None:
        """Ask for a break of at least `newlines` before the next content."""
        if force:
            self._forced += 1
            return
        self._newlines = max(self._newlines, newlines)

    def space(self) -> None:
        self._space = True

    def words(self, data: str) -> None:
        """Add text, collapsing runs of whitespace to one space."""
        if not data:
            return
        collapsed = " ".join(data.split())
        if data[0].isspace():
            self._space = True
        if collapsed:
            self._flush()
            self._parts.append(collapsed)
            self._space = data[-1].isspace()

    def zero_width(self, piece: str, *, closes: bool = False) -> None:
        """Add something that takes no room (a Jinja statement) exactly where it falls.

        A pending space belongs to the text before and is written first. A pending line
        break is written before a statement that opens something (a loop body then
        starts without the break that preceded the loop) but kept pending across one
        that closes or switches a block (`endfor`, `else`), so it is written once after
        the block instead of once per iteration. `tidy` squeezes what is left over.
        """
        if not piece:
            return
        if not closes and self._started and (self._newlines or self._forced):
            self._parts.append("\n" * max(self._newlines, self._forced))
            self._newlines = self._forced = 0
            self._line_start = True
        if self._space and self._started and not self._line_start:
            self._parts.append(" ")
        self._space = False
        self._parts.append(piece)

    def mark(self) -> int:
        return len(self._parts)

    def since(self, mark: int) -> str:
        return "".join(self._parts[mark:])

    def result(self) -> str:
        return "".join(self._parts)

    def _flush(self) -> None:
        if self._started and (self._newlines or self._forced):
            self._parts.append("\n" * max(self._newlines, self._forced))
        elif self._space and self._started and not self._line_start:
            self._parts.append(" ")
        self._newlines = 0
        self._forced = 0
        self._space = False
        self._started = True
        self._line_start = False


def tidy(text: str) -> str:
    """Per-recipient clean-up of a rendered text part: at most one blank line in a row.

    (`str.replace` rather than a regular expression: this runs for every recipient.)
    """
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip() + "\n"
