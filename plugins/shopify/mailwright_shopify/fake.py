"""A local Shopify, as documented, for the connector's tests, demos and benchmark.

`FakeShopify.app()` is a Starlette app serving `POST /admin/api/<version>/graphql.json`:

- `X-Shopify-Access-Token` must be the store's token, else 401
  `{"errors": "[API] Invalid API key or access token (...)"}`;
- `customers` and `orders` connections: `first` (1 to 250), `after` (opaque cursor),
  `query` (`updated_at:>='…'` and the like), `sortKey: UPDATED_AT`, answered with
  `nodes` and `pageInfo { hasNextPage endCursor }`, keyset-paginated by
  (`updatedAt`, id) like Shopify's cursors, only the selected fields of each node;
- `customersCount` / `ordersCount` with `{count precision}`;
- the query-cost leaky bucket: `extensions.cost` on every answer, a query whose
  requested cost is over 1000 refused with `MAX_COST_EXCEEDED`, and one that costs more
  than is available answered `{"errors": [{"message": "Throttled", "extensions":
  {"code": "THROTTLED"}}]}` (HTTP 200, as the GraphQL Admin API does).

It also builds signed webhook deliveries (`delivery`) with REST-shaped payloads, and the
payload of `customers_email_marketing_consent/update` (`rest_email_consent`).
Faults (429 with Retry-After, 5xx) are injected by `mailwright.testing.fakes.FakeServer`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailwright.testing.fakes import decode_cursor, encode_cursor

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
# Shopify's answer to a wrong token (a message, not a credential).
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105
CUSTOMER_NODE_COST = 6
ORDER_NODE_COST = 15
LINE_ITEM_COST = 5
MAX_COST = 1000

_FILTER = re.compile(r"updated_at:(>=|<=|>|<)'?([0-9T:.+\-Z]+)'?")
_ROOT = re.compile(r"\b(customers|orders)(Count)?\s*\(")


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def throttled(requested: float, available: float, maximum: float, rate: float) -> dict[str, Any]:
    """The body of a throttled GraphQL answer."""
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            }
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": maximum,
                    "currentlyAvailable": available,
                    "restoreRate": rate,
                },
            }
        },
    }


class FakeShopify:
    """One store's data and the Admin GraphQL API and webhooks over it."""

    def __init__(
        self,
        *,
        shop: str = "acme.myshopify.com",
        token: str = "shpat_fake_token",  # noqa: S107 (the fake store's own)
        client_secret: str = "fake-client-secret",  # noqa: S107
        api_version: str = "2025-07",
        bucket_size: float = 1_000_000.0,
        restore_rate: float = 1_000_000.0,
        clock: Callable[[], float] = time.monotonic,
        line_items_per_order: int = 3,
    ) -> None:
        self.shop = shop
        self.token = token
        self.client_secret = client_secret
        self.api_version = api_version
        self.bucket_size = bucket_size
        self.restore_rate = restore_rate
        self.clock = clock
        self.line_items_per_order = line_items_per_order
        self.customers: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self._available = bucket_size
        self._stamp = clock()
        self._now = EPOCH
        self._lock = threading.Lock()

    # -- data ---------------------------------------------------------------------------

    def _tick(self) -> str:
        self._now += timedelta(seconds=1)
        return iso(self._now)

    def customer_node(self, n: int) -> dict[str, Any]:
        stamp = self._tick()
        return {
            "id": gid("Customer", 7000 + n),
            "firstName": f"Ada{n}",
            "lastName": "Lovelace",
            "locale": "en",
            "state": "ENABLED",
            "tags": ["vip"] if n % 3 == 0 else [],
            "createdAt": stamp,
            "updatedAt": stamp,
            "numberOfOrders": str(n % 5),
            "amountSpent": {"amount": f"{n * 10}.50", "currencyCode": "EUR"},
            "defaultEmailAddress": {
                "emailAddress": f"customer{n}@example.com",
                "marketingState": "SUBSCRIBED" if n % 2 else "NOT_SUBSCRIBED",
            },
            "defaultPhoneNumber": {"phoneNumber": f"+33612{n:06d}"},
            "defaultAddress": {
                "city": "Paris",
                "provinceCode": None,
                "countryCodeV2": "FR",
                "zip": "75001",
            },
        }

    def order_node(self, n: int) -> dict[str, Any]:
        stamp = self._tick()
        quantities = [1 + k % 2 for k in range(self.line_items_per_order)]
        items: list[dict[str, Any]] = [
            {
                "name": f"Tea {k}",
                "sku": f"TEA-{k}",
                "quantity": quantities[k],
                "originalUnitPriceSet": {"shopMoney": {"amount": "12.50", "currencyCode": "EUR"}},
                "product": {"id": gid("Product", 100 + k), "productType": "Tea"},
                "variant": {"id": gid("ProductVariant", 500 + k)},
            }
            for k in range(self.line_items_per_order)
        ]
        subtotal = Decimal("12.50") * sum(quantities)
        total = subtotal + Decimal("4.90")

        def bag(amount: Decimal) -> dict[str, Any]:
            return {"shopMoney": {"amount": str(amount), "currencyCode": "EUR"}}

        return {
            "id": gid("Order", 9000 + n),
            "name": f"#{1000 + n}",
            "email": f"customer{n}@example.com",
            "phone": None,
            "createdAt": stamp,
            "updatedAt": stamp,
            "processedAt": stamp,
            "cancelledAt": None,
            "displayFinancialStatus": "PAID",
            "currencyCode": "EUR",
            "discountCodes": [],
            "customer": {"id": gid("Customer", 7000 + n)},
            "totalPriceSet": bag(total),
            "subtotalPriceSet": bag(subtotal),
            "totalTaxSet": bag(Decimal("0.00")),
            "totalShippingPriceSet": bag(Decimal("4.90")),
            "totalDiscountsSet": bag(Decimal("0.00")),
            "lineItems": {"nodes": items},
        }

    def add_customers(self, count: int) -> None:
        with self._lock:
            start = len(self.customers)
            self.customers.extend(self.customer_node(start + n) for n in range(count))

    def add_orders(self, count: int) -> None:
        with self._lock:
            start = len(self.orders)
            self.orders.extend(self.order_node(start + n) for n in range(count))

    def touch_customers(self, count: int) -> None:
        """Edit the `count` least recently updated customers (a new name, a newer time)."""
        with self._lock:
            oldest = sorted(self.customers, key=lambda c: (c["updatedAt"], c["id"]))[:count]
            for customer in oldest:
                customer["lastName"] = customer["lastName"] + "-King"
                customer["updatedAt"] = self._tick()

    # -- the Admin GraphQL API ----------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/admin/api/{version}/graphql.json", self._graphql, methods=["POST"])]
        )

    async def _graphql(self, request: Request) -> Response:
        if request.path_params["version"] != self.api_version:
            return JSONResponse({"errors": "Not Found"}, status_code=404)
        if request.headers.get("x-shopify-access-token") != self.token:
            return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
        try:
            body = json.loads(await request.body())
            query = body["query"]
            variables = body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"errors": "Bad Request"}, status_code=400)
        if not isinstance(query, str) or not isinstance(variables, dict):
            return JSONResponse({"errors": "Bad Request"}, status_code=400)
        with self._lock:
            return JSONResponse(self._answer(query, variables))

    def _answer(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        match = _ROOT.search(query)
        if match is None:
            return _graphql_error("Field doesn't exist on type 'QueryRoot'", "undefinedField")
        root, counting = match.group(1), bool(match.group(2))
        records = self.customers if root == "customers" else self.orders
        selected = _filter(records, variables.get("query"))
        if counting:
            return self._charge(
                1, 1, {f"{root}Count": {"count": len(selected), "precision": "EXACT"}}
            )
        problem = _page_problem(query, variables)
        if problem:
            return _graphql_error(problem, "argumentLiteralsIncompatible")
        first = int(variables["first"])
        per_node = self._node_cost(root, variables)
        requested = 2 + first * per_node
        if requested > MAX_COST:
            return _graphql_error(
                f"Query cost is {requested}, which exceeds the single query max cost limit "
                f"({MAX_COST}).",
                "MAX_COST_EXCEEDED",
            )
        ordered = sorted(selected, key=lambda r: (r["updatedAt"], _number(r["id"])))
        after = variables.get("after")
        if after is not None:
            key = decode_cursor(str(after))
            if key is None or "|" not in key:
                return _graphql_error("Invalid cursor for current pagination.", "badCursor")
            stamp, number = key.split("|", 1)
            ordered = [
                r for r in ordered if (r["updatedAt"], _number(r["id"])) > (stamp, int(number))
            ]
        page = ordered[:first]
        nodes = [_select(query, self._shape(root, node, variables)) for node in page]
        last = page[-1] if page else None
        data = {
            root: {
                "nodes": nodes,
                "pageInfo": {
                    "hasNextPage": len(ordered) > first,
                    "endCursor": encode_cursor(f"{last['updatedAt']}|{_number(last['id'])}")
                    if last
                    else None,
                },
            }
        }
        return self._charge(requested, 2 + len(page) * per_node, data)

    def _node_cost(self, root: str, variables: Mapping[str, Any]) -> int:
        if root == "customers":
            return CUSTOMER_NODE_COST
        line_items = int(variables.get("lineItems") or 0)
        return ORDER_NODE_COST + line_items * LINE_ITEM_COST

    def _shape(
        self, root: str, node: dict[str, Any], variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        if root != "orders":
            return node
        limit = int(variables.get("lineItems") or 0)
        return {**node, "lineItems": {"nodes": node["lineItems"]["nodes"][:limit]}}

    def _charge(self, requested: float, actual: float, data: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        self._available = min(
            self.bucket_size, self._available + (now - self._stamp) * self.restore_rate
        )
        self._stamp = now
        if requested > self._available:
            return throttled(requested, self._available, self.bucket_size, self.restore_rate)
        self._available -= actual
        return {
            "data": data,
            "extensions": {
                "cost": {
                    "requestedQueryCost": requested,
                    "actualQueryCost": actual,
                    "throttleStatus": {
                        "maximumAvailable": self.bucket_size,
                        "currentlyAvailable": self._available,
                        "restoreRate": self.restore_rate,
                    },
                }
            },
        }

    # -- webhooks -----------------------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.client_secret).encode()
        return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()

    def delivery(
        self,
        topic: str,
        payload: Mapping[str, Any],
        *,
        event_id: str,
        webhook_id: str | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, list[tuple[str, str]]]:
        """The body and headers of a webhook delivery, as Shopify sends them."""
        body = json.dumps(payload).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("X-Shopify-Topic", topic),
            ("X-Shopify-Hmac-Sha256", self.sign(body, secret)),
            ("X-Shopify-Shop-Domain", self.shop),
            ("X-Shopify-API-Version", self.api_version),
            ("X-Shopify-Webhook-Id", webhook_id or f"wh-{event_id}-{topic.replace('/', '-')}"),
            ("X-Shopify-Event-Id", event_id),
            ("X-Shopify-Triggered-At", iso(self._now)),
        ]
        return body, headers


def rest_customer(n: int, updated_at: str = "2025-03-01T10:00:00-05:00") -> dict[str, Any]:
    """A customer as webhooks carry it (REST shape, API 2025-01 on: without `tags`, which
    `customer.tags_added` and `customer.tags_removed` report, nor `email_marketing_consent`,
    which `customers_email_marketing_consent/update` reports — see `rest_email_consent`)."""
    return {
        "id": 7000 + n,
        "email": f"Customer{n}@Example.com",
        "first_name": f"Ada{n}",
        "last_name": "Lovelace",
        "phone": f"+33612{n:06d}",
        "created_at": "2025-02-01T09:00:00-05:00",
        "updated_at": updated_at,
        "state": "enabled",
        "currency": "EUR",
        "default_address": {"city": "Paris", "country_code": "FR", "zip": "75001"},
    }


def rest_email_consent(
    n: int,
    state: str = "subscribed",
    consent_updated_at: str | None = "2025-03-01T10:00:00-05:00",
) -> dict[str, Any]:
    """What `customers_email_marketing_consent/update` carries (API 2025-01 on): the
    customer's id, the address the consent is for (null or empty when the customer has
    none) and the consent itself; `consent_updated_at` is null for a customer who never
    gave one (`not_subscribed`)."""
    return {
        "customer_id": 7000 + n,
        "email_address": f"Customer{n}@Example.com",
        "email_marketing_consent": {
            "state": state,
            "opt_in_level": "single_opt_in" if state != "not_subscribed" else None,
            "consent_updated_at": consent_updated_at,
        },
    }


def rest_order(n: int, *, financial_status: str = "paid") -> dict[str, Any]:
    """An order as orders/create and orders/paid carry it (REST shape)."""
    return {
        "id": 820982911946154508 + n,
        "name": f"#{1000 + n}",
        "email": f"customer{n}@example.com",
        "created_at": "2025-03-01T10:00:00-05:00",
        "updated_at": "2025-03-01T10:00:05-05:00",
        "processed_at": "2025-03-01T10:00:00-05:00",
        "cancelled_at": None,
        "currency": "EUR",
        "total_price": "54.80",
        "subtotal_price": "49.90",
        "total_tax": "0.00",
        "total_discounts": "5.00",
        "total_shipping_price_set": {
            "shop_money": {"amount": "9.90", "currency_code": "EUR"},
            "presentment_money": {"amount": "9.90", "currency_code": "EUR"},
        },
        "financial_status": financial_status,
        "discount_codes": [{"code": "SPRING", "amount": "5.00", "type": "fixed_amount"}],
        "customer": rest_customer(n),
        "line_items": [
            {
                "id": 466157049 + n,
                "product_id": 632910392,
                "variant_id": 39072856,
                "sku": "IPOD2008GREEN",
                "name": "IPod Nano - 8gb - green",
                "title": "IPod Nano - 8gb",
                "quantity": 2,
                "price": "24.95",
                "vendor": "Apple",
            }
        ],
    }


def rest_checkout(n: int, *, completed: bool = False) -> dict[str, Any]:
    """An abandoned-checkout payload as checkouts/create and checkouts/update carry it."""
    token = hashlib.sha256(f"checkout-{n}".encode()).hexdigest()[:32]
    return {
        "id": 450789469 + n,
        "token": token,
        "cart_token": f"cart-{n}",
        "email": f"customer{n}@example.com",
        "created_at": "2025-03-02T08:00:00Z",
        "updated_at": "2025-03-02T08:05:00Z",
        "completed_at": "2025-03-02T08:10:00Z" if completed else None,
        "currency": "EUR",
        "presentment_currency": "EUR",
        "subtotal_price": "24.95",
        "total_price": "29.95",
        "abandoned_checkout_url": f"https://acme.myshopify.com/1/checkouts/{token}/recover",
        "discount_codes": [],
        "customer": rest_customer(n),
        "line_items": [
            {
                "product_id": 632910392,
                "variant_id": 39072856,
                "sku": "IPOD2008GREEN",
                "title": "IPod Nano - 8gb",
                "quantity": 1,
                "price": "24.95",
            }
        ],
    }


def _number(identifier: str) -> int:
    return int(identifier.rsplit("/", 1)[-1])


def _filter(records: list[dict[str, Any]], search: object) -> list[dict[str, Any]]:
    if not search:
        return list(records)
    conditions = _FILTER.findall(str(search))
    if not conditions:
        return list(records)
    kept = []
    for record in records:
        stamp = datetime.fromisoformat(record["updatedAt"].replace("Z", "+00:00"))
        ok = True
        for operator, value in conditions:
            bound = datetime.fromisoformat(value.replace("Z", "+00:00"))
            ok &= {
                ">=": stamp >= bound,
                ">": stamp > bound,
                "<=": stamp <= bound,
                "<": stamp < bound,
            }[operator]
        if ok:
            kept.append(record)
    return kept


def _page_problem(query: str, variables: Mapping[str, Any]) -> str | None:
    if not re.search(r"pageInfo\s*\{[^}]*hasNextPage[^}]*endCursor", query):
        return "the connection must select pageInfo { hasNextPage endCursor }"
    if "sortKey: UPDATED_AT" not in query:
        return "expected sortKey: UPDATED_AT"
    first = variables.get("first")
    if not isinstance(first, int) or not 1 <= first <= 250:
        return "first must be between 1 and 250"
    return None


def _select(query: str, node: dict[str, Any]) -> dict[str, Any]:
    # Roughly GraphQL's field selection: a field the query never names is left out.
    return {k: v for k, v in node.items() if re.search(rf"\b{k}\b", query)}


def _graphql_error(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
