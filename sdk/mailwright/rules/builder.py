"""Turning the parser's tree into the rule tree, keeping where each part sat in the text.

Semantic slips the grammar cannot see (a bad date, an unknown escape, a sequence whose first
step has ``count = 3``) become :class:`~mailwright.rules.errors.RuleSyntaxError` at their
position, like syntax errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from lark import Token, Transformer_NonRecursive, v_args
from lark.tree import Meta

from mailwright.rules import ast, tree
from mailwright.rules.errors import InvalidRuleError, RuleSyntaxError, Span
from mailwright.rules.values import check_name

FieldKey = tuple[tree.Path, str]
"""A node's path and one of its fields ("" for the whole node, else e.g. "event",
"trait", "property", "filters[0]", "filters[0].property", "then.event", "per", "segment")."""


@dataclass
class Located:
    node: ast.Rule
    span: Span
    children: list[Located] = field(default_factory=list)
    fields: dict[str, Span] = field(default_factory=dict)
    depth: int = 1


_Test = tuple[Any, Any, Span]
"""An operator (or a date test's name), its literal, and where the test sits."""


@dataclass
class _Name:
    value: str
    span: Span


@dataclass
class _Filters:
    items: list[ast.PropertyFilter]
    spans: dict[str, Span]


@dataclass
class _Then:
    negated: bool
    spec: ast.EventSpec
    within: timedelta
    per: _Name | None
    spans: dict[str, Span]


def _span(item: Meta | Token) -> Span:
    return Span(item.line, item.column, item.end_line, item.end_column)  # type: ignore[arg-type]


def _error(at: Meta | Token | Span, message: str) -> NoReturn:
    raise RuleSyntaxError(message, at.line, at.column)  # type: ignore[arg-type]


def _node(at: Meta | Span, ctor: Any, **kwargs: Any) -> Any:
    try:
        return ctor(**kwargs)
    except InvalidRuleError as exc:
        _error(at, exc.message)


def _named(token: Token, what: str) -> str:
    """The value of a quoted event name or segment id, checked where it is written."""
    value = unquote(token)
    try:
        check_name(what, value, what)
    except InvalidRuleError as exc:
        _error(token, exc.message)
    return value


_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "`": "`", "n": "\n", "t": "\t", "r": "\r"}


