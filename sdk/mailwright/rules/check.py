"""Checking a rule against the taxonomy, the trait schema and the limits; refusing cycles.

Nothing is silently false: an unknown event, property, trait or segment, a comparison that
cannot hold for the declared type (``sum(revenue)`` of a string, ``before`` on a number), a
condition that can never be true, or a rule beyond the limits is an error. Where the item
might still be valid (the workspace accepts unplanned events, traits are open-ended) it is
a warning. With the spans of a parsed rule, each diagnostic points at its line and column.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal

from mailwright.rules import ast, tree
from mailwright.rules.errors import RuleCheckError, SegmentCycleError, Span
from mailwright.rules.grammar import ParsedRule, parse_located
from mailwright.rules.schema import Limits, Taxonomy, TraitSchema, ValueType


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One finding: ``code`` is stable for programs, ``message`` is for people.

    ``path`` is the node's path in the tree, ``field`` the part of it concerned (as in
    :data:`mailwright.rules.grammar.FieldKey`), ``span`` its place in the text when known.
    """

    severity: Severity
    code: str
    message: str
    path: tree.Path = ()
    field: str = ""
    span: Span | None = None

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return f"{where}{self.severity.value}: {self.message}"


@dataclass(frozen=True)
class CheckResult:
    diagnostics: tuple[Diagnostic, ...]

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return not self.errors

    def raise_for_errors(self) -> None:
        if self.errors:
            raise RuleCheckError(self.errors)


def check(
    rule: ast.Rule | ParsedRule,
    *,
    taxonomy: Taxonomy | None = None,
    traits: TraitSchema | None = None,
    segments: Collection[str] | None = None,
    limits: Limits = Limits(),
) -> CheckResult:
    """Check a tree (or a parsed rule, to get positions). A schema left out is not checked."""
    located = rule if isinstance(rule, ParsedRule) else None
    root = rule.rule if isinstance(rule, ParsedRule) else rule
    checker = _Checker(taxonomy, traits, segments, limits)
    checker.check_limits(root)
    for path, node in tree.walk(root):
        if not isinstance(node, ast.And | ast.Or | ast.Not):
            checker.condition(path, node)
    found = checker.found
    if located is not None:
        found = [
            Diagnostic(
                d.severity, d.code, d.message, d.path, d.field, located.span(d.path, d.field)
            )
            for d in found
        ]
    return CheckResult(tuple(found))


def check_text(
    text: str,
    *,
    taxonomy: Taxonomy | None = None,
    traits: TraitSchema | None = None,
    segments: Collection[str] | None = None,
    limits: Limits = Limits(),
) -> tuple[ast.Rule, CheckResult]:
    """Parse (raising RuleSyntaxError) and check, with positions in the diagnostics."""
    parsed = parse_located(text)
    result = check(parsed, taxonomy=taxonomy, traits=traits, segments=segments, limits=limits)
    return parsed.rule, result


def check_cycles(
    segment_id: str,
    lookup: Callable[[str], ast.Rule | None],
    *,
    rule: ast.Rule | None = None,
) -> None:
    """Raise SegmentCycleError when segment references starting at ``segment_id`` loop.

    ``lookup`` gives the current rule of a segment id (None when there is none); ``rule``,
    when given, is the new rule of ``segment_id`` about to be saved.
    """

    def references(sid: str) -> Iterator[str]:
        r = rule if (sid == segment_id and rule is not None) else lookup(sid)
        return iter(sorted(tree.segment_references(r)) if r is not None else ())

    path, on_path, done = [segment_id], {segment_id}, set()
    stack = [references(segment_id)]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            finished = path.pop()
            on_path.discard(finished)
            done.add(finished)
        elif nxt in on_path:
            raise SegmentCycleError([*path[path.index(nxt) :], nxt])
        elif nxt not in done:
            path.append(nxt)
            on_path.add(nxt)
            stack.append(references(nxt))


# ---------------------------------------------------------------------------------------


def _kind_of(value: ast.Scalar) -> ValueType:
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    return ValueType.STRING if isinstance(value, str) else ValueType.NUMBER


def _article(t: ValueType) -> str:
    return "an" if t.value[0] in "aeiou" else "a"


