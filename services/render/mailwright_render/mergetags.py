"""Mailchimp merge tags, translated at compile time into the one Jinja engine.

`*|FNAME|*` becomes `{{ __mw_tag(0) }}`, `*|IF:AGE>30|*` becomes `{% if __mw_if(1) %}`:
the translation only ever emits fixed code with an index into tables of parsed tags.
Nothing the author typed inside a merge tag (a comparison value, a date format) and no
value a recipient has ever becomes template code; values are looked up at render time
and escaped like any other. Merge tags inside Jinja constructs are left alone.

Semantics follow Mailchimp's documentation: a tag with no value renders empty (or the
field's default from the workspace's table); in conditions a missing value is false, for
every operator; `=`, `!=`, `>`, `<`, `>=`, `<=` compare numerically when both sides are
numbers and as text otherwise; blocks nest; `*|ELSEIF:…|*` and `*|ELSE:|*` are optional;
`*|IFNOT:TAG|*` is true when the tag has no value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from mailwright_render.errors import Issue, Severity
from mailwright_render.jinjascan import Construct, scan
from mailwright_render.positions import LineIndex, OffsetMap


@dataclass(frozen=True)
class MergeField:
    """Where a merge field's value comes from, and what shows when there is none."""

    trait: str
    default: str = ""


DEFAULT_MERGE_FIELDS: Mapping[str, MergeField] = {
    "FNAME": MergeField("first_name"),
    "LNAME": MergeField("last_name"),
    "PHONE": MergeField("phone"),
    "ADDRESS": MergeField("address"),
    "BIRTHDAY": MergeField("birthday"),
    "COMPANY": MergeField("company"),
}

# System tags: what each resolves to at render time (see render.py's runtime).
SYSTEM_TAGS: Mapping[str, str] = {
    "EMAIL": "email",
    "UNSUB": "unsubscribe_url",
    "UPDATE_PROFILE": "preferences_url",
    "ARCHIVE": "view_in_browser_url",
    "LIST:ADDRESS": "postal_address",
    "HTML:LIST_ADDRESS_HTML": "postal_address",
    "LIST:ADDRESSLINE": "postal_address_line",
    "LIST:COMPANY": "company",
    "LIST:NAME": "sender_name",
    "MC:SUBJECT": "subject",
    "MC_PREVIEW_TEXT": "preheader",
    "MC:DATE": "date",
    "CURRENT_YEAR": "current_year",
}
ENCODINGS = frozenset({"UPPER", "LOWER", "TITLE", "URL", "HTML"})
OPERATORS = ("!=", ">=", "<=", "=", ">", "<")
POSTAL_ADDRESS_KEYS = frozenset({"postal_address", "postal_address_line"})

_TAG = re.compile(r"\*\|([^\r\n]*?)\|\*")
_NAME = r"[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)?"
_CONDITION = re.compile(rf"^\s*({_NAME})\s*(?:(!=|>=|<=|=|>|<)\s*(.*?))?\s*$")
_FIELD = re.compile(rf"^{_NAME}$")
_UNSUPPORTED = ("INTERESTED", "END:INTERESTED", "FEED", "RSS", "FACEBOOK", "TWITTER")


class _Report(Protocol):
    def __call__(self, message: str, offset: int, code: str = ...) -> None: ...


@dataclass(frozen=True)
class MergeTag:
    """One value tag: a field (`trait`) or a system value (`system`), maybe encoded."""

    written: str
    trait: str | None = None
    system: str | None = None
    default: str = ""
    encoding: str | None = None
    date_format: str | None = None


@dataclass(frozen=True)
class MergeCondition:
    """The test of an `IF`/`ELSEIF`/`IFNOT` block."""

    written: str
    trait: str | None
    system: str | None
    operator: str | None = None
    value: str | None = None


@dataclass
class MergeTables:
    """The tags and conditions of one compiled template, indexed by the generated code."""

    tags: list[MergeTag] = field(default_factory=list)
    conditions: list[MergeCondition] = field(default_factory=list)


@dataclass(frozen=True)
class Translation:
    source: str
    offsets: OffsetMap
    issues: tuple[Issue, ...]


@dataclass
class _Open:
    start: int
    seen_else: bool = False


