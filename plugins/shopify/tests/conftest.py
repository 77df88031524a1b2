"""A fake Shopify on a local port, and the connector configured against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.fake import FakeShopify

MakeConfig = Callable[..., ShopifyConfig]


@pytest.fixture
def shopify() -> FakeShopify:
    return FakeShopify()


@pytest.fixture
def shopify_server(shopify: FakeShopify, fake_server: Callable[..., FakeServer]) -> FakeServer:
    return fake_server(shopify.app())


@pytest.fixture
def make_config(shopify: FakeShopify, request: pytest.FixtureRequest) -> MakeConfig:
    """The connector's configuration for the fake store; keyword arguments override.

    The fake server is started only for a test that uses the Admin API (the source)."""

    def make(**overrides: Any) -> ShopifyConfig:
        server: FakeServer | None = None
        if "base_url" not in overrides:
            server = request.getfixturevalue("shopify_server")
        values: dict[str, Any] = {
            "shop": shopify.shop,
            "access_token": shopify.token,
            "client_secret": shopify.client_secret,
            "base_url": server.url if server else None,
            "customers_page_size": 7,
            "orders_page_size": 5,
            "order_line_items": 10,
        }
        values.update(overrides)
        return load_config("shopify", ShopifyConfig, values, environ={})

    return make