def unquote(token: Token) -> str:
    """The value of a double-quoted string or back-quoted name token."""
    body, out, i = token[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and len(body) >= i + 6 and _is_hex(body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        else:
            column = token.column + 1 + i  # type: ignore[operator]
            raise RuleSyntaxError(
                f'unknown escape "\\{nxt}"; use \\", \\\\, \\n, \\t, \\r or \\uXXXX',
                token.line,  # type: ignore[arg-type]
                column,
            )
    return "".join(out)


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s)


def _number(token: Token) -> Decimal:
    try:
        value = Decimal(str(token))
    except InvalidOperation:
        _error(token, f'"{token}" is not a number')
    try:
        ast.check_scalar("value", value)
    except InvalidRuleError as exc:
        _error(token, exc.message)
    return value


def _date(token: Token) -> datetime:
    text = str(token).upper()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        _error(token, f'"{token}" is not a valid date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ')
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_UNITS = {
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


def _int(token: Token) -> int:
    if len(token) > 9:
        _error(token, f'"{token}" is too large')
    return int(token)


@v_args(meta=True)
class Builder(Transformer_NonRecursive):  # type: ignore[type-arg]
    # -- structure ------------------------------------------------------------------------
    def start(self, meta: Meta, items: list[Located]) -> Located:
        return items[0]

    def _group(self, meta: Meta, items: list[Located], ctor: Any) -> Located:
        depth = 1 + max(i.depth for i in items)
        if depth > ast.MAX_NESTING:
            _error(meta, f"rule is nested deeper than {ast.MAX_NESTING} levels")
        node = ctor(tuple(i.node for i in items))
        return Located(node, _span(meta), items, depth=depth)

    def any_of(self, meta: Meta, items: list[Located]) -> Located:
        return self._group(meta, items, ast.Or)

    def all_of(self, meta: Meta, items: list[Located]) -> Located:
        return self._group(meta, items, ast.And)

    def negation(self, meta: Meta, items: list[Located]) -> Located:
        (child,) = items
        if child.depth + 1 > ast.MAX_NESTING:
            _error(meta, f"rule is nested deeper than {ast.MAX_NESTING} levels")
        return Located(ast.Not(child.node), _span(meta), [child], depth=child.depth + 1)

    # -- values ---------------------------------------------------------------------------
    def name(self, meta: Meta, items: list[Token]) -> _Name:
        (token,) = items
        value = unquote(token) if token.type == "QUOTED_NAME" else str(token)
        try:
            check_name("name", value)
        except InvalidRuleError as exc:
            _error(token, exc.message)
        return _Name(value, _span(token))

    def scalar(self, meta: Meta, items: list[Token]) -> ast.Scalar:
        (token,) = items
        if token.type == "STRING":
            return unquote(token)
        if token.type == "NUMBER":
            return _number(token)
        return token.type == "TRUE"

    def values(self, meta: Meta, items: list[ast.Scalar]) -> tuple[ast.Scalar, ...]:
        return tuple(items)

    def duration(self, meta: Meta, items: list[Token]) -> timedelta:
        if len(items) == 1:
            amount, unit = items[0][:-1], items[0][-1]
        else:
            amount, unit = items[0], items[1]
        if len(amount) > 9:
            _error(meta, "duration is too long")
        value = int(amount) * _UNITS[unit[0].lower()]
        try:
            ast.check_duration("duration", value)
        except InvalidRuleError as exc:
            _error(meta, f"duration {exc.message}")
        return value

    # -- comparisons ----------------------------------------------------------------------
    def test_compare(self, meta: Meta, items: list[Any]) -> _Test:
        symbol = "=" if items[0] == "==" else str(items[0])
        return ast.Operator(symbol), items[1], _span(meta)

    def test_in(self, meta: Meta, items: list[Any]) -> _Test:
        return ast.Operator.IN, items[0], _span(meta)

    def test_not_in(self, meta: Meta, items: list[Any]) -> _Test:
        return ast.Operator.NOT_IN, items[1], _span(meta)

    def test_contains(self, meta: Meta, items: list[Any]) -> _Test:
        return ast.Operator.CONTAINS, items[0], _span(meta)

    def test_starts_with(self, meta: Meta, items: list[Token]) -> _Test:
        return ast.Operator.STARTS_WITH, unquote(items[0]), _span(meta)

    def test_exists(self, meta: Meta, items: list[Any]) -> _Test:
        return ast.Operator.EXISTS, None, _span(meta)

    def test_not_exists(self, meta: Meta, items: list[Any]) -> _Test:
        return ast.Operator.NOT_EXISTS, None, _span(meta)

    def value_test(self, meta: Meta, items: list[Any]) -> Any:
        return items[0]

    def trait_test(self, meta: Meta, items: list[Any]) -> Any:
        return items[0]

    def test_before(self, meta: Meta, items: list[Token]) -> _Test:
        return "before", _date(items[0]), _span(meta)

    def test_after(self, meta: Meta, items: list[Token]) -> _Test:
        return "after", _date(items[0]), _span(meta)

    def test_within(self, meta: Meta, items: list[timedelta]) -> _Test:
        return "within", items[0], _span(meta)

    def test_not_within(self, meta: Meta, items: list[timedelta]) -> _Test:
        return "not within", items[0], _span(meta)

    # -- conditions -----------------------------------------------------------------------
    def trait_condition(self, meta: Meta, items: list[Any]) -> Located:
        name, (op, value, where) = items
        if op in ("before", "after"):
            node = _node(
                meta, ast.TraitDateCondition, trait=name.value, op=ast.DateOperator(op), date=value
            )
        elif op in ("within", "not within"):
            node = _node(
                meta, ast.TraitWithinLast, trait=name.value, period=value, negated=op != "within"
            )
        else:
            node = _node(where, ast.TraitCondition, trait=name.value, op=op, value=value)
        return Located(node, _span(meta), fields={"trait": name.span, "value": where})

    def filter(self, meta: Meta, items: list[Any]) -> tuple[ast.PropertyFilter, Span, Span]:
        name, (op, value, _) = items
        node = _node(meta, ast.PropertyFilter, property=name.value, op=op, value=value)
        return node, _span(meta), name.span

    def filter_list(self, meta: Meta, items: list[Any]) -> tuple[ast.PropertyFilter, ...]:
        return tuple(f for f, _, _ in items)

    def where(self, meta: Meta, items: list[Any]) -> _Filters:
        spans: dict[str, Span] = {}
        for i, (_, whole, prop) in enumerate(items):
            spans[f"filters[{i}]"], spans[f"filters[{i}].property"] = whole, prop
        return _Filters([f for f, _, _ in items], spans)

    def count(self, meta: Meta, items: list[Token]) -> tuple[ast.Operator, int, Meta]:
        symbol = "=" if items[0] == "==" else str(items[0])
        return ast.Operator(symbol), _int(items[1]), meta

    def last_window(self, meta: Meta, items: list[timedelta]) -> ast.Window:
        return ast.LastPeriod(items[0])

    def between_window(self, meta: Meta, items: list[Token]) -> ast.Window:
        start, end = _date(items[0]), _date(items[1])
        if not start < end:
            _error(items[1], "the end of a date range must be after its start")
        return ast.Between(start, end)

    def ever_window(self, meta: Meta, items: list[Any]) -> ast.Window:
        return ast.Ever()

    def per(self, meta: Meta, items: list[_Name]) -> _Name:
        return items[0]

    def then(self, meta: Meta, items: list[Any]) -> _Then:
        no, event, where, within, per = items
        spans = {"then.event": _span(event)}
        spans.update({f"then.{k}": v for k, v in (where.spans if where else {}).items()})
        spec = _node(
            meta,
            ast.EventSpec,
            event=_named(event, "event name"),
            filters=tuple(where.items) if where else (),
        )
        return _Then(no is not None, spec, within, per, spans)

    def event_condition(self, meta: Meta, items: list[Any]) -> Located:
        event, where, count, window, then = items
        fields = {"event": _span(event), **(where.spans if where else {})}
        filters = tuple(where.items) if where else ()
        window = window or ast.Ever()
        if then is None:
            op, n = (count[0], count[1]) if count else (ast.Operator.GE, 1)
            node = _node(
                meta,
                ast.EventCount,
                event=_named(event, "event name"),
                op=op,
                count=n,
                window=window,
                filters=filters,
            )
            return Located(node, _span(meta), fields=fields)
        min_count = 1
        if count is not None:
            op, n, at = count
            if op not in (ast.Operator.GT, ast.Operator.GE) or (op is ast.Operator.GE and n < 1):
                _error(
                    at,
                    "the first step of a sequence takes 'count > N' or 'count >= N' (N at least 1)",
                )
            min_count = n + 1 if op is ast.Operator.GT else n
        fields.update(then.spans)
        if then.per is not None:
            fields["per"] = then.per.span
        node = _node(
            meta, ast.Sequence,
            first=_node(meta, ast.EventSpec, event=_named(event, "event name"), filters=filters),
            then=then.spec, within=then.within, negated=then.negated, min_count=min_count,
            window=window, per=then.per.value if then.per else None,
        )  # fmt: skip
        return Located(node, _span(meta), fields=fields)

    def aggregate_condition(self, meta: Meta, items: list[Any]) -> Located:
        agg, prop, event, where, window, cmp, number = items
        kind = "avg" if agg.lower() == "average" else agg.lower()
        node = _node(
            meta, ast.EventAggregate, aggregate=ast.Aggregate(kind), property=prop.value,
            event=_named(event, "event name"), op=ast.Operator("=" if cmp == "==" else str(cmp)),
            value=_number(number), window=window or ast.Ever(),
            filters=tuple(where.items) if where else (),
        )  # fmt: skip
        fields = {"event": _span(event), "property": prop.span, **(where.spans if where else {})}
        return Located(node, _span(meta), fields=fields)

    def did_not_perform(self, meta: Meta, items: list[Any]) -> Located:
        event, where, window = items
        node = _node(
            meta, ast.DidNotPerform, event=_named(event, "event name"), window=window or ast.Ever(),
            filters=tuple(where.items) if where else (),
        )  # fmt: skip
        fields = {"event": _span(event), **(where.spans if where else {})}
        return Located(node, _span(meta), fields=fields)

    def opened(self, meta: Meta, items: list[Any]) -> ast.EmailAction:
        return ast.EmailAction.OPENED

    def clicked(self, meta: Meta, items: list[Any]) -> ast.EmailAction:
        return ast.EmailAction.CLICKED

    def opened_or_clicked(self, meta: Meta, items: list[Any]) -> ast.EmailAction:
        return ast.EmailAction.OPENED_OR_CLICKED

    def any_of_last(self, meta: Meta, items: list[Token]) -> tuple[str, int, int]:
        return "last", 1, _int(items[0])

    def some_of_last(self, meta: Meta, items: list[Token]) -> tuple[str, int, int]:
        return "last", _int(items[0]), _int(items[1])

    def any_email(self, meta: Meta, items: list[Any]) -> tuple[str, int, Any]:
        return "window", 1, items[-1] if items else None

    def some_emails(self, meta: Meta, items: list[Any]) -> tuple[str, int, Any]:
        return "window", _int(items[0]), items[1]

    def engagement(self, meta: Meta, items: list[Any]) -> Located:
        action, (kind, at_least, scope) = items
        if kind == "last":
            node = _node(
                meta, ast.LastEmailsEngagement, action=action, last=scope, min_count=at_least
            )
        else:
            node = _node(
                meta,
                ast.WindowEngagement,
                action=action,
                window=scope or ast.Ever(),
                min_count=at_least,
            )
        return Located(node, _span(meta))

    def in_segment(self, meta: Meta, items: list[Token]) -> Located:
        node = _node(meta, ast.SegmentMembership, segment=_named(items[-1], "segment id"))
        return Located(node, _span(meta), fields={"segment": _span(items[-1])})

    def not_in_segment(self, meta: Meta, items: list[Token]) -> Located:
        node = _node(
            meta, ast.SegmentMembership, segment=_named(items[-1], "segment id"), negated=True
        )
        return Located(node, _span(meta), fields={"segment": _span(items[-1])})


def spans_of(root: Located) -> dict[FieldKey, Span]:
    out: dict[FieldKey, Span] = {}
    stack: list[tuple[tree.Path, Located]] = [((), root)]
    while stack:
        path, item = stack.pop()
        out[(path, "")] = item.span
        for name, span in item.fields.items():
            out[(path, name)] = span
        stack.extend(((*path, i), child) for i, child in enumerate(item.children))
    return out
