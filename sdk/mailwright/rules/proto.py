"""Conversion between the rule tree (mailwright.rules.ast) and its protobuf form.

``from_proto`` is where rules arriving over gRPC are validated: every problem raises
:class:`~mailwright.rules.errors.InvalidRuleError` whose ``field`` is the dotted path of the
offending protobuf field (``"conjunction.conditions[1].event_count.window.last"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from mailwright.rules import ast
from mailwright.rules.errors import InvalidRuleError
from mailwright.segment.v1 import rule_pb2 as pb

# The tables hold protobuf enum numbers; typed Any so that both stub flavours (protoc's
# --pyi_out and mypy-protobuf's, which type enum values differently) accept them.
_OPERATORS: dict[ast.Operator, Any] = {
    ast.Operator.EQ: pb.OPERATOR_EQUAL,
    ast.Operator.NE: pb.OPERATOR_NOT_EQUAL,
    ast.Operator.LT: pb.OPERATOR_LESS,
    ast.Operator.LE: pb.OPERATOR_LESS_OR_EQUAL,
    ast.Operator.GT: pb.OPERATOR_GREATER,
    ast.Operator.GE: pb.OPERATOR_GREATER_OR_EQUAL,
    ast.Operator.IN: pb.OPERATOR_IN,
    ast.Operator.NOT_IN: pb.OPERATOR_NOT_IN,
    ast.Operator.CONTAINS: pb.OPERATOR_CONTAINS,
    ast.Operator.STARTS_WITH: pb.OPERATOR_STARTS_WITH,
    ast.Operator.EXISTS: pb.OPERATOR_EXISTS,
    ast.Operator.NOT_EXISTS: pb.OPERATOR_NOT_EXISTS,
}
_DATE_OPERATORS: dict[ast.DateOperator, Any] = {
    ast.DateOperator.BEFORE: pb.DATE_OPERATOR_BEFORE,
    ast.DateOperator.AFTER: pb.DATE_OPERATOR_AFTER,
}
_AGGREGATES: dict[ast.Aggregate, Any] = {
    ast.Aggregate.SUM: pb.AGGREGATE_SUM,
    ast.Aggregate.AVERAGE: pb.AGGREGATE_AVERAGE,
    ast.Aggregate.MIN: pb.AGGREGATE_MIN,
    ast.Aggregate.MAX: pb.AGGREGATE_MAX,
}
_ACTIONS: dict[ast.EmailAction, Any] = {
    ast.EmailAction.OPENED: pb.EMAIL_ACTION_OPENED,
    ast.EmailAction.CLICKED: pb.EMAIL_ACTION_CLICKED,
    ast.EmailAction.OPENED_OR_CLICKED: pb.EMAIL_ACTION_OPENED_OR_CLICKED,
}
# Python field names that the protobuf spells differently.
_PROTO_FIELD_NAMES = {"op": "operator"}

E = TypeVar("E")


# ---------------------------------------------------------------------------------------
# Tree -> protobuf


def to_proto(rule: ast.Rule) -> pb.Rule:
    """The protobuf form of a tree."""
    msg = pb.Rule()
    if isinstance(rule, ast.And):
        msg.conjunction.conditions.extend(to_proto(c) for c in rule.conditions)
    elif isinstance(rule, ast.Or):
        msg.disjunction.conditions.extend(to_proto(c) for c in rule.conditions)
    elif isinstance(rule, ast.Not):
        msg.negation.condition.CopyFrom(to_proto(rule.condition))
    elif isinstance(rule, ast.TraitCondition):
        msg.trait.trait = rule.trait
        msg.trait.operator = _OPERATORS[rule.op]
        _set_value(msg.trait, rule.value)
    elif isinstance(rule, ast.TraitDateCondition):
        msg.trait_date.trait = rule.trait
        msg.trait_date.operator = _DATE_OPERATORS[rule.op]
        msg.trait_date.date.CopyFrom(_timestamp(rule.date))
    elif isinstance(rule, ast.TraitWithinLast):
        msg.trait_within_last.trait = rule.trait
        msg.trait_within_last.period.CopyFrom(_duration(rule.period))
        msg.trait_within_last.negated = rule.negated
    elif isinstance(rule, ast.EventCount):
        m = msg.event_count
        m.event = rule.event
        m.filters.extend(_filter(f) for f in rule.filters)
        m.operator = _OPERATORS[rule.op]
        m.count = rule.count
        m.window.CopyFrom(_window(rule.window))
    elif isinstance(rule, ast.EventAggregate):
        a = msg.event_aggregate
        a.aggregate = _AGGREGATES[rule.aggregate]
        a.property = rule.property
        a.event = rule.event
        a.filters.extend(_filter(f) for f in rule.filters)
        a.window.CopyFrom(_window(rule.window))
        a.operator = _OPERATORS[rule.op]
        a.value.CopyFrom(_value(rule.value))
    elif isinstance(rule, ast.DidNotPerform):
        msg.did_not_perform.event = rule.event
        msg.did_not_perform.filters.extend(_filter(f) for f in rule.filters)
        msg.did_not_perform.window.CopyFrom(_window(rule.window))
    elif isinstance(rule, ast.Sequence):
        s = msg.sequence
        s.first.CopyFrom(_spec(rule.first))
        s.min_count = rule.min_count
        s.window.CopyFrom(_window(rule.window))
        s.then.CopyFrom(_spec(rule.then))
        s.within.CopyFrom(_duration(rule.within))
        s.negated = rule.negated
        s.per = rule.per or ""
    elif isinstance(rule, ast.LastEmailsEngagement):
        msg.last_emails_engagement.action = _ACTIONS[rule.action]
        msg.last_emails_engagement.last = rule.last
        msg.last_emails_engagement.min_count = rule.min_count
    elif isinstance(rule, ast.WindowEngagement):
        msg.window_engagement.action = _ACTIONS[rule.action]
        msg.window_engagement.window.CopyFrom(_window(rule.window))
        msg.window_engagement.min_count = rule.min_count
    else:
        msg.segment_membership.segment = rule.segment
        msg.segment_membership.negated = rule.negated
    return msg


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _duration(value: timedelta) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(value)
    return d


def _value(value: ast.Scalar | tuple[ast.Scalar, ...]) -> struct_pb2.Value:
    v = struct_pb2.Value()
    if isinstance(value, tuple):
        v.list_value.values.extend(_value(item) for item in value)
    elif isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, str):
        v.string_value = value
    else:
        v.number_value = float(value)
    return v


def _set_value(msg: Any, value: ast.Scalar | tuple[ast.Scalar, ...] | None) -> None:
    if value is not None:
        msg.value.CopyFrom(_value(value))


def _filter(f: ast.PropertyFilter) -> pb.PropertyFilter:
    m = pb.PropertyFilter(property=f.property, operator=_OPERATORS[f.op])
    _set_value(m, f.value)
    return m


def _spec(spec: ast.EventSpec) -> pb.EventSpec:
    return pb.EventSpec(event=spec.event, filters=[_filter(f) for f in spec.filters])


def _window(window: ast.Window) -> pb.Window:
    if isinstance(window, ast.LastPeriod):
        return pb.Window(last=_duration(window.period))
    if isinstance(window, ast.Between):
        return pb.Window(
            between=pb.DateRange(start=_timestamp(window.start), end=_timestamp(window.end))
        )
    return pb.Window(ever=True)


# ---------------------------------------------------------------------------------------
# Protobuf -> tree


def from_proto(msg: pb.Rule) -> ast.Rule:
    """The tree of a protobuf rule; raises InvalidRuleError naming the bad field."""
    return _rule(msg, "", 1)


def _fail(field: str, message: str) -> NoReturn:
    raise InvalidRuleError(field, message)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _build(path: str, ctor: Callable[..., E], **kwargs: Any) -> E:
    """Construct a node, re-raising its validation error with the protobuf field path."""
    try:
        return ctor(**kwargs)
    except InvalidRuleError as exc:
        head, _, rest = exc.field.partition("[")
        name = _PROTO_FIELD_NAMES.get(head, head) + (f"[{rest}" if rest else "")
        raise InvalidRuleError(_join(path, name), exc.message) from None


def _rule(msg: pb.Rule, path: str, level: int) -> ast.Rule:
    if level > ast.MAX_NESTING:
        _fail(path or "rule", f"rule is nested deeper than {ast.MAX_NESTING} levels")
    kind = msg.WhichOneof("kind")
    if kind is None:
        _fail(path or "rule", "no condition set")
    here = _join(path, kind)
    if kind in ("conjunction", "disjunction"):
        group = msg.conjunction if kind == "conjunction" else msg.disjunction
        items = tuple(
            _rule(c, f"{here}.conditions[{i}]", level + 1) for i, c in enumerate(group.conditions)
        )
        if kind == "conjunction":
            return _build(here, ast.And, conditions=items)
        return _build(here, ast.Or, conditions=items)
    if kind == "negation":
        if not msg.negation.HasField("condition"):
            _fail(f"{here}.condition", "missing")
        return ast.Not(_rule(msg.negation.condition, f"{here}.condition", level + 1))
    return _CONDITIONS[kind](getattr(msg, kind), here)


def _enum(table: Mapping[E, Any], value: int, field: str) -> E:
    for item, number in table.items():
        if number == value:
            return item
    _fail(field, "unspecified or unknown value")


def _scalar(v: struct_pb2.Value, field: str) -> ast.Scalar:
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "number_value":
        return _number(v.number_value, field)
    _fail(field, "must be a string, number or bool value")


def _number(x: float, field: str) -> Decimal:
    if x != x or x in (float("inf"), float("-inf")):
        _fail(field, "number must be finite")
    # repr gives the shortest decimal that reads back as this double, i.e. the literal.
    return Decimal(repr(x))


def _literal(m: Any, field: str) -> ast.Scalar | tuple[ast.Scalar, ...] | None:
    if not m.HasField("value"):
        return None
    v: struct_pb2.Value = m.value
    if v.WhichOneof("kind") == "list_value":
        return tuple(_scalar(item, f"{field}[{i}]") for i, item in enumerate(v.list_value.values))
    return _scalar(v, field)


def _instant(ts: timestamp_pb2.Timestamp, field: str) -> datetime:
    if ts.nanos % 1000:
        _fail(field, "timestamps have microsecond precision")
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        _fail(field, "timestamp out of range")


def _timedelta(d: duration_pb2.Duration, field: str) -> timedelta:
    if d.nanos:
        _fail(field, "must be a whole number of minutes")
    try:
        value = d.ToTimedelta()
    except OverflowError:
        _fail(field, "duration out of range")
    try:
        ast.check_duration(field, value)
    except InvalidRuleError as exc:
        raise InvalidRuleError(field, exc.message) from None
    return value


def _filters(items: Any, path: str) -> tuple[ast.PropertyFilter, ...]:
    out = []
    for i, f in enumerate(items):
        here = f"{path}.filters[{i}]"
        out.append(
            _build(
                here,
                ast.PropertyFilter,
                property=f.property,
                op=_enum(_OPERATORS, f.operator, f"{here}.operator"),
                value=_literal(f, f"{here}.value"),
            )
        )
    return tuple(out)


def _from_window(m: Any, path: str) -> ast.Window:
    if not m.HasField("window"):
        return ast.Ever()
    w: pb.Window = m.window
    here = f"{path}.window"
    kind = w.WhichOneof("kind")
    if kind == "last":
        return _build(here, ast.LastPeriod, period=_timedelta(w.last, f"{here}.last"))
    if kind == "between":
        r = w.between
        return _build(
            f"{here}.between",
            ast.Between,
            start=_instant(r.start, f"{here}.between.start"),
            end=_instant(r.end, f"{here}.between.end"),
        )
    if kind == "ever" and not w.ever:
        _fail(f"{here}.ever", "must be true when set")
    return ast.Ever()


def _min_count(value: int) -> int:
    return value or 1


def _trait(m: pb.TraitCondition, path: str) -> ast.Rule:
    op = _enum(_OPERATORS, m.operator, f"{path}.operator")
    return _build(
        path, ast.TraitCondition, trait=m.trait, op=op, value=_literal(m, f"{path}.value")
    )


def _trait_date(m: pb.TraitDateCondition, path: str) -> ast.Rule:
    op = _enum(_DATE_OPERATORS, m.operator, f"{path}.operator")
    return _build(
        path, ast.TraitDateCondition, trait=m.trait, op=op, date=_instant(m.date, f"{path}.date")
    )


def _trait_within(m: pb.TraitWithinLast, path: str) -> ast.Rule:
    period = _timedelta(m.period, f"{path}.period")
    return _build(path, ast.TraitWithinLast, trait=m.trait, period=period, negated=m.negated)


def _event_count(m: pb.EventCount, path: str) -> ast.Rule:
    return _build(
        path,
        ast.EventCount,
        event=m.event,
        filters=_filters(m.filters, path),
        op=_enum(_OPERATORS, m.operator, f"{path}.operator"),
        count=m.count,
        window=_from_window(m, path),
    )


def _event_aggregate(m: pb.EventAggregate, path: str) -> ast.Rule:
    if m.value.WhichOneof("kind") != "number_value":
        _fail(f"{path}.value", "must be a number value")
    return _build(
        path,
        ast.EventAggregate,
        aggregate=_enum(_AGGREGATES, m.aggregate, f"{path}.aggregate"),
        property=m.property,
        event=m.event,
        filters=_filters(m.filters, path),
        window=_from_window(m, path),
        op=_enum(_OPERATORS, m.operator, f"{path}.operator"),
        value=_number(m.value.number_value, f"{path}.value"),
    )


def _did_not_perform(m: pb.DidNotPerform, path: str) -> ast.Rule:
    return _build(
        path,
        ast.DidNotPerform,
        event=m.event,
        filters=_filters(m.filters, path),
        window=_from_window(m, path),
    )


def _event_spec(m: pb.EventSpec, path: str) -> ast.EventSpec:
    return _build(path, ast.EventSpec, event=m.event, filters=_filters(m.filters, path))


def _sequence(m: pb.Sequence, path: str) -> ast.Rule:
    return _build(
        path,
        ast.Sequence,
        first=_event_spec(m.first, f"{path}.first"),
        then=_event_spec(m.then, f"{path}.then"),
        within=_timedelta(m.within, f"{path}.within"),
        negated=m.negated,
        min_count=_min_count(m.min_count),
        window=_from_window(m, path),
        per=m.per or None,
    )


def _last_emails(m: pb.LastEmailsEngagement, path: str) -> ast.Rule:
    return _build(
        path,
        ast.LastEmailsEngagement,
        action=_enum(_ACTIONS, m.action, f"{path}.action"),
        last=m.last,
        min_count=_min_count(m.min_count),
    )


def _window_engagement(m: pb.WindowEngagement, path: str) -> ast.Rule:
    return _build(
        path,
        ast.WindowEngagement,
        action=_enum(_ACTIONS, m.action, f"{path}.action"),
        window=_from_window(m, path),
        min_count=_min_count(m.min_count),
    )


def _segment(m: pb.SegmentMembership, path: str) -> ast.Rule:
    return _build(path, ast.SegmentMembership, segment=m.segment, negated=m.negated)


_CONDITIONS: dict[str, Callable[[Any, str], ast.Rule]] = {
    "trait": _trait,
    "trait_date": _trait_date,
    "trait_within_last": _trait_within,
    "event_count": _event_count,
    "event_aggregate": _event_aggregate,
    "did_not_perform": _did_not_perform,
    "sequence": _sequence,
    "last_emails_engagement": _last_emails,
    "window_engagement": _window_engagement,
    "segment_membership": _segment,
}
