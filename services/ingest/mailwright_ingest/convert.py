"""Protobuf messages of `mailwright.ingest.v1` to the domain's plain objects and back."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from google.protobuf import duration_pb2, timestamp_pb2

from mailwright.common.v1 import common_pb2
from mailwright.errors import FieldViolation
from mailwright.ingest.v1 import ingest_pb2
from mailwright.names import resource_name
from mailwright.taxonomy import EventFamily, EventSpec, PropertySpec, PropertyType
from mailwright_ingest.intake import Outcome, Status
from mailwright_ingest.policy import Policy, Unplanned
from mailwright_ingest.store import StoredWriteKey
from mailwright_ingest.taxonomy import Definition, check_spec, infer_family

_FAMILY_TO_PROTO = {
    EventFamily.TRACK: ingest_pb2.EVENT_FAMILY_TRACK,
    EventFamily.COMMERCE: ingest_pb2.EVENT_FAMILY_COMMERCE,
    EventFamily.EMAIL: ingest_pb2.EVENT_FAMILY_EMAIL,
}
_FAMILY_FROM_PROTO = {value: key for key, value in _FAMILY_TO_PROTO.items()}
_STATUS = {
    Status.ACCEPTED: ingest_pb2.EVENT_STATUS_ACCEPTED,
    Status.DUPLICATE: ingest_pb2.EVENT_STATUS_DUPLICATE,
    Status.REJECTED: ingest_pb2.EVENT_STATUS_REJECTED,
}
_UNPLANNED_TO_PROTO = {
    Unplanned.ACCEPT: ingest_pb2.UNPLANNED_EVENT_POLICY_ACCEPT,
    Unplanned.REJECT: ingest_pb2.UNPLANNED_EVENT_POLICY_REJECT,
}
_UNPLANNED_FROM_PROTO = {value: key for key, value in _UNPLANNED_TO_PROTO.items()}


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def duration(span: timedelta) -> duration_pb2.Duration:
    value = duration_pb2.Duration()
    value.FromTimedelta(span)
    return value


# -- events -------------------------------------------------------------------------------


def result(outcome: Outcome) -> ingest_pb2.EventResult:
    message = ingest_pb2.EventResult(
        index=outcome.index, message_id=outcome.message_id, status=_STATUS[outcome.status]
    )
    if outcome.violations:
        message.violations.extend(
            common_pb2.FieldViolation(field=v.field, description=v.description)
            for v in outcome.violations
        )
    if outcome.event is not None:
        message.event.CopyFrom(outcome.event)
    return message


# -- taxonomy -----------------------------------------------------------------------------


def definition_to_proto(workspace: str, definition: Definition) -> ingest_pb2.EventDefinition:
    spec = definition.spec
    return ingest_pb2.EventDefinition(
        name=resource_name(workspace, "eventDefinitions", definition.id),
        event=spec.event,
        description=spec.description,
        properties=[_property_to_proto(p) for p in spec.properties],
        tags=list(spec.tags),
        weight=spec.weight,
        family=_FAMILY_TO_PROTO[spec.family],
        update_time=timestamp(definition.update_time),
    )


def spec_to_proto(spec: EventSpec) -> ingest_pb2.EventDefinition:
    """A definition to send (no name or update time yet)."""
    return ingest_pb2.EventDefinition(
        event=spec.event,
        description=spec.description,
        properties=[_property_to_proto(p) for p in spec.properties],
        tags=list(spec.tags),
        weight=spec.weight,
        family=_FAMILY_TO_PROTO[spec.family],
    )


def _property_to_proto(spec: PropertySpec) -> ingest_pb2.PropertySchema:
    return ingest_pb2.PropertySchema(
        name=spec.name,
        type=ingest_pb2.PropertyType.Value(f"PROPERTY_TYPE_{spec.type.name}"),
        required=spec.required,
        enum_values=list(spec.enum_values),
        description=spec.description,
        items=[_property_to_proto(item) for item in spec.items],
    )


def definition_from_proto(
    message: ingest_pb2.EventDefinition, field: str
) -> EventSpec | list[FieldViolation]:
    """The spec of a definition from the API, or every violation found in it."""
    problems: list[FieldViolation] = []
    body: dict[str, Any] = {
        "description": message.description,
        "tags": list(message.tags),
        "weight": message.weight,
    }
    if message.family == ingest_pb2.EVENT_FAMILY_UNSPECIFIED:
        body["family"] = infer_family(message.event).value
    else:
        family = _FAMILY_FROM_PROTO.get(message.family)
        if family is None:
            problems.append(FieldViolation(f"{field}.family", "is not a known family"))
        else:
            body["family"] = family.value
    body["properties"] = _properties_body(message.properties, f"{field}.properties", problems)
    if problems:
        return problems
    checked = check_spec(message.event, body, field)
    return [checked] if isinstance(checked, FieldViolation) else checked


def _properties_body(schemas: Any, where: str, problems: list[FieldViolation]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for index, schema in enumerate(schemas):
        at = f"{where}[{index}]"
        if schema.name in body:
            problems.append(FieldViolation(f"{at}.name", f"{schema.name!r} is defined twice"))
            continue
        if schema.type == ingest_pb2.PROPERTY_TYPE_UNSPECIFIED:
            problems.append(FieldViolation(f"{at}.type", "is required"))
            continue
        try:
            kind = PropertyType(
                ingest_pb2.PropertyType.Name(schema.type).removeprefix("PROPERTY_TYPE_").lower()
            )
        except ValueError:
            problems.append(FieldViolation(f"{at}.type", "is not a known property type"))
            continue
        item: dict[str, Any] = {"type": kind.value, "required": schema.required}
        if schema.enum_values:
            item["enum"] = list(schema.enum_values)
        if schema.description:
            item["description"] = schema.description
        if schema.items:
            item["items"] = _properties_body(schema.items, f"{at}.items", problems)
        body[schema.name] = item
    return body


# -- policy -------------------------------------------------------------------------------


def policy_to_proto(workspace: str, policy: Policy) -> ingest_pb2.IngestPolicy:
    return ingest_pb2.IngestPolicy(
        name=f"{resource_name(workspace)}/ingestPolicy",
        unplanned_events=_UNPLANNED_TO_PROTO[policy.unplanned],
        dedup_window=duration(policy.dedup_window),
        rate_limit_per_second=policy.rate_per_second,
        rate_limit_burst=policy.burst,
        max_past=duration(policy.max_past),
        max_future=duration(policy.max_future),
        allowed_origins=list(policy.allowed_origins),
    )


def policy_from_proto(message: ingest_pb2.IngestPolicy, current: Policy) -> Policy:
    """The policy an update asks for. Durations and the unplanned policy left unset keep
    their current value; the rate, burst and origins are taken as given."""
    unplanned = _UNPLANNED_FROM_PROTO.get(message.unplanned_events, current.unplanned)

    def span(name: Literal["dedup_window", "max_past", "max_future"], kept: timedelta) -> timedelta:
        if not message.HasField(name):
            return kept
        value: timedelta = getattr(message, name).ToTimedelta()
        return value

    return Policy(
        unplanned=unplanned,
        dedup_window=span("dedup_window", current.dedup_window),
        rate_per_second=message.rate_limit_per_second,
        burst=message.rate_limit_burst,
        max_past=span("max_past", current.max_past),
        max_future=span("max_future", current.max_future),
        allowed_origins=tuple(message.allowed_origins),
    )


# -- write keys ---------------------------------------------------------------------------


def write_key_to_proto(stored: StoredWriteKey, key: str = "") -> ingest_pb2.WriteKey:
    message = ingest_pb2.WriteKey(
        name=resource_name(stored.workspace, "writeKeys", stored.key_id),
        display_name=stored.display_name,
        key=key,
        key_prefix=stored.key_prefix,
        create_time=timestamp(stored.create_time),
    )
    if stored.revoke_time is not None:
        message.revoke_time.CopyFrom(timestamp(stored.revoke_time))
    return message
