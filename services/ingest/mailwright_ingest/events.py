"""Checking and stamping incoming events before they go on the bus.

Plain functions on protobuf `Event`s: they name every wrong field and never touch the
network. The taxonomy, normalisers and dedup of the ingest issue build on this.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import event_pb2
from mailwright.errors import FieldViolation

EventType = event_pb2.EventType

TOPIC_BY_TYPE: dict[int, str] = {
    event_pb2.EVENT_TYPE_TRACK: "events.track",
    event_pb2.EVENT_TYPE_IDENTIFY: "events.identify",
    event_pb2.EVENT_TYPE_PAGE: "events.page",
    event_pb2.EVENT_TYPE_SCREEN: "events.page",
    event_pb2.EVENT_TYPE_ALIAS: "events.alias",
}

MAX_ID_LENGTH = 255


def check(event: event_pb2.Event, prefix: str = "event") -> list[FieldViolation]:
    """Every problem with `event`, each naming its field."""
    problems: list[FieldViolation] = []
    if event.type not in TOPIC_BY_TYPE:
        problems.append(FieldViolation(f"{prefix}.type", "must be track, identify, page or alias"))
    if not event.user_id and not event.anonymous_id:
        problems.append(
            FieldViolation(f"{prefix}.user_id", "either user_id or anonymous_id is required")
        )
    for name in ("user_id", "anonymous_id", "message_id", "previous_id"):
        if len(getattr(event, name)) > MAX_ID_LENGTH:
            problems.append(FieldViolation(f"{prefix}.{name}", f"longer than {MAX_ID_LENGTH}"))
    if event.type == event_pb2.EVENT_TYPE_TRACK and not event.event.strip():
        problems.append(FieldViolation(f"{prefix}.event", "a track event needs an event name"))
    if event.type == event_pb2.EVENT_TYPE_ALIAS:
        if not event.user_id:
            problems.append(FieldViolation(f"{prefix}.user_id", "an alias needs user_id"))
        if not event.previous_id:
            problems.append(FieldViolation(f"{prefix}.previous_id", "an alias needs previous_id"))
    return problems


def stamp(event: event_pb2.Event, workspace: str, source: str, now: datetime | None = None) -> None:
    """Fill what the server owns: workspace, message id, received time, family, source."""
    now = now or datetime.now(UTC)
    event.workspace = workspace
    if not event.message_id:
        event.message_id = str(uuid.uuid4())
    received = Timestamp()
    received.FromDatetime(now)
    event.received_at.CopyFrom(received)
    if not event.HasField("timestamp"):
        event.timestamp.CopyFrom(received)
    if not event.HasField("original_timestamp"):
        event.original_timestamp.CopyFrom(event.timestamp)
    event.family = TOPIC_BY_TYPE[event.type].split(".", 1)[1]
    if not event.source:
        event.source = source


def partition_key(event: event_pb2.Event) -> str:
    """One person's events share a key, so they keep their order on the bus."""
    return f"{event.workspace}:{event.user_id or event.anonymous_id}"
