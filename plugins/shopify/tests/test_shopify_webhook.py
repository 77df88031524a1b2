"""Shopify webhooks: each topic becomes the documented events; deliveries are checked
against the shop, the secret (and the one before a rotation) and the topics subscribed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf import json_format

from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event
from mailwright.connectors import RejectReason, WebhookRejected, WebhookRequest
from mailwright.testing.webhooks import IngestDesk, replacing_header, webhook_request
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.fake import (
    FakeShopify,
    rest_checkout,
    rest_customer,
    rest_email_consent,
    rest_order,
)
from mailwright_shopify.webhook import ShopifyWebhook

MakeConfig = Callable[..., ShopifyConfig]
CONSENT = "customers_email_marketing_consent/update"
DELIVERED_AT = datetime(2025, 3, 1, 16, 30, tzinfo=UTC)


@pytest.fixture
def make_config(make_config: MakeConfig) -> MakeConfig:
    # Webhooks need no Admin API, hence no fake server.
    return lambda **overrides: make_config(**{"base_url": None, **overrides})


def delivery(
    fake: FakeShopify, topic: str, payload: dict[str, Any], event_id: str = "1001", **options: Any
) -> WebhookRequest:
    body, headers = fake.delivery(topic, payload, event_id=event_id, **options)
    return webhook_request(
        body, headers, url="https://mw.example/webhooks/shopify/acme", received_at=DELIVERED_AT
    )


async def receive(config: ShopifyConfig, request: WebhookRequest) -> Sequence[Event]:
    return await IngestDesk().receive(ShopifyWebhook(config), request)


def properties(event: Event) -> dict[str, Any]:
    return json_format.MessageToDict(event.properties)


def identities(event: Event) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in event.identities}


def traits(event: Event) -> dict[str, Any]:
    return json_format.MessageToDict(event.traits)


async def test_an_order_becomes_order_completed_with_products_and_revenue(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    [event] = await receive(make_config(), delivery(shopify, "orders/create", rest_order(1)))
    assert event.type == EVENT_TYPE_TRACK
    assert event.event == "Order Completed"
    assert event.message_id == "shopify:order:820982911946154509:completed"
    assert event.source == "shopify"
    props = properties(event)
    assert props["order_id"] == "820982911946154509"
    assert (props["total"], props["revenue"], props["shipping"]) == ("54.80", "49.90", "9.90")
    assert (props["discount"], props["coupon"], props["currency"]) == ("5.00", "SPRING", "EUR")
    assert props["products"] == [
        {
            "product_id": "632910392",
            "variant": "39072856",
            "sku": "IPOD2008GREEN",
            "name": "IPod Nano - 8gb - green",
            "price": "24.95",
            "quantity": 2.0,
        }
    ]
    assert event.anonymous_id == "shopify:customer:7001"
    assert identities(event) == {
        ("shopify:customer", "7001"),
        ("email", "customer1@example.com"),
        ("phone", "+33612000001"),
    }
    assert event.timestamp.ToJsonString() == "2025-03-01T15:00:00Z"


async def test_orders_create_and_orders_paid_give_the_same_message_id(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    [created] = await receive(make_config(), delivery(shopify, "orders/create", rest_order(2)))
    [paid] = await receive(make_config(), delivery(shopify, "orders/paid", rest_order(2)))
    assert created.message_id == paid.message_id


async def test_a_cancelled_order_also_gives_order_cancelled(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    order = {**rest_order(3), "cancelled_at": "2025-03-02T10:00:00Z"}
    events = await receive(make_config(), delivery(shopify, "orders/create", order))
    assert [e.event for e in events] == ["Order Completed", "Order Cancelled"]


async def test_a_customer_becomes_an_identify_with_traits(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    [event] = await receive(make_config(), delivery(shopify, "customers/update", rest_customer(4)))
    assert event.type == EVENT_TYPE_IDENTIFY
    traits = json_format.MessageToDict(event.traits)
    assert traits["email"] == "customer4@example.com"
    assert (traits["first_name"], traits["last_name"]) == ("Ada4", "Lovelace")
    assert traits["address"] == {"city": "Paris", "country": "FR", "postal_code": "75001"}
    assert event.message_id == "shopify:customer:7004:2025-03-01T15:00:00+00:00"
    # Since API 2025-01 the payload has no tags nor consent: the event states none, so
    # what the source's pull (GraphQL, which has both) stored is kept.
    assert "tags" not in traits
    assert "email_marketing" not in traits


async def test_a_customer_of_an_older_api_version_also_gives_its_tags_and_consent(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    older = {
        **rest_customer(4),
        "tags": "vip, newsletter",
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
    }
    [event] = await receive(make_config(), delivery(shopify, "customers/update", older))
    traits = json_format.MessageToDict(event.traits)
    assert traits["tags"] == ["vip", "newsletter"]
    assert traits["email_marketing"] == "subscribed"


async def test_each_customer_update_is_a_new_identify(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    first = rest_customer(5, updated_at="2025-03-01T10:00:00Z")
    later = rest_customer(5, updated_at="2025-03-01T11:00:00Z")
    [one] = await receive(make_config(), delivery(shopify, "customers/update", first, "1"))
    [two] = await receive(make_config(), delivery(shopify, "customers/update", later, "2"))
    assert one.message_id != two.message_id


@pytest.mark.parametrize("state", ["subscribed", "unsubscribed", "pending"])
async def test_an_email_consent_update_states_the_consent_as_of_its_time(
    shopify: FakeShopify, make_config: MakeConfig, state: str
) -> None:
    payload = rest_email_consent(9, state, "2025-03-01T10:00:00-05:00")
    [event] = await receive(make_config(), delivery(shopify, CONSENT, payload))
    assert event.type == EVENT_TYPE_IDENTIFY
    assert event.source == "shopify"
    assert traits(event) == {
        "email": "customer9@example.com",
        "email_marketing": state,
        "email_consent": state,
    }
    assert event.anonymous_id == "shopify:customer:7009"
    assert identities(event) == {
        ("shopify:customer", "7009"),
        ("email", "customer9@example.com"),
    }
    assert event.timestamp.ToJsonString() == "2025-03-01T15:00:00Z"
    assert event.message_id == (
        f"shopify:customer:7009:email_consent:2025-03-01T15:00:00+00:00:{state}"
    )


@pytest.mark.parametrize(
    ("stated", "history"),
    [
        ("2025-03-01T16:00:00Z", False),  # half an hour before the delivery: live
        ("2025-03-01T15:00:00Z", True),  # an hour and a half before
        ("2023-06-01T09:00:00Z", True),  # imported with the date it was given
        (None, False),  # no date: as of the delivery
    ],
)
async def test_a_consent_stated_as_of_long_before_its_delivery_is_history(
    shopify: FakeShopify, make_config: MakeConfig, stated: str | None, history: bool
) -> None:
    """Ingest holds live events to the workspace's `max_past` (30 days by default, an
    hour at the least) but takes `backfill` events however old: a consent dated more than
    an hour before its delivery is marked so, lest an old unsubscribe be refused."""
    payload = rest_email_consent(13, "unsubscribed", stated)
    [event] = await receive(make_config(), delivery(shopify, CONSENT, payload))
    assert event.backfill is history


@pytest.mark.parametrize("state", ["not_subscribed", "redacted", "invalid"])
async def test_a_state_that_is_no_consent_changes_no_consent(
    shopify: FakeShopify, make_config: MakeConfig, state: str
) -> None:
    # not_subscribed is Shopify's state for a customer who never subscribed: reading it
    # as an unsubscribe would withdraw a consent given outside Shopify.
    payload = rest_email_consent(10, state, consent_updated_at=None)
    [event] = await receive(make_config(), delivery(shopify, CONSENT, payload))
    assert "email_consent" not in traits(event)
    assert traits(event)["email_marketing"] == state


async def test_an_email_consent_without_its_time_is_as_of_the_delivery(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    payload = rest_email_consent(11, "unsubscribed", consent_updated_at=None)
    [event] = await receive(make_config(), delivery(shopify, CONSENT, payload, "5501"))
    assert event.timestamp.ToDatetime(tzinfo=UTC) == DELIVERED_AT
    assert traits(event)["email_consent"] == "unsubscribed"
    assert event.message_id == (
        f"shopify:customer:7011:email_consent:delivery:{CONSENT}:5501:unsubscribed"
    )


@pytest.mark.parametrize("email", [None, "", "  "])
async def test_an_email_consent_without_an_address_is_known_by_the_customer_id(
    shopify: FakeShopify, make_config: MakeConfig, email: str | None
) -> None:
    payload = {**rest_email_consent(12, "unsubscribed"), "email_address": email}
    [event] = await receive(make_config(), delivery(shopify, CONSENT, payload))
    assert identities(event) == {("shopify:customer", "7012")}
    assert event.anonymous_id == "shopify:customer:7012"
    assert traits(event) == {"email_marketing": "unsubscribed", "email_consent": "unsubscribed"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": None}, "customer_id: missing"),
        ({"customer_id": "7001; DROP TABLE"}, "customer_id: not a Shopify id"),
        ({"customer_id": True}, "customer_id: missing"),
        ({"email_marketing_consent": None}, "email_marketing_consent: missing"),
        ({"email_marketing_consent": {"state": None}}, "email_marketing_consent.state: missing"),
        (
            {"email_marketing_consent": {"state": "subscribed", "consent_updated_at": "today"}},
            "email_marketing_consent.consent_updated_at: not an ISO 8601 time",
        ),
    ],
)
async def test_an_unreadable_email_consent_is_malformed_naming_the_field(
    shopify: FakeShopify, make_config: MakeConfig, change: dict[str, Any], field: str
) -> None:
    request = delivery(shopify, CONSENT, {**rest_email_consent(13), **change})
    with pytest.raises(WebhookRejected) as caught:
        await receive(make_config(), request)
    assert caught.value.reason is RejectReason.MALFORMED
    assert caught.value.detail == f"{CONSENT}: {field}"


async def test_an_email_consent_without_a_customer_id_is_malformed(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    payload = rest_email_consent(14)
    del payload["customer_id"]
    with pytest.raises(WebhookRejected) as caught:
        await receive(make_config(), delivery(shopify, CONSENT, payload))
    assert caught.value.reason is RejectReason.MALFORMED
    assert "customer_id" in caught.value.detail


async def test_a_redelivered_email_consent_is_a_duplicate(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    desk, webhook = IngestDesk(), ShopifyWebhook(make_config())
    payload = rest_email_consent(15, "unsubscribed")
    assert await desk.receive(webhook, delivery(shopify, CONSENT, payload, "6601"))
    with pytest.raises(WebhookRejected) as caught:
        await desk.receive(webhook, delivery(shopify, CONSENT, payload, "6601"))
    assert caught.value.reason is RejectReason.REPLAYED


async def test_a_retried_email_consent_without_its_time_keeps_its_message_id(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    # Past ingest's delivery dedup (its memory expired), the event's own id still matches.
    payload = rest_email_consent(16, "unsubscribed", consent_updated_at=None)
    first = delivery(shopify, CONSENT, payload, "6602")
    retry = replace(first, received_at=DELIVERED_AT + timedelta(hours=3))
    [one] = await receive(make_config(), first)
    [two] = await receive(make_config(), retry)
    assert one.message_id == two.message_id


def test_email_consent_is_among_the_topics_followed_by_default(make_config: MakeConfig) -> None:
    assert CONSENT in make_config().topics


async def test_an_open_checkout_becomes_checkout_started_with_its_recovery_url(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    [event] = await receive(make_config(), delivery(shopify, "checkouts/update", rest_checkout(6)))
    assert event.event == "Checkout Started"
    props = properties(event)
    assert (props["value"], props["total"], props["currency"]) == ("24.95", "29.95", "EUR")
    assert props["checkout_url"].endswith("/recover")
    assert props["products"][0]["sku"] == "IPOD2008GREEN"
    assert ("email", "customer6@example.com") in identities(event)


async def test_a_completed_checkout_gives_no_event(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    payload = rest_checkout(7, completed=True)
    assert await receive(make_config(), delivery(shopify, "checkouts/update", payload)) == []


async def test_a_guest_checkout_is_known_by_its_token_and_email(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    payload = {**rest_checkout(8), "customer": None}
    [event] = await receive(make_config(), delivery(shopify, "checkouts/create", payload))
    assert event.anonymous_id == f"shopify:checkout:{payload['token']}"
    assert identities(event) == {("email", "customer8@example.com")}


async def test_a_topic_not_subscribed_is_acknowledged_without_events(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    config = make_config(topics=["orders/create"])
    assert await receive(config, delivery(shopify, "customers/create", rest_customer(1))) == []


@pytest.mark.parametrize(
    "topic", ["customer.tags_added", "customers_marketing_consent/update", "app/uninstalled"]
)
async def test_a_signed_delivery_of_any_shopify_topic_is_acknowledged(
    shopify: FakeShopify, make_config: MakeConfig, topic: str
) -> None:
    # Shopify's topics include dotted ones (customer.tags_added, since 2025-01 the only
    # webhook carrying a customer's tags): refusing one makes Shopify retry it for hours.
    payload = {"customerId": "gid://shopify/Customer/7001", "tags": ["vip"]}
    assert await receive(make_config(), delivery(shopify, topic, payload)) == []


async def test_the_delivery_id_is_the_topic_and_event_id(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    webhook = ShopifyWebhook(make_config())
    create = await webhook.verify(delivery(shopify, "orders/create", rest_order(1), "77"))
    paid = await webhook.verify(delivery(shopify, "orders/paid", rest_order(1), "77"))
    assert create.delivery_id == "orders/create:77"
    assert paid.delivery_id == "orders/paid:77"
    assert create.topic == "orders/create"


async def test_without_an_event_id_the_webhook_id_is_the_delivery_id(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    request = delivery(shopify, "orders/create", rest_order(1), webhook_id="b54557e4")
    headers = [(k, v) for k, v in request.headers.pairs() if k != "X-Shopify-Event-Id"]
    verified = await ShopifyWebhook(make_config()).verify(webhook_request(request.body, headers))
    assert verified.delivery_id == "webhook:b54557e4"


async def test_a_delivery_signed_with_the_previous_secret_is_accepted_after_a_rotation(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    config = make_config(client_secret="new-secret", previous_client_secret=shopify.client_secret)
    assert await receive(config, delivery(shopify, "orders/create", rest_order(1)))


async def test_a_delivery_for_another_shop_is_refused(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    request = replacing_header(
        delivery(shopify, "orders/create", rest_order(1)),
        "X-Shopify-Shop-Domain",
        "rival.myshopify.com",
    )
    with pytest.raises(WebhookRejected) as caught:
        await receive(make_config(), request)
    assert caught.value.reason is RejectReason.FORGED


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total_price": "lots"}, "total_price"),
        ({"currency": None}, "currency"),
        ({"id": "12; DROP TABLE"}, "id"),
        ({"updated_at": "yesterday"}, "updated_at"),
    ],
)
async def test_an_unreadable_order_is_malformed_naming_the_field(
    shopify: FakeShopify, make_config: MakeConfig, change: dict[str, Any], field: str
) -> None:
    request = delivery(shopify, "orders/create", {**rest_order(1), **change})
    with pytest.raises(WebhookRejected) as caught:
        await receive(make_config(), request)
    assert caught.value.reason is RejectReason.MALFORMED
    assert field in caught.value.detail


async def test_a_signature_that_is_not_base64_is_forged(
    shopify: FakeShopify, make_config: MakeConfig
) -> None:
    request = replacing_header(
        delivery(shopify, "orders/create", rest_order(1)), "X-Shopify-Hmac-Sha256", "not base64!"
    )
    with pytest.raises(WebhookRejected) as caught:
        await receive(make_config(), request)
    assert caught.value.reason is RejectReason.FORGED


def test_the_webhook_needs_the_client_secret(make_config: MakeConfig) -> None:
    from mailwright.connectors import ConnectorConfigError

    with pytest.raises(ConnectorConfigError) as caught:
        ShopifyWebhook(make_config(client_secret=None))
    assert caught.value.field == "client_secret"
    assert "MAILWRIGHT_CONNECTOR_SHOPIFY_CLIENT_SECRET" in str(caught.value)
