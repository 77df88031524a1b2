"""Compile-time checks of one Jinja part: syntax with positions, sandbox rules, variables.

Jinja reports errors with a line only; `check_part` finds the column from what went
wrong (the offending character, tag, filter or token) so an author is pointed at the
spot. The sandbox's rules are checked here too, on the syntax tree, so a template that
reaches for internals or includes files fails at publish rather than at send.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from mailwright_render.engine import GLOBAL_NAMES, RESERVED_PREFIX
from mailwright_render.jinjascan import scan, unclosed_block
from mailwright_render.positions import LineIndex
from mailwright_render.sandbox import MailwrightSandbox

_UNEXPECTED_CHAR = re.compile(r"unexpected char .* at (\d+)")
_UNEXPECTED = re.compile(r"unexpected '(.+)'$")
_NO_FILTER = re.compile(r"No filter named '([^']+)'")
_NO_TEST = re.compile(r"No test named '([^']+)'")
_UNKNOWN_TAG = re.compile(r"Encountered unknown tag '([^']+)'")
_RESERVED = re.compile(rf"\b{RESERVED_PREFIX}\w*")
_DENIED = frozenset({"mro", "format", "format_map", "func_globals", "gi_frame", "f_globals"})


@dataclass(frozen=True)
class Finding:
    """A problem in a translated part, at an offset of that part."""

    code: str
    message: str
    offset: int


@dataclass(frozen=True)
class CheckedPart:
    ast: nodes.Template | None
    findings: tuple[Finding, ...]


def check_part(env: MailwrightSandbox, source: str, *, authored: bool = True) -> CheckedPart:
    """Parse and compile `source`; report syntax errors and sandbox violations."""
    lines = LineIndex(source)
    parser = Parser(env, source)
    try:
        ast = parser.parse()
    except TemplateSyntaxError as error:
        offset = _syntax_offset(error, source, lines, parser)
        return CheckedPart(None, (Finding("syntax", error.message or str(error), offset),))
    findings = list(sandbox_findings(ast, source, lines, authored=authored))
    if not findings:
        try:
            env.compile(ast, raw=True)
        except TemplateSyntaxError as error:
            offset = _syntax_offset(error, source, lines, None)
            code = "unknown-filter" if _NO_FILTER.search(str(error)) else "syntax"
            findings.append(Finding(code, error.message or str(error), offset))
    return CheckedPart(ast, tuple(findings))


def _syntax_offset(
    error: TemplateSyntaxError, source: str, lines: LineIndex, parser: Parser | None
) -> int:
    message = error.message or ""
    char = _UNEXPECTED_CHAR.search(message)
    if char is not None:
        return int(char.group(1))
    line = error.lineno or 1
    start, end = lines.offset(line), lines.offset(line + 1)
    if end <= start:
        end = len(source)
    for pattern, template in (
        (_NO_FILTER, r"\|\s*{}\b"),
        (_NO_TEST, r"\bis\s+(?:not\s+)?{}\b"),
        (_UNKNOWN_TAG, r"\{{%[-+]?\s*{}\b"),
    ):
        named = pattern.search(message)
        if named is not None:
            found = re.compile(template.format(re.escape(named.group(1)))).search(source, start)
            if found is not None:
                return found.start()
    if "end of template" in message:
        opener = unclosed_block(scan(source))
        if opener is not None:
            return opener.start
        return len(source)
    if parser is not None:
        token = parser.stream.current
        if token.type != "eof":
            found_at = source.find(str(token.value), start, max(end, start + 1))
            if found_at != -1:
                stray = _UNEXPECTED.match(message)
                if stray is not None:
                    # The lexer failed after this token, at the stray character.
                    after = source.find(stray.group(1), found_at + len(str(token.value)), end)
                    return after if after != -1 else found_at
                return found_at
    return start


def sandbox_findings(
    ast: nodes.Template, source: str, lines: LineIndex, *, authored: bool
) -> Iterator[Finding]:
    """Violations of the sandbox's rules that can be seen before anything runs."""

    def at(node: nodes.Node, needle: str) -> int:
        start = lines.offset(node.lineno or 1)
        found = source.find(needle, start)
        return found if found != -1 else start

    includes = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
    for statement in ast.find_all(includes):
        keyword = type(statement).__name__.lower().replace("fromimport", "from")
        yield Finding(
            "unsupported-tag",
            f"{keyword} is not supported; use content blocks to share content",
            at(statement, keyword),
        )
    for attribute in ast.find_all(nodes.Getattr):
        if attribute.attr.startswith("_") or attribute.attr in _DENIED:
            yield Finding(
                "unsafe-attribute",
                f"attribute {attribute.attr!r} is not allowed",
                at(attribute, attribute.attr),
            )
    for item in ast.find_all(nodes.Getitem):
        key = item.arg
        if isinstance(key, nodes.Const) and isinstance(key.value, str) and key.value[:1] == "_":
            yield Finding(
                "unsafe-attribute", f"item {key.value!r} is not allowed", at(item, key.value)
            )
    for modulo in ast.find_all(nodes.Mod):
        if isinstance(modulo.left, nodes.Const) and isinstance(modulo.left.value, str):
            yield Finding(
                "unsafe-format", "printf-style '%' formatting is not allowed", at(modulo, "%")
            )
    bound = _locally_bound(ast)
    for call in ast.find_all(nodes.Call):
        callee = call.node
        if (
            isinstance(callee, nodes.Name)
            and callee.name not in GLOBAL_NAMES
            and callee.name not in bound
            and callee.name != "super"
        ):
            yield Finding(
                "unknown-function", f"there is no function {callee.name!r}", at(call, callee.name)
            )
    if authored:
        yield from reserved_names(source)