class _Checker:
    def __init__(
        self,
        taxonomy: Taxonomy | None,
        traits: TraitSchema | None,
        segments: Collection[str] | None,
        limits: Limits,
    ) -> None:
        self.taxonomy, self.traits, self.segments, self.limits = taxonomy, traits, segments, limits
        self.found: list[Diagnostic] = []

    def error(self, code: str, message: str, path: tree.Path = (), field: str = "") -> None:
        self.found.append(Diagnostic(Severity.ERROR, code, message, path, field))

    def warning(self, code: str, message: str, path: tree.Path = (), field: str = "") -> None:
        self.found.append(Diagnostic(Severity.WARNING, code, message, path, field))

    # -- limits -----------------------------------------------------------------------------
    def check_limits(self, rule: ast.Rule) -> None:
        limits = self.limits
        levels = tree.depth(rule)
        if levels > limits.max_depth:
            self.error("too-deep", f"rule is {levels} levels deep; the limit is {limits.max_depth}")
        count = len(tree.conditions(rule))
        if count > limits.max_conditions:
            self.error(
                "too-many-conditions",
                f"rule has {count} conditions; the limit is {limits.max_conditions}",
            )

    # -- conditions -------------------------------------------------------------------------
    def condition(self, path: tree.Path, node: ast.Condition) -> None:
        if isinstance(node, ast.TraitCondition):
            declared = self.trait_type(path, node.trait)
            what = f'trait "{node.trait}"'
            self.comparison(path, "value", what, declared, node.op, node.value)
        elif isinstance(node, ast.TraitDateCondition | ast.TraitWithinLast):
            declared = self.trait_type(path, node.trait)
            if declared is not None and declared is not ValueType.DATE:
                self.error(
                    "type-mismatch",
                    f'trait "{node.trait}" is {_article(declared)} {declared.value}; '
                    "before, after and within last compare dates",
                    path,
                    "trait",
                )
        elif isinstance(node, ast.EventCount):
            self.event(path, "", node.event, node.filters)
            self.count(path, node)
        elif isinstance(node, ast.EventAggregate):
            props = self.event(path, "", node.event, node.filters)
            declared = self.property_type(path, "property", node.event, props, node.property)
            if declared is not None and declared is not ValueType.NUMBER:
                self.error(
                    "type-mismatch",
                    f"{node.aggregate.value}({node.property}) needs a number, but property "
                    f'"{node.property}" of "{node.event}" is {_article(declared)} {declared.value}',
                    path,
                    "property",
                )
        elif isinstance(node, ast.DidNotPerform):
            self.event(path, "", node.event, node.filters)
        elif isinstance(node, ast.Sequence):
            self.sequence(path, node)
        elif isinstance(node, ast.LastEmailsEngagement):
            if node.min_count > node.last:
                self.error(
                    "never-true",
                    f"at least {node.min_count} of the last {node.last} emails can never be true",
                    path,
                )
        elif isinstance(node, ast.SegmentMembership) and not self.known_segment(node.segment):
            self.error("unknown-segment", f'unknown segment "{node.segment}"', path, "segment")

    def known_segment(self, segment: str) -> bool:
        return self.segments is None or segment in self.segments

    def count(self, path: tree.Path, node: ast.EventCount) -> None:
        if node.count == 0 and node.op is ast.Operator.LT:
            self.error("never-true", "a count is never below 0", path)
        if node.count == 0 and node.op is ast.Operator.GE:
            self.warning("always-true", "a count is always at least 0", path)

    def sequence(self, path: tree.Path, node: ast.Sequence) -> None:
        first = self.event(path, "", node.first.event, node.first.filters)
        then = self.event(path, "then.", node.then.event, node.then.filters)
        if node.per is not None:
            types = [
                self.property_type(path, "per", node.first.event, first, node.per),
                self.property_type(path, "per", node.then.event, then, node.per),
            ]
            for declared in types:
                if declared in (ValueType.DATE, ValueType.LIST, ValueType.OBJECT):
                    self.error(
                        "type-mismatch",
                        f"per {node.per}: events pair up on a string, number or boolean, "
                        f"not {_article(declared)} {declared.value}",
                        path,
                        "per",
                    )
                    break
            else:
                if None not in types and types[0] != types[1]:
                    self.error(
                        "type-mismatch",
                        f'per {node.per}: "{node.first.event}" and "{node.then.event}" give it '
                        "different types, so no pair can ever match",
                        path,
                        "per",
                    )
        window = node.window
        if node.negated and isinstance(window, ast.LastPeriod) and window.period <= node.within:
            self.error(
                "never-true",
                "never true: the first step must lie in the window and the wait must be over, so "
                "the window must be longer than the wait (e.g. in last 14 days ... within 7 days)",
                path,
            )

    # -- events and properties --------------------------------------------------------------
    def event(
        self, path: tree.Path, prefix: str, event: str, filters: tuple[ast.PropertyFilter, ...]
    ) -> dict[str, ValueType] | None:
        """Check an event step; returns its declared properties (None when unknown)."""
        if len(filters) > self.limits.max_filters:
            self.error(
                "too-many-filters",
                f'"{event}" has {len(filters)} filters; the limit is {self.limits.max_filters}',
                path,
                f"{prefix}event",
            )
        props: dict[str, ValueType] | None = None
        if self.taxonomy is not None:
            if event in self.taxonomy.events:
                props = dict(self.taxonomy.events[event])
            elif self.taxonomy.allow_unplanned:
                self.warning(
                    "unknown-event",
                    f'event "{event}" is not in the taxonomy; '
                    "it can still arrive as an unplanned event",
                    path,
                    f"{prefix}event",
                )
            else:
                self.error("unknown-event", f'unknown event "{event}"', path, f"{prefix}event")
        for i, f in enumerate(filters):
            field = f"{prefix}filters[{i}]"
            declared = self.property_type(path, f"{field}.property", event, props, f.property)
            what = f'property "{f.property}" of "{event}"'
            self.comparison(path, field, what, declared, f.op, f.value)
        return props

    def property_type(
        self, path: tree.Path, field: str, event: str, props: dict[str, ValueType] | None, name: str
    ) -> ValueType | None:
        if props is None:
            return None
        if name in props:
            return props[name]
        assert self.taxonomy is not None
        message = f'"{event}" has no property "{name}" in the taxonomy'
        if self.taxonomy.allow_unplanned:
            self.warning("unknown-property", message, path, field)
        else:
            self.error("unknown-property", message, path, field)
        return None

    def trait_type(self, path: tree.Path, trait: str) -> ValueType | None:
        if self.traits is None:
            return None
        if trait in self.traits.traits:
            return self.traits.traits[trait]
        if self.traits.allow_undeclared:
            self.warning("unknown-trait", f'trait "{trait}" is not declared', path, "trait")
        else:
            self.error("unknown-trait", f'unknown trait "{trait}"', path, "trait")
        return None

    # -- comparisons ------------------------------------------------------------------------
    def comparison(
        self,
        path: tree.Path,
        field: str,
        what: str,
        declared: ValueType | None,
        op: ast.Operator,
        value: ast.Scalar | tuple[ast.Scalar, ...] | None,
    ) -> None:
        if isinstance(value, tuple) and len(value) > self.limits.max_list_values:
            self.error(
                "too-many-values",
                f"the list has {len(value)} values; the limit is {self.limits.max_list_values}",
                path,
                field,
            )
        if declared is None or op in (ast.Operator.EXISTS, ast.Operator.NOT_EXISTS):
            return
        problem = _comparison_problem(what, declared, op, value)
        if problem:
            self.error("type-mismatch", problem, path, field)


