"""Find the Jinja constructs of a source without executing or fully parsing it.

The compile pipeline needs to know where `{{ … }}`, `{% … %}`, `{# … #}` and raw blocks
are: merge tags inside them are not translated, HTML processing must not touch them,
and an unclosed block is reported where it was opened. This scanner follows the rules
of Jinja's own lexer that matter for finding the end of a construct: string literals,
and brackets that must be balanced before `}}` closes an expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ConstructKind = Literal["expression", "statement", "comment", "raw"]

_OPENER = re.compile(r"\{[{%#]")
_KEYWORD = re.compile(r"[-+]?\s*([A-Za-z_][A-Za-z0-9_]*)")
_ENDRAW = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_CLOSERS = {"(": ")", "[": "]", "{": "}"}

# Statements that open a block, and the statement that closes each.
BLOCK_TAGS = {
    "for": "endfor",
    "if": "endif",
    "macro": "endmacro",
    "call": "endcall",
    "filter": "endfilter",
    "with": "endwith",
    "block": "endblock",
    "autoescape": "endautoescape",
    "set-block": "endset",
}
# `{% set x %}…{% endset %}` opens a block; `{% set x = … %}` does not.
_SET_BLOCK = re.compile(r"\{%[-+]?\s*set\s+[^=]*?[-+]?%\}$")


@dataclass(frozen=True)
class Construct:
    """One Jinja construct: its span in the source, its kind and (for statements) keyword."""

    start: int
    end: int
    kind: ConstructKind
    keyword: str = ""

    def text(self, source: str) -> str:
        return source[self.start : self.end]


def scan(source: str) -> list[Construct]:
    """Every construct of `source`, in order. An unterminated one runs to the end."""
    constructs: list[Construct] = []
    position = 0
    while True:
        match = _OPENER.search(source, position)
        if match is None:
            return constructs
        start = match.start()
        marker = source[start + 1]
        if marker == "#":
            close = source.find("#}", start + 2)
            end = len(source) if close == -1 else close + 2
            constructs.append(Construct(start, end, "comment"))
        elif marker == "{":
            constructs.append(Construct(start, _close(source, start + 2, "}}"), "expression"))
        else:
            end = _close(source, start + 2, "%}")
            keyword_match = _KEYWORD.match(source, start + 2)
            keyword = keyword_match.group(1) if keyword_match else ""
            if keyword == "raw":
                endraw = _ENDRAW.search(source, end)
                constructs.append(
                    Construct(start, len(source) if endraw is None else endraw.end(), "raw")
                )
            else:
                if keyword == "set" and _SET_BLOCK.match(source, start, end):
                    keyword = "set-block"
                constructs.append(Construct(start, end, "statement", keyword))
        position = constructs[-1].end


def _close(source: str, position: int, closer: str) -> int:
    """The offset just past `closer`, honouring string literals and bracket nesting."""
    stack: list[str] = []
    length = len(source)
    while position < length:
        char = source[position]
        if char in "\"'":
            position = _skip_string(source, position)
            continue
        if not stack and source.startswith(closer, position):
            return position + len(closer)
        if char in _CLOSERS:
            stack.append(_CLOSERS[char])
        elif stack and char == stack[-1]:
            stack.pop()
        position += 1
    return length


def _skip_string(source: str, position: int) -> int:
    quote = source[position]
    position += 1
    length = len(source)
    while position < length:
        char = source[position]
        if char == "\\":
            position += 2
            continue
        if char == quote:
            return position + 1
        position += 1
    return length


def unclosed_block(constructs: list[Construct]) -> Construct | None:
    """The innermost block statement that is never closed, if any."""
    stack: list[Construct] = []
    openers = {closer: opener for opener, closer in BLOCK_TAGS.items()}
    for construct in constructs:
        if construct.kind != "statement":
            continue
        keyword = construct.keyword
        if keyword in BLOCK_TAGS:
            stack.append(construct)
        elif keyword in openers and stack and stack[-1].keyword == openers[keyword]:
            stack.pop()
    return stack[-1] if stack else None
