"""Shopify webhooks: verified by their HMAC, deduplicated by event id, turned into events.

Shopify signs each HTTPS delivery with `X-Shopify-Hmac-Sha256`: the base64 HMAC-SHA256
of the raw body, keyed with the app's client secret. The topic is `X-Shopify-Topic`, the
store `X-Shopify-Shop-Domain`. `X-Shopify-Event-Id` is shared by every delivery of one
merchant action (all subscriptions to the topic, and retries), `X-Shopify-Webhook-Id`
identifies one delivery (older documentation dedups on it). The delivery id is therefore
`<topic>:<event id>` — a retry, or a second subscription to the same topic, is a
duplicate; another topic of the same action (orders/create, then orders/paid) is not —
falling back to the webhook id. Shopify signs no timestamp, so a replay is caught by that
id (ingest's dedup) and by the events' own message ids.

Since API 2025-01 the customer topics carry no consent: a change of a customer's email
marketing consent is its own topic, `customers_email_marketing_consent/update`, whose
payload is `customer_id`, `email_address` and `email_marketing_consent`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from hashlib import sha256
from typing import Any

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import (
    RejectReason,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
)
from mailwright_shopify import events
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.records import Checkout, Customer, EmailConsent, Order, RecordError

log = logging.getLogger(__name__)

EMAIL_CONSENT_TOPIC = "customers_email_marketing_consent/update"

SIGNATURE = "X-Shopify-Hmac-Sha256"
TOPIC = "X-Shopify-Topic"
SHOP = "X-Shopify-Shop-Domain"
EVENT_ID = "X-Shopify-Event-Id"
WEBHOOK_ID = "X-Shopify-Webhook-Id"

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# `orders/create`, and dotted topics such as `customer.tags_added`.
_TOPIC = re.compile(r"^[a-z_]{1,40}[/.][a-z_]{1,40}$")


def _single(request: WebhookRequest, name: str) -> str | None:
    values = request.headers.get_all(name)
    if len(values) > 1:
        raise WebhookRejected(RejectReason.FORGED, f"{name} sent {len(values)} times")
    return values[0].strip() if values else None


class ShopifyWebhook:
    """The webhook capability for one store."""

    def __init__(self, config: ShopifyConfig) -> None:
        secret = config.require("client_secret", "webhook")
        self.config = config
        self._keys = [secret.get_secret_value().encode()]
        if config.previous_client_secret is not None:
            self._keys.append(config.previous_client_secret.get_secret_value().encode())

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        signature = _single(request, SIGNATURE)
        if not signature:
            raise WebhookRejected(RejectReason.FORGED, f"no {SIGNATURE} header")
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected(RejectReason.FORGED, f"{SIGNATURE} is not base64") from None
        expected = [hmac.new(key, request.body, sha256).digest() for key in self._keys]
        # Compare with every key (no early exit), in constant time.
        matches = [hmac.compare_digest(given, digest) for digest in expected]
        if not any(matches):
            raise WebhookRejected(RejectReason.FORGED, "signature does not match the body")
        shop = _single(request, SHOP)
        if shop is not None and shop.lower() != self.config.shop:
            raise WebhookRejected(
                RejectReason.FORGED, f"delivered for another shop than {self.config.shop}"
            )
        topic = _single(request, TOPIC) or ""
        if not _TOPIC.match(topic):
            raise WebhookRejected(RejectReason.MALFORMED, f"{TOPIC} missing or not a topic")
        event_id = _single(request, EVENT_ID)
        webhook_id = _single(request, WEBHOOK_ID)
        for name, value in ((EVENT_ID, event_id), (WEBHOOK_ID, webhook_id)):
            if value is not None and not _ID.match(value):
                raise WebhookRejected(RejectReason.MALFORMED, f"{name} is not an id")
        if event_id:
            return WebhookDelivery(f"{topic}:{event_id}", topic)
        if webhook_id:
            return WebhookDelivery(f"webhook:{webhook_id}", topic)
        raise WebhookRejected(RejectReason.MALFORMED, f"neither {EVENT_ID} nor {WEBHOOK_ID}")

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        topic = delivery.topic
        if topic not in self.config.topics:
            log.info("shopify delivery %s of topic %s ignored", delivery.delivery_id, topic)
            return []
        try:
            payload: Any = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected(RejectReason.MALFORMED, "body is not JSON") from None
        if not isinstance(payload, Mapping):
            raise WebhookRejected(RejectReason.MALFORMED, "body is not a JSON object")
        try:
            return self._events(request, delivery, payload)
        except RecordError as error:
            raise WebhookRejected(RejectReason.MALFORMED, f"{topic}: {error}") from None

    def _events(
        self, request: WebhookRequest, delivery: WebhookDelivery, payload: Mapping[str, Any]
    ) -> list[Event]:
        topic = delivery.topic
        if topic == EMAIL_CONSENT_TOPIC:
            consent = EmailConsent.from_rest(payload)
            return [events.email_consent(consent, request.received_at, delivery.delivery_id)]
        resource = topic.split("/", 1)[0]
        if resource == "customers":
            return [events.identify(Customer.from_rest(payload))]
        if resource == "orders":
            return events.order_events(Order.from_rest(payload))
        return events.checkout_events(Checkout.from_rest(payload))

    async def aclose(self) -> None:
        return None
