"""The Shopify connector's configuration, validated when the connector is opened.

Set fields as `MAILWRIGHT_CONNECTOR_SHOPIFY_<FIELD>`, as files in
`$MAILWRIGHT_SECRETS_DIR/shopify/<field>`, or under `connectors: {shopify: …}` in the
configuration file. `access_token` (the Admin API token, for the source) and
`client_secret` (the app's client secret, for webhooks) are secrets.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from mailwright.connectors import (
    ConfigProblem,
    ConnectorConfig,
    ConnectorConfigError,
    env_variable,
    field_error,
)
from mailwright.runtime.settings import Duration

NAME = "shopify"

SUPPORTED_TOPICS = (
    "orders/create",
    "orders/paid",
    "customers/create",
    "customers/update",
    "customers_email_marketing_consent/update",
    "checkouts/create",
    "checkouts/update",
)

SHOP_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,61}\.myshopify\.com$")
API_VERSION = re.compile(r"^(\d{4}-(01|04|07|10)|unstable)$")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# Estimated GraphQL cost of one node, as Shopify calculates it (one point per object).
CUSTOMER_NODE_COST = 6
ORDER_NODE_COST = 13
LINE_ITEM_COST = 5
MAX_QUERY_COST = 1000


def order_query_cost(page_size: int, line_items: int) -> int:
    """The requested cost of one page of the orders query."""
    return 2 + page_size * (ORDER_NODE_COST + 2 + line_items * LINE_ITEM_COST)


def customer_query_cost(page_size: int) -> int:
    return 2 + page_size * CUSTOMER_NODE_COST


class ShopifyConfig(ConnectorConfig):
    """One Shopify store: where it is, how to read it, how to check its webhooks."""

    shop: str
    """The store's `myshopify.com` domain, e.g. `acme.myshopify.com`."""
    access_token: SecretStr | None = None
    """Admin API access token (`shpat_…`) with `read_customers` and `read_orders`
    (`read_all_orders` for orders older than 60 days). Needed by the source."""
    client_secret: SecretStr | None = None
    """The app's client secret, which signs webhooks. Needed by the webhook."""
    previous_client_secret: SecretStr | None = None
    """The secret before a rotation: Shopify may sign with it for up to an hour after."""
    api_version: str = "2025-07"
    """Admin API version (`YYYY-01|04|07|10`)."""
    topics: tuple[str, ...] = SUPPORTED_TOPICS
    """Webhook topics turned into events; deliveries of other topics are acknowledged
    and ignored."""
    customers_page_size: int = Field(default=100, ge=1, le=250)
    orders_page_size: int = Field(default=10, ge=1, le=250)
    order_line_items: int = Field(default=15, ge=1, le=250)
    """Line items read per order by the source (the query's cost grows with it)."""
    window_records: int = Field(default=20_000, ge=100, le=25_000)
    """Records paged through before a pull starts a new `updated_at` window (Shopify
    limits how deep a cursor may page)."""
    base_url: str | None = None
    """Where the Admin API is, instead of `https://<shop>` (a proxy; a local fake).
    Must be https, except on localhost."""
    timeout: Duration = timedelta(seconds=30)
    max_retry_wait: Duration = timedelta(minutes=2)
    """The longest a request waits on a throttle before the pull stops (its cursor kept)."""
    retries: int = Field(default=6, ge=1, le=20)

    @field_validator("shop")
    @classmethod
    def _shop_domain(cls, value: str) -> str:
        value = value.strip().lower()
        if not SHOP_DOMAIN.match(value):
            raise ValueError("must be the store's myshopify.com domain, e.g. acme.myshopify.com")
        return value

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not API_VERSION.match(value):
            raise ValueError("must look like 2025-07 (a quarterly release) or unstable")
        return value

    @field_validator("topics")
    @classmethod
    def _topics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(SUPPORTED_TOPICS))
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not supported (supported: {', '.join(SUPPORTED_TOPICS)})"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("must be https (the access token would travel in clear)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _query_costs(self) -> ShopifyConfig:
        if customer_query_cost(self.customers_page_size) > MAX_QUERY_COST:
            raise field_error(
                ShopifyConfig, "customers_page_size", "a page would cost more than 1000 points"
            )
        if order_query_cost(self.orders_page_size, self.order_line_items) > MAX_QUERY_COST:
            raise field_error(
                ShopifyConfig,
                "orders_page_size",
                f"with {self.order_line_items} line items an order page would cost more than "
                "1000 points; lower it or order_line_items",
            )
        return self

    @property
    def admin_url(self) -> str:
        return f"{self.base_url or 'https://' + self.shop}/admin/api/{self.api_version}"

    def require(self, field: str, needed_by: str) -> SecretStr:
        """The secret `field`, or `ConnectorConfigError` naming it when it is not set."""
        value = getattr(self, field)
        if not isinstance(value, SecretStr) or not value.get_secret_value():
            variable = env_variable(NAME, field)
            raise ConnectorConfigError(
                NAME,
                [ConfigProblem(field, "not set", f"required by the {needed_by}; set {variable}")],
            )
        return value
