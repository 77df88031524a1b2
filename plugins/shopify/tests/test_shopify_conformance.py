"""The Shopify connector passes the kit's source and webhook conformance suites."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from mailwright.connectors import Source, Webhook, WebhookRequest
from mailwright.testing.conformance import (
    SourceConformance,
    SourceHarness,
    WebhookConformance,
    WebhookHarness,
)
from mailwright.testing.fakes import FakeServer, Fault
from mailwright.testing.webhooks import webhook_request
from mailwright_shopify.config import ShopifyConfig, customer_query_cost, order_query_cost
from mailwright_shopify.fake import FakeShopify, rest_order, throttled
from mailwright_shopify.source import ShopifySource
from mailwright_shopify.webhook import ShopifyWebhook

MakeConfig = Callable[..., ShopifyConfig]
MAXIMUM, AVAILABLE, RESTORE = 1000.0, 2.0, 50.0


class ShopifySourceHarness:
    connector = "shopify"
    events_per_record = 1

    def __init__(
        self, fake: FakeShopify, server: FakeServer, make_config: MakeConfig, stream: str
    ) -> None:
        self.fake, self.server, self.stream = fake, server, stream
        self.config = make_config()
        if stream == "customers":
            self.page_size = self.config.customers_page_size
            self.cost = customer_query_cost(self.page_size)
        else:
            self.page_size = self.config.orders_page_size
            self.cost = order_query_cost(self.page_size, self.config.order_line_items)

    def open(self) -> Source:
        return ShopifySource(self.config)

    def seed(self, count: int) -> None:
        (self.fake.add_customers if self.stream == "customers" else self.fake.add_orders)(count)

    def change(self, count: int) -> None:
        # An edited customer is a new identify; an order is completed once, so new orders.
        if self.stream == "customers":
            self.fake.touch_customers(count)
        else:
            self.fake.add_orders(count)

    def rate_limit(self, times: int) -> float | None:
        body = throttled(self.cost, AVAILABLE, MAXIMUM, RESTORE)
        self.server.fail(Fault(200, body, times=times, path="/admin/api"))
        return (self.cost - AVAILABLE) / RESTORE

    def server_error(self, times: int) -> None:
        self.server.fail(Fault(503, {"errors": "Service Unavailable"}, times=times))

    def refuse_credentials(self) -> None:
        self.fake.token = "shpat_revoked"


class TestShopifyCustomers(SourceConformance):
    @pytest.fixture
    def source_harness(
        self, shopify: FakeShopify, shopify_server: FakeServer, make_config: MakeConfig
    ) -> SourceHarness:
        return ShopifySourceHarness(shopify, shopify_server, make_config, "customers")


class TestShopifyOrders(SourceConformance):
    @pytest.fixture
    def source_harness(
        self, shopify: FakeShopify, shopify_server: FakeServer, make_config: MakeConfig
    ) -> SourceHarness:
        return ShopifySourceHarness(shopify, shopify_server, make_config, "orders")


class ShopifyWebhookHarness:
    connector = "shopify"
    signature_headers = ("X-Shopify-Hmac-Sha256",)
    window: timedelta | None = None

    def __init__(self, fake: FakeShopify, make_config: MakeConfig) -> None:
        self.fake = fake
        self.config = make_config()

    def open(self) -> Webhook:
        return ShopifyWebhook(self.config)

    def sample_body(self, n: int = 0) -> bytes:
        body, _ = self.fake.delivery("orders/create", rest_order(n), event_id="x")
        return body

    def sign(
        self,
        body: bytes,
        *,
        signed_at: datetime,
        received_at: datetime,
        secret: str | None = None,
    ) -> WebhookRequest:
        event_id = str(int(hashlib.sha256(body).hexdigest()[:12], 16))
        headers = [
            ("X-Shopify-Topic", "orders/create"),
            ("X-Shopify-Hmac-Sha256", self.fake.sign(body, secret)),
            ("X-Shopify-Shop-Domain", self.fake.shop),
            ("X-Shopify-Webhook-Id", f"wh-{event_id}"),
            ("X-Shopify-Event-Id", event_id),
        ]
        url = "https://mailwright.example/webhooks/shopify/acme"
        return webhook_request(body, headers, url=url, received_at=received_at)

    def redeliver(self, request: WebhookRequest, *, at: datetime) -> WebhookRequest:
        return replace(request, received_at=at)


class TestShopifyWebhook(WebhookConformance):
    @pytest.fixture
    def webhook_harness(self, shopify: FakeShopify, make_config: MakeConfig) -> WebhookHarness:
        return ShopifyWebhookHarness(shopify, make_config)