def reserved_names(source: str) -> Iterator[Finding]:
    """Platform names (`__mw…`) written by an author inside Jinja constructs."""
    for construct in scan(source):
        if construct.kind in ("comment", "raw"):
            continue
        for match in _RESERVED.finditer(source, construct.start, construct.end):
            yield Finding("reserved-name", f"{match.group(0)!r} is reserved", match.start())


# --- variables, for validation ---------------------------------------------------------


@dataclass(frozen=True)
class VariableUse:
    """A context variable read by a part: a trait, or a HubSpot property of `contact`."""

    name: str
    offset: int
    guarded: bool
    hubspot_property: str | None = None


def variable_uses(
    ast: nodes.Template, source: str, declared: Callable[[str], bool]
) -> list[VariableUse]:
    """Reads of context variables, and whether each has a fallback or is tested first.

    `declared(name)` says whether a name is provided by the platform (not a trait).
    A read is guarded when it sits under a `default` filter, an `is defined` test, or
    an `{% if %}` whose test mentions the same name.
    """
    lines = LineIndex(source)
    local = _locally_bound(ast)
    uses: list[VariableUse] = []

    def offset_of(node: nodes.Node, needle: str) -> int:
        start = lines.offset(node.lineno or 1)
        found = source.find(needle, start)
        return found if found != -1 else start

    def visit(node: nodes.Node, guards: frozenset[str], guarded: bool) -> None:
        if isinstance(node, nodes.If):
            tested = frozenset(n.name for n in node.test.find_all(nodes.Name))
            visit(node.test, guards, True)
            for child in node.body:
                visit(child, guards | tested, guarded)
            for child in [*node.elif_, *node.else_]:
                visit(child, guards, guarded)
            return
        if isinstance(node, nodes.Filter) and node.name in ("default", "d"):
            guarded = True
        if isinstance(node, nodes.Test) and node.name in ("defined", "undefined", "none"):
            guarded = True
        if isinstance(node, nodes.CondExpr):
            tested = frozenset(n.name for n in node.test.find_all(nodes.Name))
            visit(node.test, guards, True)
            visit(node.expr1, guards | tested, guarded)
            if node.expr2 is not None:
                visit(node.expr2, guards, guarded)
            return
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "contact"
            and node.node.ctx == "load"
        ):
            uses.append(VariableUse("contact", offset_of(node, node.attr), guarded, node.attr))
            return
        if isinstance(node, nodes.Name) and node.ctx == "load":
            name = node.name
            if name not in local and not declared(name):
                safe = guarded or name in guards
                uses.append(VariableUse(name, offset_of(node, name), safe))
        for child in node.iter_child_nodes():
            visit(child, guards, guarded)

    visit(ast, frozenset(), False)
    return uses


def _locally_bound(ast: nodes.Template) -> frozenset[str]:
    """Names a template binds itself: loop targets, set, macro arguments, with, imports."""
    bound: set[str] = set()
    for node in ast.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.With)):
        targets: list[nodes.Expr] = (
            list(node.targets) if isinstance(node, nodes.With) else [getattr(node, "target")]  # noqa: B009
        )
        for target in targets:
            bound.update(n.name for n in target.find_all(nodes.Name))
            if isinstance(target, nodes.Name):
                bound.add(target.name)
    for macro in ast.find_all(nodes.Macro):
        bound.update(argument.name for argument in macro.args)
        bound.add(macro.name)
    for call in ast.find_all(nodes.CallBlock):
        bound.update(argument.name for argument in call.args)
    bound.update({"loop", "caller", "varargs", "kwargs", "self"})
    return frozenset(bound)
