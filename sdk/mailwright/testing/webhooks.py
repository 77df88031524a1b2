"""Helpers to build, sign, tamper with and deliver webhook requests in tests.

    body = json.dumps(payload).encode()
    request = webhook_request(body, {"X-Acme-Signature": hmac_sha256_hex(secret, body)})
    events = await IngestDesk().receive(webhook, request)     # verify, dedup, parse
    await IngestDesk().receive(webhook, tampered(request))     # raises WebhookRejected

`IngestDesk` does what ingest does with a connector's webhook (verify, deduplicate by
delivery id, parse), so a plugin's tests exercise the same sequence as production.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors.errors import RejectReason, WebhookRejected
from mailwright.connectors.webhook import Headers, Webhook, WebhookDelivery, WebhookRequest

DEFAULT_URL = "https://mailwright.example/webhooks/{connector}/acme"


def hmac_sha256(secret: str | bytes, data: bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, data, hashlib.sha256).digest()


def hmac_sha256_base64(secret: str | bytes, data: bytes) -> str:
    """Base64 of HMAC-SHA256 (Shopify, HubSpot v3, Mandrill use this shape)."""
    return base64.b64encode(hmac_sha256(secret, data)).decode()


def hmac_sha256_hex(secret: str | bytes, data: bytes) -> str:
    return hmac_sha256(secret, data).hex()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of `data` (HubSpot's v1 and v2 signatures hash secret + request)."""
    return hashlib.sha256(data).hexdigest()


def webhook_request(
    body: bytes,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    *,
    url: str = DEFAULT_URL.format(connector="test"),
    method: str = "POST",
    received_at: datetime | None = None,
) -> WebhookRequest:
    """A `WebhookRequest` as ingest builds it from a raw request."""
    return WebhookRequest(
        method=method,
        url=url,
        headers=Headers(headers),
        body=body,
        received_at=received_at or datetime.now(UTC),
    )


def tampered(request: WebhookRequest) -> WebhookRequest:
    """The same request with one byte of the body changed (its signature no longer fits)."""
    body = request.body or b" "
    flipped = body[:-1] + bytes([body[-1] ^ 0x01])
    return replace(request, body=flipped)


def without_headers(request: WebhookRequest, *names: str) -> WebhookRequest:
    """The request without the named headers (say, its signature)."""
    dropped = {name.lower() for name in names}
    kept = [(k, v) for k, v in request.headers.pairs() if k.lower() not in dropped]
    return replace(request, headers=Headers(kept))


def with_header(request: WebhookRequest, name: str, value: str) -> WebhookRequest:
    """The request with one more `name: value` header (a second copy if it has one)."""
    return replace(request, headers=Headers([*request.headers.pairs(), (name, value)]))


def replacing_header(request: WebhookRequest, name: str, value: str) -> WebhookRequest:
    """The request with header `name` set to `value` alone."""
    return with_header(without_headers(request, name), name, value)


class IngestDesk:
    """What ingest does with a webhook request: verify, deduplicate, parse.

    Remembers accepted delivery ids like ingest's dedup store; a delivery seen before
    raises `WebhookRejected(REPLAYED)` without being parsed.
    """

    def __init__(self) -> None:
        self.accepted: dict[str, WebhookDelivery] = {}

    async def receive(self, webhook: Webhook, request: WebhookRequest) -> Sequence[Event]:
        delivery = await webhook.verify(request)
        if not isinstance(delivery, WebhookDelivery):
            raise TypeError(f"verify returned {type(delivery).__name__}, not WebhookDelivery")
        if delivery.delivery_id in self.accepted:
            raise WebhookRejected(
                RejectReason.REPLAYED, f"delivery {delivery.delivery_id} was already accepted"
            )
        events = webhook.parse(request, delivery)
        self.accepted[delivery.delivery_id] = delivery
        return events
