"""Segment's HTTP tracking API format: JSON calls to `Event`s, and field names back.

A call is what analytics.js and Segment's server libraries send: `type`, `messageId`,
`userId`, `anonymousId`, `previousId`, `event`, `name`, `category`, `properties`,
`traits`, `context` (`ip`, `userAgent`, `page`, `campaign`, `locale`, `timezone`,
`device`, `library`; anything else is kept in `extra`), `timestamp`,
`originalTimestamp`, `sentAt`; `integrations` and `writeKey` are read and dropped. In a
batch, the top-level `context` applies to every call (a call's own keys win), and a
top-level `sentAt` to every call that has none. Mailwright also reads `identities`, a
list of `{type, value}`. Violations name fields as the client wrote them
(`batch[3].userId`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.errors import FieldViolation
from mailwright.normalize import parse_timestamp
from mailwright_ingest.values import Budget, Limits, check_python, python_to_struct

CALL_TYPES: dict[str, event_pb2.EventType.ValueType] = {
    "track": event_pb2.EVENT_TYPE_TRACK,
    "identify": event_pb2.EVENT_TYPE_IDENTIFY,
    "page": event_pb2.EVENT_TYPE_PAGE,
    "screen": event_pb2.EVENT_TYPE_SCREEN,
    "alias": event_pb2.EVENT_TYPE_ALIAS,
}
COLLECTOR_LIBRARY = "mailwright.js"

_IDS = (
    ("messageId", "message_id"),
    ("userId", "user_id"),
    ("anonymousId", "anonymous_id"),
    ("previousId", "previous_id"),
)
_TIMES = (
    ("timestamp", "timestamp"),
    ("originalTimestamp", "original_timestamp"),
    ("sentAt", "sent_at"),
)
_CONTEXT_GROUPS: dict[str, tuple[str, ...]] = {
    "page": ("path", "referrer", "search", "title", "url"),
    "campaign": ("name", "source", "medium", "term", "content"),
    "device": ("id", "type", "manufacturer", "model"),
    "library": ("name", "version"),
}
_CONTEXT_TEXT = {"ip": "ip", "userAgent": "user_agent", "locale": "locale", "timezone": "timezone"}
_JSON_NAMES = {
    "user_id": "userId",
    "anonymous_id": "anonymousId",
    "message_id": "messageId",
    "previous_id": "previousId",
    "sent_at": "sentAt",
    "original_timestamp": "originalTimestamp",
    "received_at": "receivedAt",
    "user_agent": "userAgent",
}


def json_field(field_path: str) -> str:
    """A violation's field as the client wrote it: `batch[2].user_id` → `batch[2].userId`."""
    return ".".join(_JSON_NAMES.get(part, part) for part in field_path.split("."))


@dataclass(frozen=True)
class Envelope:
    """What a whole request adds to each of its calls."""

    context: dict[str, Any] = field(default_factory=dict)
    sent_at: Any = None
    ip: str = ""
    user_agent: str = ""


def parse_call(
    data: Any, kind: str | None, where: str, envelope: Envelope, limits: Limits
) -> tuple[event_pb2.Event | None, list[FieldViolation]]:
    """The event of one call, or the violations that keep it from being one."""
    problems: list[FieldViolation] = []
    if not isinstance(data, dict):
        return None, [FieldViolation(where or "body", "must be a JSON object")]

    def at(name: str) -> str:
        return f"{where}.{name}" if where else name

    event = event_pb2.Event()
    declared = data.get("type")
    if kind is not None and declared not in (None, kind):
        problems.append(FieldViolation(at("type"), f"must be {kind!r} on this endpoint"))
    call_type = kind or declared
    if call_type == "group":
        problems.append(FieldViolation(at("type"), "group calls are not supported"))
    elif call_type not in CALL_TYPES:
        problems.append(
            FieldViolation(at("type"), "must be track, identify, page, screen or alias")
        )
    else:
        event.type = CALL_TYPES[call_type]
    for json_name, proto_name in _IDS:
        value = data.get(json_name)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            problems.append(FieldViolation(at(json_name), "must be a string"))
            continue
        setattr(event, proto_name, value)
    for json_name in ("event", "name", "category"):
        value = data.get(json_name)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(FieldViolation(at(json_name), "must be a string"))
            continue
        setattr(event, json_name, value)
    for json_name, proto_name in _TIMES:
        value = data.get(json_name)
        if json_name == "sentAt" and value is None:
            value = envelope.sent_at
        if value is None:
            continue
        try:
            moment = parse_timestamp(value)
        except ValueError as error:
            problems.append(FieldViolation(at(json_name), str(error)))
            continue
        stamp = Timestamp()
        stamp.FromDatetime(moment)
        getattr(event, proto_name).CopyFrom(stamp)
    budget = Budget(limits)
    for json_name in ("properties", "traits"):
        value = data.get(json_name)
        if value is None:
            continue
        if not isinstance(value, dict):
            problems.append(FieldViolation(at(json_name), "must be a JSON object"))
            continue
        check_python(value, at(json_name), budget)
        if not budget.problems:
            python_to_struct(value, getattr(event, json_name))
    _read_identities(data.get("identities"), event, at("identities"), problems)
    _read_context(data.get("context"), event, at("context"), envelope, budget, problems)
    problems.extend(budget.problems)
    return (None, problems) if problems else (event, [])


def _read_identities(
    value: Any, event: event_pb2.Event, where: str, problems: list[FieldViolation]
) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        problems.append(FieldViolation(where, "must be a list of {type, value} objects"))
        return
    for index, item in enumerate(value[:100]):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("value"), str)
        ):
            problems.append(FieldViolation(f"{where}[{index}]", "must be {type, value} strings"))
            continue
        event.identities.append(common_pb2.Identity(type=item["type"], value=item["value"]))


def _read_context(
    value: Any,
    event: event_pb2.Event,
    where: str,
    envelope: Envelope,
    budget: Budget,
    problems: list[FieldViolation],
) -> None:
    if value is not None and not isinstance(value, dict):
        problems.append(FieldViolation(where, "must be a JSON object"))
        return
    merged = {**envelope.context, **(value or {})}
    if not merged and not envelope.ip and not envelope.user_agent:
        return
    context = event.context
    extra: dict[str, Any] = {}
    for key, item in merged.items():
        if key in _CONTEXT_TEXT:
            if not isinstance(item, str):
                problems.append(FieldViolation(f"{where}.{key}", "must be a string"))
                continue
            setattr(context, _CONTEXT_TEXT[key], item)
        elif key in _CONTEXT_GROUPS:
            _read_group(key, item, getattr(context, key), f"{where}.{key}", problems, extra)
        else:
            extra[key] = item
    if not context.ip and envelope.ip:
        context.ip = envelope.ip
    if not context.user_agent and envelope.user_agent:
        context.user_agent = envelope.user_agent
    if extra:
        check_python(extra, f"{where}", budget)
        if not budget.problems:
            python_to_struct(extra, context.extra)
    if context.library.name == COLLECTOR_LIBRARY:
        event.source = "browser"


def _read_group(
    group: str,
    value: Any,
    target: Any,
    where: str,
    problems: list[FieldViolation],
    extra: dict[str, Any],
) -> None:
    if not isinstance(value, dict):
        problems.append(FieldViolation(where, "must be a JSON object"))
        return
    known = _CONTEXT_GROUPS[group]
    rest: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            rest[key] = item
            continue
        if item is None:
            continue
        if not isinstance(item, str):
            problems.append(FieldViolation(f"{where}.{key}", "must be a string"))
            continue
        setattr(target, key, item)
    if rest:
        extra[group] = rest
