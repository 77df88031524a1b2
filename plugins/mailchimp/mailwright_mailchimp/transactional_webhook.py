"""Mailchimp Transactional (Mandrill) delivery webhooks, verified with X-Mandrill-Signature.

Mandrill POSTs a form-encoded body with one parameter, `mandrill_events`: a JSON array
of up to 1,000 events. `X-Mandrill-Signature` is the base64 HMAC-SHA1, keyed with the
webhook's key, of the webhook URL exactly as registered followed by each POST parameter's
key and value, sorted by key. The URL is `webhook_url` when set (Mailwright behind a
proxy), else the URL the request arrived at.

When a webhook is added, Mandrill checks the URL with a HEAD request, or failing that a
POST whose `mandrill_events` is `[]` signed with the key `test-webhook`: both are
accepted as a `validation` delivery that yields nothing.

Mandrill signs no timestamp of its own, but each event's `ts` is inside the signed body:
a request whose events are older (or later) than `max_event_age` is `STALE`. Retries
resend the same events, so the delivery id is a hash of the events' identities
(`_id`, `event`, `ts`, and the URL of a click), and each event's message id derives from
its own identity: a redelivered batch is `REPLAYED`, an event seen in two batches
deduplicates at ingest. Sync (`type: blacklist`/`whitelist`) and inbound events are
acknowledged and ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import (
    RejectReason,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
    redact,
)
from mailwright_mailchimp.config import TRANSACTIONAL, TransactionalConfig
from mailwright_mailchimp.events import MESSAGE_EVENTS, PayloadError, email_of, epoch, track
from mailwright_mailchimp.webhook import form

SIGNATURE = "X-Mandrill-Signature"
TEST_KEY = "test-webhook"
MAX_EVENTS = 1000
VALIDATION = "validation"


def signature(key: str | bytes, url: str, params: Mapping[str, str]) -> str:
    """Mandrill's signature of a request: base64 HMAC-SHA1 of URL + sorted key/values."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    secret = key.encode() if isinstance(key, str) else key
    return base64.b64encode(hmac.new(secret, signed.encode(), hashlib.sha1).digest()).decode()


def event_key(item: Mapping[str, Any]) -> str:
    parts = [str(item.get("_id", "")), str(item.get("event", "")), str(item.get("ts", ""))]
    if item.get("event") == "click":
        parts.append(str(item.get("url", "")))
    return "|".join(parts)


