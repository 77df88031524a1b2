"""What the segment service learns from the profile service, as plain facts.

A `ProfileChanged` message becomes a `ProfileChange`: the traits set and removed, the
events applied (name, instant, normalised properties), the email facts those events carry,
and the profiles merged into this one. `ProfileDeleted` becomes a `ProfileErasure`.

Which events count, and how email engagement is read from them:

* track events by their `event` name; page and screen events as `"Page Viewed"` and
  `"Screen Viewed"` (unless they carry an `event` name), with `name` and `category` among
  their properties; identify and alias events change traits, not history, and are left out;
* an event without `message_id` gets a stable one derived from its content, so a
  redelivered message is still recognised;
* email engagement comes from the email events delivery and the tracking edge publish:
  `Email Sent` (the send, at the event's time), `Email Opened` and `Email Link Clicked`
  (the taxonomy's name, which the tracking edge publishes; `Email Clicked` is read too),
  each with the property `send_id`; an open whose property `machine` is true (a privacy proxy
  or a scanner fetched the pixel) is kept apart and never counts as an open. Events in
  Segment's Email spec, which email providers' sources send, count the same way: their
  `Email Delivered` is the send (the profile service reads it so too) and their `email_id`
  names it when there is no `send_id`;
* money and number properties of the default taxonomy that arrive as decimal strings
  (the event contract writes money as strings) are read as numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.rules.schema import Taxonomy, ValueType
from mailwright.structs import struct_values
from mailwright.taxonomy import SEND_ID_PROPERTIES
from mailwright_segment.values import Value, dumps, normalize_mapping, to_micros

EMAIL_SENT = "Email Sent"
EMAIL_DELIVERED = "Email Delivered"
EMAIL_OPENED = "Email Opened"
EMAIL_CLICKED = "Email Clicked"
EMAIL_LINK_CLICKED = "Email Link Clicked"
MACHINE = "machine"
MAX_NAME = 200


@dataclass(frozen=True)
class EventFact:
    message_id: str
    name: str
    at: int
    """Microseconds since the epoch."""
    properties: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailFact:
    """One fact about a send: ``sent``, ``open``, ``click`` or ``machine_open``."""

    message_id: str
    send_id: str
    kind: str
    at: int


@dataclass(frozen=True)
class ProfileChange:
    workspace: str
    profile_id: str
    version: int = 0
    traits: Mapping[str, Value] = field(default_factory=dict)
    removed_traits: tuple[str, ...] = ()
    events: tuple[EventFact, ...] = ()
    emails: tuple[EmailFact, ...] = ()
    merged_profile_ids: tuple[str, ...] = ()
    unmerged_from: str = ""
    occur_time: int = 0

    @property
    def trait_keys(self) -> frozenset[str]:
        return frozenset(self.traits) | frozenset(self.removed_traits)


@dataclass(frozen=True)
class ProfileErasure:
    workspace: str
    profile_id: str
    merged_profile_ids: tuple[str, ...] = ()


def email_fact(event: EventFact) -> EmailFact | None:
    """The email fact an event carries, if it is an email event with a send id."""
    kind = {
        EMAIL_SENT: "sent",
        EMAIL_DELIVERED: "sent",
        EMAIL_OPENED: "open",
        EMAIL_CLICKED: "click",
        EMAIL_LINK_CLICKED: "click",
    }.get(event.name)
    if kind is None:
        return None
    send_id = next(
        (
            found
            for found in (event.properties.get(name) for name in SEND_ID_PROPERTIES)
            if isinstance(found, str) and found
        ),
        None,
    )
    if send_id is None or len(send_id) > MAX_NAME:
        return None
    if kind == "open" and event.properties.get(MACHINE) is True:
        kind = "machine_open"
    return EmailFact(event.message_id, send_id, kind, event.at)


def _name_of(event: event_pb2.Event) -> str:
    if event.type == event_pb2.EVENT_TYPE_TRACK:
        return event.event
    if event.type == event_pb2.EVENT_TYPE_PAGE:
        return event.event or "Page Viewed"
    if event.type == event_pb2.EVENT_TYPE_SCREEN:
        return event.event or "Screen Viewed"
    return ""


_SECONDS = range(-62_135_596_800, 253_402_300_800)
"""A Timestamp's valid seconds (0001-01-01 to 9999-12-31)."""


def _instant(event: event_pb2.Event, fallback: int) -> int:
    for stamp in (event.timestamp, event.received_at):
        seconds, nanos = stamp.seconds, stamp.nanos
        if seconds or nanos:
            if seconds in _SECONDS and 0 <= nanos < 1_000_000_000:
                # What to_micros(stamp.ToDatetime()) gives, by integer arithmetic.
                return seconds * 1_000_000 + nanos // 1000
            return to_micros(stamp.ToDatetime(tzinfo=UTC))  # raises, as it always did
    return fallback


def _numbers(name: str, props: dict[str, Value], taxonomy: Taxonomy | None) -> None:
    declared = taxonomy.events.get(name) if taxonomy is not None else None
    if not declared:
        return
    for key, value in props.items():
        if declared.get(key) is ValueType.NUMBER and isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                continue
            if number.is_finite():
                props[key] = number


def event_fact(
    event: event_pb2.Event, fallback_time: int, taxonomy: Taxonomy | None = None
) -> EventFact | None:
    """The fact of one applied event, or None when it is not part of the history."""
    name = _name_of(event)
    if not name or len(name) > MAX_NAME:
        return None
    raw = struct_values(event.properties) if event.HasField("properties") else {}
    props = normalize_mapping(raw)
    if event.type in (event_pb2.EVENT_TYPE_PAGE, event_pb2.EVENT_TYPE_SCREEN):
        for key, value in (("name", event.name), ("category", event.category)):
            if value and key not in props:
                props[key] = value
    _numbers(name, props, taxonomy)
    at = _instant(event, fallback_time)
    message_id = event.message_id[:MAX_NAME]
    if not message_id:
        digest = hashlib.sha256(f"{name}\x00{at}\x00{dumps(props)}".encode()).hexdigest()
        message_id = "derived-" + digest[:40]
    return EventFact(message_id, name, at, props)


def profile_change(
    message: profile_pb2.ProfileChanged, taxonomy: Taxonomy | None = None
) -> ProfileChange:
    """The facts of a `ProfileChanged` bus message."""
    occur = (
        to_micros(message.occur_time.ToDatetime(tzinfo=UTC))
        if message.HasField("occur_time")
        else to_micros(datetime.now(UTC))
    )
    traits: dict[str, Value] = {}
    removed = list(message.removed_traits)
    for struct in (message.traits, message.computed_traits):
        raw = struct_values(struct)
        for key, value in raw.items():
            if value is None:
                removed.append(key)
        traits.update(normalize_mapping(raw))
    events = []
    for event in message.events:
        fact = event_fact(event, occur, taxonomy)
        if fact is not None:
            events.append(fact)
    emails = tuple(e for e in (email_fact(f) for f in events) if e is not None)
    return ProfileChange(
        workspace=message.workspace,
        profile_id=message.profile_id,
        version=message.version,
        traits=traits,
        removed_traits=tuple(k for k in dict.fromkeys(removed) if k not in traits),
        events=tuple(events),
        emails=emails,
        merged_profile_ids=tuple(p for p in message.merged_profile_ids if p),
        unmerged_from=message.unmerged_from_profile_id,
        occur_time=occur,
    )


def profile_erasure(message: profile_pb2.ProfileDeleted) -> ProfileErasure:
    return ProfileErasure(
        message.workspace, message.profile_id, tuple(p for p in message.merged_profile_ids if p)
    )
