"""Connectors' own cost, against bare loops over the same fakes in the same run.

- **Source import**: records/s pulled through `ShopifySource` (customers, GraphQL),
  `HubSpotSource` (contacts, list endpoint) and `SalesforceSource` (contacts, SOQL with
  `nextRecordsUrl`) from their fake servers on a local port, page by page to the end,
  turned into events — against a bare `httpx` loop fetching the same pages with the same
  requests and decoding their JSON.
- **File import**: rows/s through `FilesSource` from a CSV file (against a bare
  `csv.DictReader` over it) and from a Parquet file (against a bare `pyarrow` read of it
  to Python rows).
- **Webhook verify + parse**: requests/s through `ShopifyWebhook`, `HubSpotWebhook` and
  Mailchimp Transactional's `TransactionalWebhook` (`verify` then `parse` of a signed
  delivery) — against a bare loop doing the HMAC with `hmac.compare_digest` and
  `json.loads` of the same bodies (for Mandrill: the form decoding too).

The fake servers run in a thread of their own (uvicorn); client and server share the
process, as they do for both measurements.

--quick: 1,000 records of each shop or CRM source, 4,000 Salesforce contacts, 10,000 file
rows, 2,000 webhook deliveries (500 Mandrill), best of two repeats (full run: 5,000,
20,000, 100,000, 20,000 and 5,000, best of three).
"""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import hmac
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import Result
from mailwright.connectors import load_config
from mailwright.testing.fakes import FakeServer
from mailwright.testing.webhooks import webhook_request
from mailwright_files.config import FilesConfig
from mailwright_files.source import FilesSource
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.fake import FakeHubSpot
from mailwright_hubspot.source import HubSpotSource
from mailwright_hubspot.webhook import HubSpotWebhook
from mailwright_mailchimp.config import TransactionalConfig
from mailwright_mailchimp.fake_transactional import FakeTransactional
from mailwright_mailchimp.transactional_webhook import TransactionalWebhook
from mailwright_salesforce.config import SalesforceConfig
from mailwright_salesforce.fake import FakeSalesforce
from mailwright_salesforce.source import SalesforceSource
from mailwright_salesforce.source import query as salesforce_query
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
        hubspot_config = load_config("hubspot", HubSpotConfig, values, environ={})
        bare = best(repeats, lambda: hubspot_bare(hubspot, server.url, hubspot_config, count))
        ours = best(repeats, lambda: hubspot_connector(hubspot_config, count))
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
    return [
        *sources(quick),
        salesforce_source(quick),
        *file_imports(quick),
        shopify_webhooks(count),
        hubspot_webhooks(count),
        mandrill_webhooks(count // 4),
    ]


# -- Salesforce, files and Mandrill (conn-b) -----------------------------------------------


async def salesforce_connector(config: SalesforceConfig, count: int) -> float:
    source = SalesforceSource(config)
    started = time.perf_counter()
    pulled = sum([len(batch.events) async for batch in source.pull("contacts")])
    elapsed = time.perf_counter() - started
    await source.aclose()
    assert pulled == count, pulled
    return pulled / elapsed


async def salesforce_bare(
    fake: FakeSalesforce, url: str, config: SalesforceConfig, count: int
) -> float:
    soql = salesforce_query("Contact", list(config.contact_fields), None)
    form = {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }
    async with httpx.AsyncClient(base_url=url) as client:
        started = time.perf_counter()
        token = (await client.post("/services/oauth2/token", data=form)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Sforce-Query-Options": "batchSize=2000"}
        following: str | None = f"/services/data/v{config.api_version}/query"
        params: dict[str, str] | None = {"q": soql}
        pulled = 0
        while following:
            body = (await client.get(following, params=params, headers=headers)).json()
            pulled += len(body["records"])
            following, params = body.get("nextRecordsUrl"), None
        elapsed = time.perf_counter() - started
    assert pulled == count, pulled
    return pulled / elapsed


def salesforce_source(quick: bool) -> Result:
    # Pages of 2,000 leave the bare loop almost nothing per record but JSON decoding, so
    # the ratio is mostly the cost of building each record's event (~40 µs).
    count = 4_000 if quick else 20_000
    fake = FakeSalesforce()
    fake.add("Contact", count)
    with FakeServer(fake.app()) as server:
        values = {
            "login_url": server.url,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "page_size": 2000,
        }
        config = load_config("salesforce", SalesforceConfig, values, environ={})
        repeats = 2 if quick else 3
        bare = best(repeats, lambda: salesforce_bare(fake, server.url, config, count))
        ours = best(repeats, lambda: salesforce_connector(config, count))
    return Result(
        "salesforce source (contacts, SOQL pages of 2000)",
        ours,
        "records/s",
        bare,
        "records/s bare httpx",
        ours / bare,
        ">= 0.2",
    )


FILES_MAPPING = {
    "streams": {
        "customers": {
            "files": "customers.csv",
            "kind": "identify",
            "user_id": "id",
            "email": "email",
            "timestamp": "updated_at",
            "traits": {"first_name": "first_name", "ltv": {"column": "ltv", "type": "decimal"}},
        },
        "events": {
            "files": "events.parquet",
            "event": "name",
            "anonymous_id": "device",
            "timestamp": "ts",
            "properties": {"path": "path", "value": {"column": "value", "type": "float"}},
        },
    }
}


async def files_connector(config: FilesConfig, stream: str, count: int) -> float:
    source = FilesSource(config)
    started = time.perf_counter()
    pulled = sum([len(batch.events) async for batch in source.pull(stream)])
    elapsed = time.perf_counter() - started
    assert pulled == count, pulled
    return pulled / elapsed


def file_imports(quick: bool) -> list[Result]:
    count = 10_000 if quick else 100_000
    repeats = 2 if quick else 3
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        with (directory / "customers.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "email", "first_name", "ltv", "updated_at"])
            for n in range(count):
                writer.writerow(
                    [f"c{n}", f"c{n}@example.com", f"Ada{n}", "12.50", "2026-03-01T12:00:00Z"]
                )
        table = pa.table(
            {
                "name": ["Product Viewed"] * count,
                "device": [f"d{n}" for n in range(count)],
                "ts": pa.array(
                    [datetime(2026, 3, 1, tzinfo=UTC)] * count, pa.timestamp("us", tz="UTC")
                ),
                "path": [f"/p/{n % 100}" for n in range(count)],
                "value": [n / 10 for n in range(count)],
            }
        )
        pq.write_table(table, directory / "events.parquet")
        config = load_config(
            "files",
            FilesConfig,
            {"directory": str(directory), "mapping": FILES_MAPPING},
            environ={},
        )

        async def bare_csv() -> float:
            started = time.perf_counter()
            with (directory / "customers.csv").open(newline="") as handle:
                rows = sum(1 for _ in csv.DictReader(handle))
            assert rows == count
            return rows / (time.perf_counter() - started)

        async def bare_parquet() -> float:
            started = time.perf_counter()
            handle = pq.ParquetFile(directory / "events.parquet")
            rows = sum(
                len(handle.read_row_group(g).to_pylist()) for g in range(handle.num_row_groups)
            )
            assert rows == count
            return rows / (time.perf_counter() - started)

        csv_bare = best(repeats, bare_csv)
        csv_ours = best(repeats, lambda: files_connector(config, "customers", count))
        parquet_bare = best(repeats, bare_parquet)
        parquet_ours = best(repeats, lambda: files_connector(config, "events", count))
    return [
        Result(
            "files source (CSV, identify)",
            csv_ours,
            "rows/s",
            csv_bare,
            "rows/s bare csv.DictReader",
            csv_ours / csv_bare,
            ">= 0.05",
        ),
        Result(
            "files source (Parquet, track)",
            parquet_ours,
            "rows/s",
            parquet_bare,
            "rows/s bare pyarrow to_pylist",
            parquet_ours / parquet_bare,
            ">= 0.02",
        ),
    ]


def mandrill_webhooks(count: int) -> Result:
    fake = FakeTransactional()
    url = "https://mw.example/webhooks/mailchimp-transactional/acme"
    values = {"webhook_key": fake.webhook_key, "webhook_url": url}
    config = load_config("mailchimp-transactional", TransactionalConfig, values, environ={})
    webhook = TransactionalWebhook(config)
    events = [
        fake.message_event(kind, f"r{n}@example.com", send_id=f"s{n}")
        for n, kind in enumerate(["send", "open", "click", "hard_bounce", "open"])
    ]
    body, headers = fake.delivery(events, url=url)
    request = webhook_request(body, headers, url=url)
    signature = base64.b64decode(dict(headers)["X-Mandrill-Signature"])
    key = fake.webhook_key.encode()

    async def ours() -> None:
        webhook.parse(request, await webhook.verify(request))

    def bare() -> None:
        params = dict(parse_qsl(body.decode()))
        signed = url + "".join(k + params[k] for k in sorted(params))
        digest = hmac.new(key, signed.encode(), hashlib.sha1).digest()
        assert hmac.compare_digest(digest, signature)
        json.loads(params["mandrill_events"])

    baseline, measured = rate(count, bare), async_rate(count, ours)
    return Result(
        "mailchimp transactional webhook verify+parse (5 events)",
        measured,
        "requests/s",
        baseline,
        "requests/s form+hmac+json.loads",
        measured / baseline,
        ">= 0.1",
    )
