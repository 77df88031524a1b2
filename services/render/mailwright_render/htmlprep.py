"""Keep Jinja intact while HTML tools (MJML, CSS inlining, our link pass) rework a body.

Before HTML processing every Jinja construct is swapped for a placeholder the tools
carry through untouched: an HTML comment where the construct stands between elements
(comments survive in tables, where text would be moved out), an alphanumeric token in
attribute values, titles and conditional comments. Afterwards the placeholders are put
back, and we check that every statement came back exactly once and in order and that no
expression was dropped, so a tool can never silently change a template's logic.

Jinja is refused where no placeholder can survive: between a tag's attributes, and
statements inside `<style>`; scripts are refused altogether.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from mailwright_render.errors import Issue, Severity
from mailwright_render.jinjascan import Construct

_TAG_START = re.compile(r"</?([A-Za-z][A-Za-z0-9:-]*)")
_UNQUOTED_END = re.compile(r"[\s>]")
_RAWTEXT = frozenset({"style", "script"})
_RCDATA = frozenset({"title", "textarea"})


@dataclass(frozen=True)
class Placeholders:
    """The protected text and what each placeholder stands for."""

    text: str
    nonce: str
    constructs: tuple[Construct, ...]
    originals: tuple[str, ...]

    def comment(self, index: int) -> str:
        return _comment(self.nonce, index)

    def token(self, index: int) -> str:
        return _token(self.nonce, index)

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"<!--mw{self.nonce}:(\d+)-->|mw{self.nonce}t(\d+)e")

    def is_statement(self, index: int) -> bool:
        return self.constructs[index].kind == "statement"


def _comment(nonce: str, index: int) -> str:
    return f"<!--mw{nonce}:{index}-->"


def _token(nonce: str, index: int) -> str:
    return f"mw{nonce}t{index}e"


def classify(source: str, constructs: list[Construct]) -> list[str]:
    """The HTML context of each construct: data, attr, tag, comment, rcdata, style, script."""
    contexts: list[str] = []
    length = len(source)
    lowered = source.lower()
    state, tag, closing, position, index = "data", "", False, 0, 0
    while index < len(constructs) or position < length:
        limit = constructs[index].start if index < len(constructs) else length
        if position >= limit:
            if index >= len(constructs):
                break
            if state == "data":
                contexts.append("data")
            elif state in ("dq", "sq", "uq", "value"):
                contexts.append("attr")
                state = "uq" if state == "value" else state
            elif state == "raw":
                contexts.append(tag if tag in _RAWTEXT else "rcdata")
            else:
                contexts.append(state)
            position = constructs[index].end
            index += 1
            continue
        if state == "data":
            found = source.find("<", position, limit)
            if found == -1:
                position = limit
                continue
            if source.startswith("<!--", found):
                state, position = "comment", found + 4
                continue
            match = _TAG_START.match(source, found)
            if match is not None:
                state, tag = "tag", match.group(1).lower()
                closing, position = source[found + 1] == "/", match.end()
            elif source.startswith(("<!", "<?"), found):
                state, position = "bogus", found + 2
            else:
                position = found + 1
        elif state == "comment":
            found = source.find("-->", position, limit)
            state, position = ("comment", limit) if found == -1 else ("data", found + 3)
        elif state == "bogus":
            found = source.find(">", position, limit)
            state, position = ("bogus", limit) if found == -1 else ("data", found + 1)
        elif state in ("dq", "sq"):
            found = source.find('"' if state == "dq" else "'", position, limit)
            state, position = (state, limit) if found == -1 else ("tag", found + 1)
        elif state == "uq":
            match = _UNQUOTED_END.search(source, position, limit)
            state, position = ("uq", limit) if match is None else ("tag", match.start())
        elif state == "raw":
            found = lowered.find(f"</{tag}", position, limit)
            state, position = ("raw", limit) if found == -1 else ("data", found)
        else:  # inside a tag, or just after `=`
            char = source[position]
            if char.isspace():
                position += 1
            elif char in "\"'":
                state, position = ("dq" if char == '"' else "sq"), position + 1
            elif state == "value":
                state = "uq"
            elif char == "=":
                state, position = "value", position + 1
            elif char == ">":
                opens_raw = not closing and (tag in _RAWTEXT or tag in _RCDATA)
                state, position = ("raw" if opens_raw else "data"), position + 1
            else:
                state, position = "tag", position + 1
    return contexts


def protect(
    source: str, constructs: list[Construct], part: str, locate: Callable[[int], tuple[int, int]]
) -> tuple[Placeholders | None, list[Issue]]:
    """Swap constructs for placeholders; report constructs no placeholder can carry."""
    contexts = classify(source, constructs)
    nonce = _nonce(source)
    issues: list[Issue] = []
    out: list[str] = []
    kept: list[Construct] = []
    originals: list[str] = []
    written = 0
    for construct, context in zip(constructs, contexts, strict=True):
        out.append(source[written : construct.start])
        written = construct.end
        if construct.kind == "comment":
            continue
        problem = _refusal(construct, context)
        if problem is not None:
            line, column = locate(construct.start)
            issues.append(Issue(Severity.ERROR, "jinja-placement", problem, part, line, column))
            continue
        index = len(kept)
        kept.append(construct)
        originals.append(construct.text(source))
        out.append(_comment(nonce, index) if context == "data" else _token(nonce, index))
    out.append(source[written:])
    if issues:
        return None, issues
    return Placeholders("".join(out), nonce, tuple(kept), tuple(originals)), []


def _refusal(construct: Construct, context: str) -> str | None:
    if context == "tag":
        return "Jinja between a tag's attributes is not supported; put it inside a value"
    if context == "script":
        return "scripts are not allowed in email"
    if context == "style" and construct.kind != "expression":
        return "Jinja statements inside <style> are not supported; CSS is inlined at publish"
    return None


def _nonce(source: str) -> str:
    seed = hashlib.sha256(source.encode()).hexdigest()
    for start in range(0, len(seed) - 8):
        nonce = "".join(chr(ord("a") + int(c, 16) % 26) for c in seed[start : start + 8])
        if f"mw{nonce}" not in source:
            return nonce
    raise ValueError("could not find a placeholder prefix absent from the template")


@dataclass(frozen=True)
class Restored:
    text: str
    missing_statements: tuple[int, ...]
    misordered: bool
    missing_expressions: tuple[int, ...]


def restore(
    text: str, placeholders: Placeholders, consumed: frozenset[int] = frozenset()
) -> Restored:
    """Put constructs back; say which statements or expressions went missing or moved.

    `consumed` expressions were written into generated code on purpose (tracked links).
    """
    seen: list[int] = []

    def back(match: re.Match[str]) -> str:
        index = int(match.group(1) or match.group(2))
        seen.append(index)
        return placeholders.originals[index]

    restored = placeholders.pattern().sub(back, text)
    counted: dict[int, int] = {}
    for index in seen:
        counted[index] = counted.get(index, 0) + 1
    statements = [i for i in seen if placeholders.is_statement(i)]
    structural = [
        i for i, construct in enumerate(placeholders.constructs) if construct.kind == "statement"
    ]
    missing = tuple(i for i in structural if counted.get(i, 0) != 1)
    misordered = not missing and statements != structural
    lost = tuple(
        i for i in range(len(placeholders.constructs)) if i not in counted and i not in consumed
    )
    return Restored(restored, missing, misordered, lost)
