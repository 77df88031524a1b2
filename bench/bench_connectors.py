"""Connectors' own cost, against bare loops over the same fakes in the same run.

- **Source import**: records/s pulled through `ShopifySource` (customers, GraphQL) and
  `HubSpotSource` (contacts, list endpoint) from their fake servers on a local port,
  page by page to the end, turned into events — against a bare `httpx` loop fetching the
  same pages with the same requests and decoding their JSON.
- **Webhook verify + parse**: requests/s through `ShopifyWebhook` and `HubSpotWebhook`
  (`verify` then `parse` of a signed delivery) — against a bare loop doing the HMAC with
  `hmac.compare_digest` and `json.loads` of the same bodies.

The fake servers run in a thread of their own (uvicorn); client and server share the
process, as they do for both measurements.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.common import Result
from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright.testing.webhooks import webhook_request
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.fake import FakeHubSpot
from mailwright_hubspot.source import HubSpotSource
from mailwright_hubspot.webhook import HubSpotWebhook
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.fake import FakeShopify, rest_order
from mailwright_shopify.source import STREAMS as SHOPIFY_STREAMS
from mailwright_shopify.source import ShopifySource
from mailwright_shopify.webhook import ShopifyWebhook

PAGE = 100
WEBHOOK_URL = "https://mw.example/webhooks/hubspot/acme"


def best(times: int, measure: Callable[[], Awaitable[float]]) -> float:
    """The best of `times` runs of an async measurement (a rate: higher is better)."""

    async def runs() -> float:
        return max([await measure() for _ in range(times)])

    return asyncio.run(runs())


# -- sources ------------------------------------------------------------------------------


async def shopify_connector(config: ShopifyConfig, count: int) -> float:
    source = ShopifySource(config)
    started = time.perf_counter()
    pulled = sum([len(batch.events) async for batch in source.pull("customers")])
    elapsed = time.perf_counter() - started
    await source.aclose()
    assert pulled == count, pulled
    return pulled / elapsed


async def shopify_bare(fake: FakeShopify, url: str, count: int) -> float:
    query = SHOPIFY_STREAMS["customers"].query
    headers = {"X-Shopify-Access-Token": fake.token}
    pulled, after = 0, None
    async with httpx.AsyncClient(base_url=f"{url}/admin/api/{fake.api_version}") as client:
        started = time.perf_counter()
        while True:
            variables = {"first": PAGE, "after": after, "query": None}
            response = await client.post(
                "/graphql.json", json={"query": query, "variables": variables}, headers=headers
            )
            connection = response.json()["data"]["customers"]
            pulled += len(connection["nodes"])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        elapsed = time.perf_counter() - started
    assert pulled == count, pulled
    return pulled / elapsed


async def hubspot_connector(config: HubSpotConfig, count: int) -> float:
    source = HubSpotSource(config)
    started = time.perf_counter()
    pulled = sum([len(batch.events) async for batch in source.pull("contacts")])
    elapsed = time.perf_counter() - started
    await source.aclose()
    assert pulled == count, pulled
    return pulled / elapsed


async def hubspot_bare(fake: FakeHubSpot, url: str, config: HubSpotConfig, count: int) -> float:
    params: dict[str, Any] = {"limit": PAGE, "properties": ",".join(config.read_properties)}
    pulled = 0
    headers = {"Authorization": f"Bearer {fake.token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        started = time.perf_counter()
        while True:
            body = (await client.get("/crm/v3/objects/contacts", params=params)).json()
            pulled += len(body["results"])
            following = body.get("paging", {}).get("next", {}).get("after")
            if not following:
                break
            params["after"] = following
        elapsed = time.perf_counter() - started
    assert pulled == count, pulled
    return pulled / elapsed


def sources(quick: bool) -> list[Result]:
    count = 1_000 if quick else 5_000
    repeats = 2 if quick else 3
    results = []

    shopify = FakeShopify()
    shopify.add_customers(count)
    with FakeServer(shopify.app()) as server:
        config = load_config(
            "shopify",
            ShopifyConfig,
            {
                "shop": shopify.shop,
                "access_token": shopify.token,
                "base_url": server.url,
                "customers_page_size": PAGE,
            },
            environ={},
        )
        bare = best(repeats, lambda: shopify_bare(shopify, server.url, count))
        ours = best(repeats, lambda: shopify_connector(config, count))
    results.append(
        Result(
            "shopify source (customers, GraphQL pages of 100)",
            ours,
            "records/s",
            bare,
            "records/s bare httpx",
            ours / bare,
            ">= 0.5",
        )
    )

    hubspot = FakeHubSpot()
    hubspot.add_contacts(count)
    with FakeServer(hubspot.app()) as server:
        values = {
            "access_token": hubspot.token,
            "base_url": server.url,
            "page_size": PAGE,
            "requests_per_ten_seconds": 1900,
        }
        config = load_config("hubspot", HubSpotConfig, values, environ={})
        bare = best(repeats, lambda: hubspot_bare(hubspot, server.url, config, count))
        ours = best(repeats, lambda: hubspot_connector(config, count))
    results.append(
        Result(
            "hubspot source (contacts, list pages of 100)",
            ours,
            "records/s",
            bare,
            "records/s bare httpx",
            ours / bare,
            ">= 0.5",
        )
    )
    return results


# -- webhooks -----------------------------------------------------------------------------


def rate(count: int, body: Callable[[], None]) -> float:
    started = time.perf_counter()
    for _ in range(count):
        body()
    return count / (time.perf_counter() - started)


def async_rate(count: int, body: Callable[[], Awaitable[None]]) -> float:
    """Requests/s of an async body awaited `count` times in one running loop (as ingest
    awaits `verify` inside its request handler)."""

    async def loop() -> float:
        started = time.perf_counter()
        for _ in range(count):
            await body()
        return count / (time.perf_counter() - started)

    return asyncio.run(loop())


def shopify_webhooks(count: int) -> Result:
    fake = FakeShopify()
    config = load_config(
        "shopify",
        ShopifyConfig,
        {"shop": fake.shop, "client_secret": fake.client_secret},
        environ={},
    )
    webhook = ShopifyWebhook(config)
    body, headers = fake.delivery("orders/create", rest_order(1), event_id="1")
    request = webhook_request(body, headers)
    signature = base64.b64decode(dict(headers)["X-Shopify-Hmac-Sha256"])
    key = fake.client_secret.encode()

    async def ours() -> None:
        webhook.parse(request, await webhook.verify(request))

    def bare() -> None:
        digest = hmac.new(key, body, hashlib.sha256).digest()
        assert hmac.compare_digest(digest, signature)
        json.loads(body)

    baseline, measured = rate(count, bare), async_rate(count, ours)
    return Result(
        "shopify webhook verify+parse (orders/create)",
        measured,
        "requests/s",
        baseline,
        "requests/s hmac+json.loads",
        measured / baseline,
        ">= 0.1",
    )


def hubspot_webhooks(count: int) -> Result:
    fake = FakeHubSpot()
    values = {"client_secret": fake.client_secret, "portal_id": fake.portal_id}
    config = load_config("hubspot", HubSpotConfig, values, environ={})
    webhook = HubSpotWebhook(config)
    now = datetime.now(UTC)
    body, headers = fake.delivery(fake.webhook_events(5), url=WEBHOOK_URL, timestamp=now)
    request = webhook_request(body, headers, url=WEBHOOK_URL, received_at=now)
    named = dict(headers)
    signature = base64.b64decode(named["X-HubSpot-Signature-v3"])
    signed = b"POST" + WEBHOOK_URL.encode() + body + named["X-HubSpot-Request-Timestamp"].encode()
    key = fake.client_secret.encode()

    async def ours() -> None:
        webhook.parse(request, await webhook.verify(request))

    def bare() -> None:
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        assert hmac.compare_digest(digest, signature)
        json.loads(body)

    baseline, measured = rate(count, bare), async_rate(count, ours)
    return Result(
        "hubspot webhook verify+parse (v3, 5 events)",
        measured,
        "requests/s",
        baseline,
        "requests/s hmac+json.loads",
        measured / baseline,
        ">= 0.1",
    )


def run(quick: bool) -> list[Result]:
    count = 2_000 if quick else 20_000
    return [*sources(quick), shopify_webhooks(count), hubspot_webhooks(count)]
