"""A piece of a template on its way through compilation, and where its text came from.

Each piece (a subject variant, the body, a block variant, the text part) is translated
from merge tags, checked by Jinja, and reports problems at the line and column its
author typed, through the offset maps of every rewrite it went through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jinja2 import nodes

from mailwright_render.checks import Finding, check_part, reserved_names
from mailwright_render.engine import environment
from mailwright_render.errors import Issue, Severity
from mailwright_render.mergetags import MergeTagTranslator
from mailwright_render.positions import LineIndex, OffsetMap
from mailwright_render.sandbox import MissingPolicy


@dataclass
class Part:
    """One authored piece: original text, its Jinja translation, and its syntax tree."""

    name: str
    original: str
    translated: str
    offsets: OffsetMap
    html: bool
    ast: nodes.Template | None = None
    lines: LineIndex = field(init=False)

    def __post_init__(self) -> None:
        self.lines = LineIndex(self.original)

    def locate(self, offset: int, *extra: OffsetMap) -> tuple[int, int]:
        """Line and column in the original of an offset in the translation (or later text,
        given the maps that lead back to the translation, innermost first)."""
        for offset_map in extra:
            offset = offset_map.original(offset)
        position = self.lines.position(self.offsets.original(offset))
        return position.line, position.column

    def issue(
        self, code: str, message: str, offset: int | None, *extra: OffsetMap,
        severity: Severity = Severity.ERROR,
    ) -> Issue:  # fmt: skip
        if offset is None:
            return Issue(severity, code, message, self.name)
        line, column = self.locate(offset, *extra)
        return Issue(severity, code, message, self.name, line, column)


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def prepare(
    translator: MergeTagTranslator,
    name: str,
    source: str,
    *,
    html: bool,
    missing: MissingPolicy,
    mask: Callable[[str], str] | None = None,
) -> tuple[Part, list[Issue]]:
    """Translate and check one piece. `mask`, if given, blanks platform statements
    (content blocks) out of the translation before Jinja checks it, keeping offsets."""
    original = normalise(source)
    translation = translator.translate(original, name)
    part = Part(name, original, translation.source, translation.offsets, html)
    issues = list(translation.issues)
    for finding in reserved_names(original):
        position = part.lines.position(finding.offset)
        issues.append(
            Issue(
                Severity.ERROR, finding.code, finding.message, name, position.line, position.column
            )
        )
    if issues:
        return part, issues
    checked_text = mask(part.translated) if mask is not None else part.translated
    checked = check_part(environment(html, missing), checked_text, authored=False)
    part.ast = checked.ast
    issues.extend(_issue(part, finding) for finding in checked.findings)
    return part, issues


def _issue(part: Part, finding: Finding) -> Issue:
    return part.issue(finding.code, finding.message, finding.offset)
