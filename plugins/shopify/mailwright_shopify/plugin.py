"""The plugin module named by the `mailwright` entry point: registers the Shopify connector."""

from __future__ import annotations

from mailwright.connectors import Connector, ConnectorRegistry
from mailwright.plugins import hookimpl
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.source import ShopifySource
from mailwright_shopify.webhook import ShopifyWebhook


@hookimpl
def mailwright_register_connectors(registry: ConnectorRegistry) -> None:
    registry.register(
        Connector(
            name="shopify",
            config_model=ShopifyConfig,
            description="Shopify: signed webhooks (orders, customers, checkouts) and an "
            "incremental Admin GraphQL import of customers and orders.",
            source=ShopifySource,
            webhook=ShopifyWebhook,
        )
    )