class MergeTagTranslator:
    """Translates the parts of one template, sharing one set of tables."""

    def __init__(self, fields: Mapping[str, MergeField] = DEFAULT_MERGE_FIELDS) -> None:
        self._fields = {name.upper(): value for name, value in fields.items()}
        self.tables = MergeTables()

    def translate(self, source: str, part: str) -> Translation:
        constructs = scan(source)
        lines = LineIndex(source)
        out: list[str] = []
        offsets = OffsetMap()
        issues: list[Issue] = []
        stack: list[_Open] = []
        written = 0
        length = 0

        def issue(message: str, offset: int, code: str = "merge-tag") -> None:
            where = lines.position(offset)
            issues.append(Issue(Severity.ERROR, code, message, part, where.line, where.column))

        for match in _merge_tags(source, constructs):
            text = self._replacement(match, stack, issue)
            if text is None:
                continue
            out.append(source[written : match.start()])
            length += match.start() - written
            offsets.record(length, length + len(text), match.start(), match.end())
            out.append(text)
            length += len(text)
            written = match.end()
        out.append(source[written:])
        for block in stack:
            issue("*|IF|* block is never closed with *|END:IF|*", block.start, "unbalanced-block")
        return Translation("".join(out), offsets, tuple(issues))

    def _replacement(self, match: re.Match[str], stack: list[_Open], issue: _Report) -> str | None:
        body = match.group(1).strip()
        upper = body.upper()
        start = match.start()
        keyword, colon, rest = body.partition(":")
        keyword = keyword.upper()
        if keyword in ("IF", "IFNOT", "ELSEIF") and not colon:
            issue(f"*|{body}|* needs a condition, as in *|{keyword}:FNAME|*", start)
            return None
        if keyword in ("IF", "IFNOT", "ELSEIF"):
            condition = self._condition(rest, match, issue)
            if condition is None:
                return None
            if keyword == "ELSEIF":
                if not stack:
                    issue("*|ELSEIF|* without an open *|IF|*", start, "unbalanced-block")
                    return None
                if stack[-1].seen_else:
                    issue("*|ELSEIF|* after *|ELSE:|*", start, "unbalanced-block")
                    return None
                return f"{{% elif __mw_if({condition}) %}}"
            stack.append(_Open(start))
            negation = "not " if keyword == "IFNOT" else ""
            return f"{{% if {negation}__mw_if({condition}) %}}"
        if upper in ("ELSE:", "ELSE"):
            if not stack:
                issue("*|ELSE:|* without an open *|IF|*", start, "unbalanced-block")
                return None
            if stack[-1].seen_else:
                issue("a second *|ELSE:|* in the same *|IF|* block", start, "unbalanced-block")
                return None
            stack[-1].seen_else = True
            return "{% else %}"
        if upper == "END:IF":
            if not stack:
                issue("*|END:IF|* without an open *|IF|*", start, "unbalanced-block")
                return None
            stack.pop()
            return "{% endif %}"
        if upper.startswith(_UNSUPPORTED):
            issue(f"*|{body}|* is not supported; use a content block", start, "unsupported-tag")
            return None
        tag = self._tag(body, match, issue)
        if tag is None:
            return None
        self.tables.tags.append(tag)
        return f"{{{{ __mw_tag({len(self.tables.tags) - 1}) }}}}"

    def _condition(self, text: str, match: re.Match[str], issue: _Report) -> int | None:
        parsed = _CONDITION.match(text)
        if parsed is None:
            issue(f"malformed condition in {match.group(0)}", match.start())
            return None
        name, operator, value = parsed.group(1).upper(), parsed.group(2), parsed.group(3)
        if operator is not None and not value:
            issue(f"{match.group(0)} compares with nothing", match.start())
            return None
        if value is not None and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        trait, system = self._source(name)
        self.tables.conditions.append(MergeCondition(name, trait, system, operator, value))
        return len(self.tables.conditions) - 1

    def _tag(self, body: str, match: re.Match[str], issue: _Report) -> MergeTag | None:
        upper = body.upper()
        if upper.startswith("DATE:"):
            return MergeTag(body, system="date", date_format=body[5:])
        if upper == "DATE":
            return MergeTag(body, system="date")
        encoding: str | None = None
        name = upper
        head, _, tail = upper.partition(":")
        if head in ENCODINGS and tail and upper not in SYSTEM_TAGS:
            encoding, name = head, tail
        if not _FIELD.match(name) or (":" in name and name not in SYSTEM_TAGS):
            issue(f"unknown or malformed merge tag {match.group(0)}", match.start())
            return None
        trait, system = self._source(name)
        default = self._fields[name].default if name in self._fields else ""
        return MergeTag(body, trait=trait, system=system, default=default, encoding=encoding)

    def _source(self, name: str) -> tuple[str | None, str | None]:
        if name in self._fields:
            return self._fields[name].trait, None
        if name in SYSTEM_TAGS:
            return None, SYSTEM_TAGS[name]
        return name.lower(), None


def _merge_tags(source: str, constructs: list[Construct]) -> list[re.Match[str]]:
    """Merge tags outside Jinja constructs."""
    found: list[re.Match[str]] = []
    position = 0
    for construct in [*constructs, Construct(len(source), len(source), "comment")]:
        for match in _TAG.finditer(source, position, construct.start):
            found.append(match)
        position = construct.end
    return found


# --- render time -----------------------------------------------------------------------


def is_present(value: object) -> bool:
    """Mailchimp's notion of "has a value": not missing, not empty, not false."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | tuple | dict | set):
        return bool(value)
    return True


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def evaluate(condition: MergeCondition, value: object) -> bool:
    """Whether a condition holds for the tag's value (missing is always false)."""
    if not is_present(value):
        return False
    if condition.operator is None or condition.value is None:
        return True
    operator = condition.operator
    left_number, right_number = _number(value), _number(condition.value)
    if left_number is not None and right_number is not None:
        return _compare(left_number, operator, right_number)
    if operator == "=":
        return as_text(value) == condition.value
    if operator == "!=":
        return as_text(value) != condition.value
    # Order needs numbers or dates on both sides; anything else is simply false.
    left_date, right_date = _date(value), _date(condition.value)
    if left_date is not None and right_date is not None:
        return _compare(left_date, operator, right_date)
    return False


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator == "=":
        return bool(left == right)
    if operator == "!=":
        return bool(left != right)
    if operator == ">":
        return bool(left > right)
    if operator == "<":
        return bool(left < right)
    if operator == ">=":
        return bool(left >= right)
    return bool(left <= right)


def _date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).date()
        except ValueError:
            return None
    return None


def as_text(value: object) -> str:
    """How a tag shows a value: lists joined with commas, dates as ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(as_text(item) for item in value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)
