"""The events delivery itself originates on `events.email`, and send ids.

`Email Sent` when a provider accepts a message, `Email Bounced` when it refuses one
synchronously, `Email Suppressed`-style skips are not published (nothing happened to the
person). Each event's message id is `<send id>:<what>`, so a redelivery is recognised by
every consumer, delivery's own feedback consumer included (which also skips events whose
source is "delivery": their facts were recorded with the send).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

from google.protobuf import struct_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright_delivery.records import OutboxMessage, SendRecord

TOPIC = "events.email"
SOURCE = "delivery"


def send_id_for(workspace: str, idempotency_key: str) -> str:
    """A send's id, fixed by its key: a replayed snapshot names the same sends."""
    digest = hashlib.sha256(f"{workspace}\x00{idempotency_key}".encode()).digest()
    return base64.b32encode(digest[:15]).decode().lower()


def sent_event(send: SendRecord, now: datetime, *, address: str, provider: str) -> OutboxMessage:
    """`Email Sent`: the provider accepted the message."""
    return email_event(send, "Email Sent", "sent", now, address=address, provider=provider)


def bounced_event(send: SendRecord, now: datetime, *, address: str, reason: str) -> OutboxMessage:
    """`Email Bounced`: the provider refused the message for good, synchronously."""
    return email_event(
        send, "Email Bounced", "bounced", now, address=address, bounce_type="hard", reason=reason
    )


def email_event(
    send: SendRecord,
    name: str,
    what: str,
    now: datetime,
    *,
    address: str = "",
    **properties: str | float | None,
) -> OutboxMessage:
    props = struct_pb2.Struct()
    props.update(
        {
            "send_id": send.id,
            **({"campaign": send.campaign_id} if send.campaign_id else {}),
            **({"journey": send.journey_id, "step": send.step_id} if send.journey_id else {}),
            **({"variant": send.variant} if send.variant else {}),
            **{key: value for key, value in properties.items() if value is not None},
        }
    )
    event = event_pb2.Event(
        workspace=send.workspace,
        message_id=f"{send.id}:{what}",
        type=event_pb2.EVENT_TYPE_TRACK,
        event=name,
        properties=props,
        source=SOURCE,
        family="email",
        profile_id=send.profile_id,
    )
    if not send.profile_id and address:
        # A transactional send to a bare address: the profile service resolves the person
        # by it, as it resolves any event's email identity.
        event.identities.append(common_pb2.Identity(type="email", value=address))
    event.timestamp.FromDatetime(now)
    event.received_at.FromDatetime(now)
    key = f"{send.workspace}:{send.profile_id or send.email_hash or send.id}"
    return OutboxMessage(TOPIC, key, event.SerializeToString())
