"""Segment definitions: what a segment is, and how a rule is accepted or refused.

A rule arrives as text or as a protobuf tree. `read_rule` parses it, checks it against the
workspace's rule schema (`taxonomy.rule_schema`), the segments that exist and the limits,
and against what this service can evaluate exactly (sliding windows no longer than the
event log's retention, no NUL character in strings). Problems become `InvalidArgument`
field violations: a syntax or check error in text names the field (`segment.rule_text`)
and the position as `line:column`; in a tree it names the protobuf path
(`segment.rule.conjunction.conditions[1].event_count.window.last`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta

from mailwright.errors import FieldViolation, InvalidArgument
from mailwright.rules import ast, tree
from mailwright.rules.check import CheckResult, Diagnostic, Severity, check, check_cycles
from mailwright.rules.errors import InvalidRuleError, RuleSyntaxError, SegmentCycleError
from mailwright.rules.grammar import parse_located
from mailwright.rules.printer import to_text
from mailwright.rules.proto import from_proto
from mailwright.rules.schema import Limits, Taxonomy, TraitSchema
from mailwright.segment.v1 import rule_pb2

SEGMENT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:/-]{0,63}")
MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 4000
MAX_TAGS = 20
MAX_RULE_TEXT = 100_000


@dataclass(frozen=True)
class Segment:
    """A saved segment (its current version unless read at another)."""

    ws: str
    segment_id: str
    display_name: str
    description: str
    tags: tuple[str, ...]
    version: int
    rule: ast.Rule
    rule_text: str
    warnings: tuple[Diagnostic, ...] = ()
    created_at: int = 0
    updated_at: int = 0
    pk: int = 0


@dataclass(frozen=True)
class CheckedRule:
    rule: ast.Rule
    text: str
    """The canonical text form."""
    warnings: tuple[Diagnostic, ...] = ()
    errors: tuple[Diagnostic, ...] = ()
    source_field: str = "rule_text"
    located: bool = False


@dataclass(frozen=True)
class RuleContext:
    """What a rule is checked against in one workspace."""

    taxonomy: Taxonomy | None = None
    traits: TraitSchema | None = None
    segments: Collection[str] | None = None
    retention: timedelta = timedelta(days=400)
    limits: Limits = field(default_factory=Limits)


def check_segment_id(value: str, field: str = "segment_id") -> None:
    if not SEGMENT_ID.fullmatch(value or ""):
        raise InvalidArgument.field(
            field, "use 1 to 63 lower-case letters, digits and dashes, not at the ends"
        )


def check_details(
    display_name: str, description: str, tags: Collection[str], prefix: str = "segment"
) -> None:
    problems: list[FieldViolation] = []
    if len(display_name) > MAX_DISPLAY_NAME:
        problems.append(
            FieldViolation(f"{prefix}.display_name", f"longer than {MAX_DISPLAY_NAME} characters")
        )
    if any(ord(c) < 32 for c in display_name):
        problems.append(FieldViolation(f"{prefix}.display_name", "contains a control character"))
    if len(description) > MAX_DESCRIPTION:
        problems.append(
            FieldViolation(f"{prefix}.description", f"longer than {MAX_DESCRIPTION} characters")
        )
    if len(tags) > MAX_TAGS:
        problems.append(FieldViolation(f"{prefix}.tags", f"at most {MAX_TAGS} tags"))
    for i, tag in enumerate(tags):
        if not TAG.fullmatch(tag):
            problems.append(
                FieldViolation(
                    f"{prefix}.tags[{i}]",
                    "1 to 64 letters, digits, spaces and . _ : / -, "
                    "starting with a letter or digit",
                )
            )
    if problems:
        raise InvalidArgument(violations=problems)


def read_rule(
    text: str | None, proto: rule_pb2.Rule | None, context: RuleContext, prefix: str = "segment"
) -> CheckedRule:
    """Parse and check a rule given as text (preferred when both are given) or as a tree.

    Syntax errors and invalid trees raise InvalidArgument at once; check results are
    returned (errors included) so that `ValidateRule` can list them; `require_valid`
    turns errors into InvalidArgument.
    """
    if text:
        where = f"{prefix}.rule_text" if prefix else "rule_text"
        if len(text) > MAX_RULE_TEXT:
            raise InvalidArgument.field(where, f"longer than {MAX_RULE_TEXT} characters")
        try:
            parsed = parse_located(text)
        except RuleSyntaxError as error:
            raise InvalidArgument.field(
                where, f"{error.line}:{error.column}: {error.message}"
            ) from None
        result = check(
            parsed,
            taxonomy=context.taxonomy,
            traits=context.traits,
            segments=context.segments,
            limits=context.limits,
        )
        return _checked(parsed.rule, result, context, "rule_text", located=True)
    where = f"{prefix}.rule" if prefix else "rule"
    if proto is None or proto.WhichOneof("kind") is None:
        raise InvalidArgument.field(
            f"{prefix}.rule_text" if prefix else "rule_text", "a rule is required (text or tree)"
        )
    try:
        rule = from_proto(proto)
    except InvalidRuleError as error:
        raise InvalidArgument.field(
            f"{where}.{error.field}" if error.field else where, error.message
        ) from None
    result = check(
        rule,
        taxonomy=context.taxonomy,
        traits=context.traits,
        segments=context.segments,
        limits=context.limits,
    )
    return _checked(rule, result, context, "rule", located=False)


def _checked(
    rule: ast.Rule, result: CheckResult, context: RuleContext, source: str, located: bool
) -> CheckedRule:
    extra = list(_service_limits(rule, context.retention))
    errors = (*result.errors, *extra)
    return CheckedRule(rule, to_text(rule), result.warnings, tuple(errors), source, located)


def _service_limits(rule: ast.Rule, retention: timedelta) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for path, node in tree.walk(rule):
        window = getattr(node, "window", None)
        if isinstance(window, ast.LastPeriod) and window.period > retention:
            found.append(
                Diagnostic(
                    Severity.ERROR,
                    "window-too-long",
                    f"a window of {window.period.days} days reaches past the "
                    f"{retention.days} days of events the segment service keeps; "
                    "use ever or between dates",
                    path,
                    "window",
                )
            )
        for name in ("value", "filters", "first", "then"):
            if _has_nul(getattr(node, name, None)):
                found.append(
                    Diagnostic(Severity.ERROR, "nul", "strings may not contain U+0000", path)
                )
                break
    return found


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, ast.PropertyFilter):
        return _has_nul(value.value)
    if isinstance(value, ast.EventSpec):
        return _has_nul(value.filters)
    return False


def require_valid(checked: CheckedRule, prefix: str = "segment") -> None:
    """Raise InvalidArgument listing every error of a checked rule."""
    if not checked.errors:
        return
    violations = [violation(d, checked, prefix) for d in checked.errors]
    raise InvalidArgument(violations=violations)


def violation(diagnostic: Diagnostic, checked: CheckedRule, prefix: str) -> FieldViolation:
    base = f"{prefix}.{checked.source_field}" if prefix else checked.source_field
    if diagnostic.span is not None:
        span = diagnostic.span
        return FieldViolation(base, f"{span.line}:{span.column}: {diagnostic.message}")
    where = path_text(diagnostic.path)
    description = f"{where}: {diagnostic.message}" if where else diagnostic.message
    return FieldViolation(base, description)


def check_no_cycle(
    segment_id: str, rule: ast.Rule, lookup: Callable[[str], ast.Rule | None], field: str
) -> None:
    try:
        check_cycles(segment_id, lookup, rule=rule)
    except SegmentCycleError as error:
        raise InvalidArgument.field(field, str(error)) from None


def path_text(path: tree.Path, rule: ast.Rule | None = None) -> str:
    """A readable path (`[1][0]`) of a node; with the rule, `all[1].any[0]`."""
    if rule is None:
        return "".join(f"[{i}]" for i in path)
    parts: list[str] = []
    node = rule
    for index in path:
        kind = {ast.And: "all", ast.Or: "any", ast.Not: "not"}[type(node)]
        parts.append(kind if isinstance(node, ast.Not) else f"{kind}[{index}]")
        node = tree.children(node)[index]
    return ".".join(parts)
