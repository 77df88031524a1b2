"""The Shopify source beyond the conformance suite: query-cost pacing, 429s, windows, bad
records and cursors, totals, configuration errors that name their field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mailwright.connectors import ConnectorConfigError, ErrorKind, ProviderError, load_config
from mailwright.testing.conformance import pull_all
from mailwright.testing.fakes import FakeServer, Fault, RecordedWaits
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.fake import FakeShopify
from mailwright_shopify.source import ShopifySource

MakeConfig = Callable[..., ShopifyConfig]


async def pull(config: ShopifyConfig, stream: str, cursor: str | None = None) -> list[Any]:
    source = ShopifySource(config)
    try:
        return await pull_all(source, stream, cursor)
    finally:
        await source.aclose()


def graphql_requests(server: FakeServer) -> list[dict[str, Any]]:
    return [r.json() for r in server.requests_to("/admin/api") if b"Count" not in r.body]


async def test_the_source_waits_for_the_cost_bucket_instead_of_being_throttled(
    fake_server: Callable[..., FakeServer], recorded_waits: RecordedWaits
) -> None:
    # A real bucket (1000 points, 50 a second) on a clock that the recorded waits advance.
    shopify = FakeShopify(
        bucket_size=1000, restore_rate=50, clock=lambda: sum(recorded_waits.seconds)
    )
    shopify.add_customers(250)
    server = fake_server(shopify.app())
    config = load_config(
        "shopify",
        ShopifyConfig,
        {"shop": shopify.shop, "access_token": shopify.token, "base_url": server.url},
        environ={},
    )
    batches = await pull(config, "customers")
    assert sum(len(b.events) for b in batches) == 250
    assert recorded_waits.seconds, "the second page of 602 points waits for the refill"
    # the wait is the refill time, less the real time that passed since the answer
    refill = (602 - (1000 - 1 - 602)) / 50
    assert refill - 0.5 < recorded_waits.seconds[0] <= refill
    answers = [r for r in server.requests if b"THROTTLED" in r.body]
    assert not answers


async def test_a_429_waits_for_its_retry_after(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    shopify.add_customers(3)
    shopify_server.fail(
        Fault(
            429, {"errors": "Exceeded 2 calls per second for api client."}, {"Retry-After": "2.0"}
        )
    )
    batches = await pull(make_config(), "customers")
    assert sum(len(b.events) for b in batches) == 3
    assert recorded_waits.seconds == [2.0]


@pytest.mark.parametrize(
    ("code", "kind"),
    [("ACCESS_DENIED", ErrorKind.AUTH), ("MAX_COST_EXCEEDED", ErrorKind.INVALID)],
)
async def test_graphql_error_codes_map_to_error_kinds(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
    code: str,
    kind: ErrorKind,
) -> None:
    body = {"errors": [{"message": "no", "extensions": {"code": code}}]}
    shopify_server.fail(Fault(200, body, times=None))
    with pytest.raises(ProviderError) as caught:
        await pull(make_config(), "customers")
    assert (caught.value.kind, caught.value.code) == (kind, code)


async def test_the_shop_frozen_for_payment_is_an_auth_error(
    shopify_server: FakeServer, make_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    shopify_server.fail(Fault(402, {"errors": "Unavailable Shop"}, times=None))
    with pytest.raises(ProviderError) as caught:
        await pull(make_config(), "orders")
    assert caught.value.kind is ErrorKind.AUTH
    assert "frozen" in caught.value.detail


async def test_a_deep_pull_starts_new_windows_and_loses_nothing(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    shopify.add_customers(260)
    batches = await pull(make_config(customers_page_size=50, window_records=100), "customers")
    ids = [e.message_id for b in batches for e in b.events]
    assert len(set(ids)) == 260
    searches = {r["variables"]["query"] for r in graphql_requests(shopify_server)}
    assert len(searches) >= 3, "a new updated_at window every 100 records"


async def test_a_record_that_cannot_be_read_is_skipped_and_the_rest_imported(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    shopify.add_customers(5)
    shopify.customers[2]["updatedAt"] = "not a time"
    batches = await pull(make_config(), "customers")
    assert sum(len(b.events) for b in batches) == 4
    # reported where and why (never its values), so the sync command lists it and exits 1
    assert [skip for b in batches for skip in b.skipped] == [
        "customer gid://shopify/Customer/7002: updatedAt: not an ISO 8601 time"
    ]


async def test_batches_carry_the_stores_count_as_total(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    shopify.add_orders(12)
    batches = await pull(make_config(), "orders")
    assert {b.total for b in batches} == {12}


async def test_the_next_run_asks_for_what_changed_since_the_newest_record(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    shopify.add_customers(4)
    final = (await pull(make_config(), "customers"))[-1].cursor
    assert final is not None
    newest = max(c["updatedAt"] for c in shopify.customers)
    assert json.loads(final) == {"since": newest}
    shopify_server.clear_requests()
    await pull(make_config(), "customers", final)
    [query] = {r["variables"]["query"] for r in graphql_requests(shopify_server)}
    assert query == f"updated_at:>='{newest}'"


async def test_a_cursor_this_connector_did_not_write_is_refused(
    shopify_server: FakeServer, make_config: MakeConfig
) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await pull(make_config(), "customers", "page=3")


async def test_the_source_needs_the_access_token(make_config: MakeConfig) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        ShopifySource(make_config(access_token=None))
    assert caught.value.field == "access_token"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"shop": "acme.com"}, "shop"),
        ({"api_version": "2025-05"}, "api_version"),
        ({"topics": ["orders/delete"]}, "topics"),
        ({"base_url": "http://shop.example"}, "base_url"),
        ({"orders_page_size": 100}, "orders_page_size"),
        ({"customers_page_size": 251}, "customers_page_size"),
    ],
)
def test_bad_configuration_names_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("shopify", ShopifyConfig, {"shop": "acme.myshopify.com", **values}, environ={})
    assert caught.value.field == field


def test_secrets_come_from_the_environment_and_never_print(tmp_path: Any) -> None:
    config = load_config(
        "shopify",
        ShopifyConfig,
        {"shop": "acme.myshopify.com"},
        environ={"MAILWRIGHT_CONNECTOR_SHOPIFY_ACCESS_TOKEN": "shpat_secret_value"},
    )
    assert config.access_token is not None
    assert config.access_token.get_secret_value() == "shpat_secret_value"
    assert "shpat_secret_value" not in repr(config)


def test_secrets_come_from_a_kubernetes_secret_file(tmp_path: Any) -> None:
    (tmp_path / "shopify").mkdir()
    (tmp_path / "shopify" / "client_secret").write_text("from-the-file\n")
    config = load_config(
        "shopify", ShopifyConfig, {"shop": "acme.myshopify.com"}, environ={}, secrets_dir=tmp_path
    )
    assert config.client_secret is not None
    assert config.client_secret.get_secret_value() == "from-the-file"