class TransactionalWebhook:
    """The webhook capability: delivery events of one Mailchimp Transactional webhook."""

    def __init__(self, config: TransactionalConfig) -> None:
        self.config = config
        self._key = config.signing_key("webhook").encode()
        self._last: tuple[bytes, list[Mapping[str, Any]]] | None = None

    def _events(self, request: WebhookRequest) -> list[Mapping[str, Any]]:
        if self._last is not None and self._last[0] is request.body:
            return self._last[1]
        fields = form(request.body)
        raw = fields.get("mandrill_events")
        if raw is None:
            raise WebhookRejected(RejectReason.MALFORMED, "mandrill_events: missing")
        try:
            events = json.loads(raw)
        except json.JSONDecodeError:
            raise WebhookRejected(RejectReason.MALFORMED, "mandrill_events: not JSON") from None
        if not isinstance(events, list) or len(events) > MAX_EVENTS:
            raise WebhookRejected(RejectReason.MALFORMED, "mandrill_events: not a list of events")
        if not all(isinstance(item, Mapping) for item in events):
            raise WebhookRejected(
                RejectReason.MALFORMED, "mandrill_events: an event is not an object"
            )
        self._last = (request.body, events)
        return events

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        if request.method.upper() == "HEAD":
            return WebhookDelivery(f"{TRANSACTIONAL}:{VALIDATION}", VALIDATION)
        values = request.headers.get_all(SIGNATURE)
        if not values:
            raise WebhookRejected(RejectReason.FORGED, f"no {SIGNATURE} header")
        if len(values) > 1:
            raise WebhookRejected(RejectReason.FORGED, f"{SIGNATURE} sent {len(values)} times")
        try:
            given = base64.b64decode(values[0].strip(), validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected(RejectReason.FORGED, f"{SIGNATURE} is not base64") from None
        try:
            params = form(request.body)
        except WebhookRejected:
            raise WebhookRejected(RejectReason.FORGED, "body is not the signed form") from None
        url = self.config.webhook_url or request.url
        expected = base64.b64decode(signature(self._key, url, params))
        if not hmac.compare_digest(given, expected):
            test = base64.b64decode(signature(TEST_KEY, url, params))
            if hmac.compare_digest(given, test) and params.get("mandrill_events") == "[]":
                return WebhookDelivery(f"{TRANSACTIONAL}:{VALIDATION}", VALIDATION)
            raise WebhookRejected(RejectReason.FORGED, "signature does not match the request")
        events = self._events(request)
        if not events:
            return WebhookDelivery(f"{TRANSACTIONAL}:{VALIDATION}", VALIDATION)
        window = self.config.max_event_age
        for n, item in enumerate(events):
            try:
                when = epoch(item.get("ts"), f"event {n}: ts")
            except PayloadError as error:
                raise WebhookRejected(RejectReason.MALFORMED, str(error)) from None
            if abs(request.received_at - when) > window:
                raise WebhookRejected(
                    RejectReason.STALE, f"event {n} is from {when.isoformat()}, outside {window}"
                )
        digest = hashlib.sha256("\n".join(sorted(map(event_key, events))).encode()).hexdigest()
        kinds = {str(item.get("event") or item.get("type") or "") for item in events}
        topic = kinds.pop() if len(kinds) == 1 else "batch"
        return WebhookDelivery(f"{TRANSACTIONAL}:{digest[:48]}", topic[:64])

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        if delivery.topic == VALIDATION:
            return []
        out = []
        for n, item in enumerate(self._events(request)):
            try:
                event = self._event(item)
            except PayloadError as error:
                raise WebhookRejected(RejectReason.MALFORMED, f"event {n}: {error}") from None
            if event is not None:
                out.append(event)
        return out

    def _event(self, item: Mapping[str, Any]) -> Event | None:
        kind = item.get("event")
        name = MESSAGE_EVENTS.get(kind) if isinstance(kind, str) else None
        if name is None:
            return None  # sync and inbound events, and kinds added later
        msg = item.get("msg")
        if not isinstance(msg, Mapping):
            raise PayloadError("msg: missing")
        recipient = email_of(msg.get("email"), "msg.email")
        when = epoch(item.get("ts"), "ts")
        provider_id = item.get("_id") or msg.get("_id")
        if not isinstance(provider_id, str) or not provider_id:
            raise PayloadError("_id: missing")
        metadata = msg.get("metadata")
        send_id = metadata.get("mailwright_send_id") if isinstance(metadata, Mapping) else None
        props: dict[str, Any] = {
            "provider": TRANSACTIONAL,
            "provider_message_id": provider_id,
            "send_id": send_id if isinstance(send_id, str) else None,
        }
        if kind in ("hard_bounce", "soft_bounce"):
            props["bounce_type"] = "hard" if kind == "hard_bounce" else "soft"
            props["reason"] = _text(msg.get("bounce_description"))
            props["diagnostic"] = _text(msg.get("diag"))
        elif kind == "click":
            props["url"] = _text(item.get("url"))
        elif kind == "reject":
            props["reason"] = _text(msg.get("reject_reason") or msg.get("state"))
        elif kind == "deferral":
            props["diagnostic"] = _text(msg.get("diag"))
        digest = hashlib.sha256(event_key(item).encode()).hexdigest()[:40]
        return track(f"{TRANSACTIONAL}:{digest}", TRANSACTIONAL, recipient, when, name, props)

    async def aclose(self) -> None:
        return None


def _text(value: object) -> str | None:
    # Diagnostics echo the recipient ("550 5.1.1 <bob@…>"): keep addresses out.
    return redact(value) if isinstance(value, str) and value else None