def _comparison_problem(
    what: str,
    declared: ValueType,
    op: ast.Operator,
    value: ast.Scalar | tuple[ast.Scalar, ...] | None,
) -> str:
    """Why ``op value`` cannot apply to a value of the declared type, or ""."""
    is_a = f"{what} is {_article(declared)} {declared.value}"
    if declared is ValueType.OBJECT:
        return f"{is_a}; only exists and not exists apply"
    if declared is ValueType.LIST:
        return "" if op is ast.Operator.CONTAINS else f"{is_a}; use contains, exists or not exists"
    if declared is ValueType.DATE:
        return f"{is_a}; compare dates with before, after or within last (traits) or exists"
    if op in ast.ORDERINGS and declared is not ValueType.NUMBER:
        return f"{is_a}; {op.value} compares numbers"
    if op in (ast.Operator.CONTAINS, ast.Operator.STARTS_WITH) and declared is not ValueType.STRING:
        return f"{is_a}; {op.value} applies to strings (and contains to lists)"
    literals = value if isinstance(value, tuple) else (value,) if value is not None else ()
    for literal in literals:
        kind = _kind_of(literal)
        if kind is not declared:
            shown = f'"{literal}"' if isinstance(literal, str) else str(literal).lower()
            if isinstance(literal, Decimal):
                shown = str(literal)
            return f"{is_a} but {shown} is {_article(kind)} {kind.value}"
    return ""
