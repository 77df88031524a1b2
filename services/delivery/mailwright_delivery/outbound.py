"""What a send becomes on its way out: the render request's recipient, and the message
handed to the provider."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

from google.protobuf import struct_pb2

from mailwright.connectors import OutboundMessage
from mailwright.connectors.webhook import Headers
from mailwright.render.v1 import render_pb2
from mailwright_delivery.model import Recipient, Sender
from mailwright_delivery.records import SendRecord


@dataclass
class Ready:
    send: SendRecord
    recipient: Recipient
    template: str = ""
    sender: Sender = field(default_factory=Sender)
    subject_variant: str = ""
    preheader_variant: str = ""
    campaign: str = ""
    message: OutboundMessage | None = None


def render_recipient(item: Ready) -> render_pb2.Recipient:
    person = item.recipient
    traits = struct_pb2.Struct()
    traits.update(json_safe(person.traits))
    context = struct_pb2.Struct()
    if item.send.context:
        context.update(json.loads(item.send.context))
    return render_pb2.Recipient(
        send_id=item.send.id,
        profile_id=person.profile_id,
        email=person.email,
        traits=traits,
        segments=[item.send.segment] if item.send.segment else [],
        timezone=person.timezone,
        locale=person.locale,
        context=context,
        subject_variant=item.subject_variant,
        preheader_variant=item.preheader_variant,
    )


def json_safe(values: dict[str, object]) -> dict[str, Any]:
    safe: dict[str, Any] = json.loads(json.dumps(values, default=str))
    return safe


def outbound_message(
    workspace: str, item: Ready, rendered: render_pb2.RenderedMessage
) -> OutboundMessage:
    sender = item.sender
    tag = item.send.campaign_id or item.send.journey_id or "transactional"
    return OutboundMessage(
        send_id=item.send.id,
        idempotency_key=item.send.idempotency_key,
        from_address=formataddr((sender.from_name, sender.from_address))
        if sender.from_name
        else sender.from_address,
        to_address=item.recipient.email,
        subject=rendered.subject,
        html=rendered.html or None,
        text=rendered.text or None,
        headers=Headers(dict(rendered.headers)),
        tags=(tag, item.send.category.value),
        workspace=workspace,
    )
