"""Applying bus events to profiles: decode, resolve identities, store, announce the change.

The consumer is idempotent (the store ignores an event id it already holds), so the
at-least-once bus can deliver twice without effect. Each applied change is published on
`profiles.changed` with the traits that changed and the event, resolved to its profile.
"""

from __future__ import annotations

import logging
from datetime import UTC

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Bus, Message
from mailwright_profile.store import IncomingEvent, ProfileStore, identities_of

log = logging.getLogger(__name__)

EVENT_TOPICS = (
    "events.track",
    "events.identify",
    "events.page",
    "events.alias",
    "events.commerce",
    "events.email",
)
CHANGED_TOPIC = "profiles.changed"


def incoming(event: event_pb2.Event) -> IncomingEvent:
    pairs: list[tuple[str, str]] = [
        ("user_id", event.user_id),
        ("anonymous_id", event.anonymous_id),
        ("anonymous_id", event.previous_id),
    ]
    pairs.extend((i.type, i.value) for i in event.identities)
    traits = json_format.MessageToDict(event.traits) if event.HasField("traits") else {}
    email = traits.get("email")
    if isinstance(email, str):
        pairs.append(("email", email.strip().lower()))
    return IncomingEvent(
        workspace=event.workspace,
        message_id=event.message_id,
        type=event.type,
        name=event.event or event.name,
        timestamp=event.timestamp.ToDatetime(tzinfo=UTC),
        identities=identities_of(pairs),
        traits=traits,
        source=event.source or "unknown",
        payload=event.SerializeToString(),
    )


class EventApplier:
    def __init__(self, store: ProfileStore, bus: Bus) -> None:
        self.store = store
        self.bus = bus

    async def handle(self, message: Message) -> None:
        event = event_pb2.Event.FromString(message.value)
        applied = await self.store.db.run(self.store.apply, incoming(event))
        if applied.duplicate:
            return
        event.profile_id = applied.profile_id
        change = profile_pb2.ProfileChanged(
            workspace=event.workspace,
            profile_id=applied.profile_id,
            version=applied.version,
            events=[event],
            merged_profile_ids=list(applied.merged_profile_ids),
        )
        change.traits.update(applied.changed_traits)
        now = Timestamp()
        now.GetCurrentTime()
        change.occur_time.CopyFrom(now)
        await self.bus.publish(
            CHANGED_TOPIC, change.SerializeToString(), key=f"{event.workspace}:{applied.profile_id}"
        )
        log.debug("applied %s to profile %s", event.message_id, applied.profile_id)
