"""Provider webhooks through a connector plugin's webhook capability: verified, deduplicated
by delivery id, published; forged is 401, replayed is 200 and ignored."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import struct_pb2
from pydantic import SecretStr

from mailwright.common.v1 import event_pb2
from mailwright.connectors import (
    Connector,
    ConnectorConfig,
    RejectReason,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
)
from mailwright.plugins import get_plugins, hookimpl

from .conftest import Ingest, StartIngest
from .proxy import TcpProxy

SECRET = "acme-webhook-secret-of-some-length"


class AcmeConfig(ConnectorConfig):
    secret: SecretStr


class AcmeWebhook:
    """A shop that signs its body with HMAC-SHA256 (hex) and numbers its deliveries."""

    def __init__(self, config: AcmeConfig) -> None:
        self.secret = config.secret.get_secret_value().encode()

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        signatures = request.headers.get_all("x-acme-signature")
        expected = hmac.new(self.secret, request.body, hashlib.sha256).hexdigest()
        if len(signatures) != 1 or not hmac.compare_digest(signatures[0], expected):
            raise WebhookRejected(RejectReason.FORGED, "signature does not match")
        delivery = request.headers.get("x-acme-delivery")
        if not delivery:
            raise WebhookRejected(RejectReason.MALFORMED, "no delivery id")
        return WebhookDelivery(delivery, topic="orders/create")

    def parse(
        self, request: WebhookRequest, delivery: WebhookDelivery
    ) -> Sequence[event_pb2.Event]:
        try:
            orders = json.loads(request.body)["orders"]
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected(RejectReason.MALFORMED, "body is not an order list") from None
        events = []
        for order in orders:
            properties = struct_pb2.Struct()
            properties.update({"order_id": str(order["id"]), "total": order["total"]})
            event = event_pb2.Event(
                type=event_pb2.EVENT_TYPE_TRACK,
                event="Order Completed",
                user_id=order["customer"],
                message_id=f"acme-order-{order['id']}",
                properties=properties,
                source="acme-shop",
                backfill=bool(order.get("history")),
            )
            if "at" in order:
                event.timestamp.FromDatetime(datetime.fromisoformat(order["at"]))
            events.append(event)
        return events

    async def aclose(self) -> None:
        return None


class AcmePlugin:
    @hookimpl
    def mailwright_register_connectors(self, registry: Any) -> None:
        registry.register(Connector("acme-shop", AcmeConfig, webhook=AcmeWebhook))


@pytest.fixture
def acme() -> Iterator[None]:
    plugins = get_plugins()
    plugin = AcmePlugin()
    name = f"acme-test-{uuid.uuid4().hex[:8]}"
    plugins.register(plugin, name)
    try:
        yield
    finally:
        plugins.manager.unregister(plugin, name=name)
        plugins.connectors.discard_owned_by(name)


CONNECTORS = {"connectors": {"acme-shop": {"secret": SECRET}}}


@pytest.fixture
async def shop(acme: None, start_ingest: StartIngest) -> Ingest:
    running: Ingest = await start_ingest(**CONNECTORS)
    return running


def signed(body: bytes, delivery: str = "d-1", secret: str = SECRET) -> dict[str, str]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Acme-Signature": signature, "X-Acme-Delivery": delivery}


ORDERS = json.dumps(
    {"orders": [{"id": 1, "customer": "u1", "total": 10}, {"id": 2, "customer": "u2", "total": 5}]}
).encode()


async def test_a_signed_delivery_is_verified_parsed_and_published(shop: Ingest) -> None:
    answer = await shop.http.post(
        "/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS)
    )
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "status": "accepted",
        "delivery_id": "d-1",
        "accepted": 2,
        "duplicate": 0,
        "rejected": 0,
    }
    events = await shop.tap.wait(2)
    assert {e.source for e in events} == {"acme-shop"}
    assert {e.workspace for e in events} == {"acme"}
    assert {dict(e.properties)["total"] for e in events} == {"10", "5"}


async def test_a_forged_delivery_is_401_and_records_nothing(shop: Ingest) -> None:
    headers = signed(ORDERS, secret="not-the-secret")
    answer = await shop.http.post("/webhooks/acme-shop/acme", content=ORDERS, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"].startswith("forged")
    tampered = ORDERS.replace(b"10", b"99")
    answer = await shop.http.post(
        "/webhooks/acme-shop/acme", content=tampered, headers=signed(ORDERS)
    )
    assert answer.status_code == 401
    assert await shop.tap.quiet() == []


async def test_a_replayed_delivery_is_200_and_ignored(shop: Ingest) -> None:
    await shop.http.post("/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS))
    again = await shop.http.post("/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS))
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert len(await shop.tap.quiet()) == 2


async def test_a_redelivery_under_a_new_id_is_deduplicated_by_message_id(shop: Ingest) -> None:
    await shop.http.post("/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS))
    again = await shop.http.post(
        "/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS, delivery="d-2")
    )
    assert again.json()["duplicate"] == 2
    assert len(await shop.tap.quiet()) == 2


async def test_events_a_connector_marks_as_history_are_taken_however_old(
    shop: Ingest,
) -> None:
    """A connector marks `backfill` an event that states a past fact as of when it
    happened (a consent given long ago, told now): ingest takes it as imported history,
    past the workspace's `max_past` (30 days), where an unmarked event as old is refused
    alone; violations name each event by its place in the delivery."""
    old = (datetime.now(UTC) - timedelta(days=200)).isoformat()
    body = json.dumps(
        {
            "orders": [
                {"id": 1, "customer": "u1", "total": 10, "at": old},
                {"id": 2, "customer": "u2", "total": 5, "at": old, "history": True},
                {"id": 3, "customer": "u3", "total": 7},
            ]
        }
    ).encode()
    answer = await shop.http.post("/webhooks/acme-shop/acme", content=body, headers=signed(body))
    assert answer.status_code == 200
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (2, 1)
    events = await shop.tap.wait(2)
    assert {(e.message_id, e.backfill) for e in events} == {
        ("acme-order-2", True),
        ("acme-order-3", False),
    }


@pytest.mark.parametrize("body", [b"not json", b'{"orders": "none"}'])
async def test_an_unreadable_delivery_is_400(shop: Ingest, body: bytes) -> None:
    answer = await shop.http.post("/webhooks/acme-shop/acme", content=body, headers=signed(body))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("malformed")


@pytest.mark.parametrize(
    "path", ["/webhooks/nobody/acme", "/webhooks/files/acme", "/webhooks/acme-shop/Not_A_Workspace"]
)
async def test_unknown_connectors_and_workspaces_are_404(shop: Ingest, path: str) -> None:
    answer = await shop.http.post(path, content=ORDERS, headers=signed(ORDERS))
    assert answer.status_code == 404
    assert answer.json()["success"] is False


async def test_a_delivery_over_the_limit_is_413(shop: Ingest) -> None:
    body = b"x" * (1024 * 1024 + 1)
    answer = await shop.http.post("/webhooks/acme-shop/acme", content=body, headers=signed(body))
    assert answer.status_code == 413


async def test_bus_down_is_503_and_the_providers_retry_gets_through(
    redis_url: str, redis_namespace: str, proxy: TcpProxy, acme: None, start_ingest: StartIngest
) -> None:
    shop = await start_ingest(
        bus_url=proxy.url, kv_url=redis_url, namespace=redis_namespace, **CONNECTORS
    )
    proxy.go_down()
    answer = await shop.http.post(
        "/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS)
    )
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    proxy.come_back()
    # The provider retries until a 2xx; the first retry may meet a broken connection.
    for _ in range(5):
        retry = await shop.http.post(
            "/webhooks/acme-shop/acme", content=ORDERS, headers=signed(ORDERS)
        )
        if retry.status_code != 503:
            break
        await asyncio.sleep(0.1)
    assert retry.json()["accepted"] == 2


MAILCHIMP_SECRET = "audience-hook-secret-0123456789"
MANDRILL_KEY = "mandrill-webhook-key-0123456789"
PROVIDERS = {
    "connectors": {
        "mailchimp": {"webhook_secret": MAILCHIMP_SECRET},
        "mailchimp-transactional": {"webhook_key": MANDRILL_KEY},
    }
}


@pytest.fixture
async def providers(start_ingest: StartIngest) -> Ingest:
    running: Ingest = await start_ingest(**PROVIDERS)
    return running


async def test_mailchimp_validates_its_audience_webhook_with_a_get(providers: Ingest) -> None:
    """Mailchimp checks a new audience webhook with a GET to the URL, whose query string
    carries the secret: the plugin must see that query string to accept it."""
    good = await providers.http.get(f"/webhooks/mailchimp/acme?secret={MAILCHIMP_SECRET}")
    assert good.status_code == 200, good.text
    assert good.json()["accepted"] == 0
    wrong = await providers.http.get("/webhooks/mailchimp/acme?secret=not-it")
    assert wrong.status_code == 401
    missing = await providers.http.get("/webhooks/mailchimp/acme")
    assert missing.status_code == 401
    assert await providers.tap.quiet() == []


async def test_mailchimp_posts_are_verified_by_the_secret_in_the_query(providers: Ingest) -> None:
    fired = datetime.now(UTC).strftime("%Y-%m-%d+%H%%3A%M%%3A%S")
    body = (
        f"type=unsubscribe&fired_at={fired}&data%5Bemail%5D=ann%40example.com"
        "&data%5Blist_id%5D=abc123"
    ).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused = await providers.http.post(
        "/webhooks/mailchimp/acme?secret=not-it", content=body, headers=form
    )
    assert refused.status_code == 401
    answer = await providers.http.post(
        f"/webhooks/mailchimp/acme?secret={MAILCHIMP_SECRET}", content=body, headers=form
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] >= 1
    events = await providers.tap.quiet()
    assert [event.event for event in events] == ["Email Unsubscribed"]
    assert events[0].source == "mailchimp"


async def test_mandrill_validates_its_webhook_with_a_head(providers: Ingest) -> None:
    answer = await providers.http.head("/webhooks/mailchimp-transactional/acme")
    assert answer.status_code == 200
    assert answer.content == b""
    assert await providers.tap.quiet() == []


async def test_a_get_to_a_connector_without_validation_is_refused(shop: Ingest) -> None:
    answer = await shop.http.get("/webhooks/acme-shop/acme")
    assert answer.status_code == 401
    assert await shop.tap.quiet() == []
