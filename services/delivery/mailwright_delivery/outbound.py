"""What a send becomes on its way out: the render request's recipient, and the message
handed to the provider."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.utils import formataddr
from typing import Any

import orjson

from mailwright.connectors import OutboundMessage
from mailwright.connectors.webhook import Headers
from mailwright.render.v1 import render_pb2
from mailwright_delivery.model import Recipient, Sender
from mailwright_delivery.records import SendRecord

_INTEGRAL = 2**53


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
    """The render request's recipient, its traits and context as JSON (`traits_json`,
    `context_json`): render decodes those in C, where a Struct costs it a Python call
    per value."""
    person = item.recipient
    context = json.loads(item.send.context) if item.send.context else {}
    return render_pb2.Recipient(
        send_id=item.send.id,
        profile_id=person.profile_id,
        email=person.email,
        traits_json=wire_json(person.traits),
        segments=[item.send.segment] if item.send.segment else [],
        timezone=person.timezone,
        locale=person.locale,
        context_json=wire_json(context),
        subject_variant=item.subject_variant,
        preheader_variant=item.preheader_variant,
    )


def wire_json(values: dict[str, Any]) -> bytes:
    """`values` as a JSON object for render, read as a Struct would have carried them:
    whole numbers as integers (profile traits arrive as floats: `3`, not `3.0`), and
    anything JSON has no type for (dates, decimals) as its text."""
    return orjson.dumps({str(key): _plain(value) for key, value in values.items()})


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int):  # bool is an int
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and -_INTEGRAL < value < _INTEGRAL else value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


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
