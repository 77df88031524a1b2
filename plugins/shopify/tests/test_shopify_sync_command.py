"""`mailwright connectors sync shopify`: from the fake store, through ingest running
in-process, onto the bus — and the next run picks up only what changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result

from mailwright.cli import cli
from mailwright.testing.fakes import FakeServer
from mailwright.testing.platform import RunningMailwright
from mailwright_shopify.fake import FakeShopify


async def sync(
    shopify: FakeShopify, server: FakeServer, platform: RunningMailwright, tmp_path: Path
) -> Result:
    env = {
        "MAILWRIGHT_CONNECTOR_SHOPIFY_SHOP": shopify.shop,
        "MAILWRIGHT_CONNECTOR_SHOPIFY_ACCESS_TOKEN": shopify.token,
        "MAILWRIGHT_CONNECTOR_SHOPIFY_BASE_URL": server.url,
        "MAILWRIGHT_CONNECTOR_SHOPIFY_CUSTOMERS_PAGE_SIZE": "7",
        "MAILWRIGHT_TOKEN": platform.token("acme", ["events:write"]),
        "MAILWRIGHT_DATA_DIR": str(tmp_path),
    }
    args = ["connectors", "sync", "shopify", "--stream", "customers", "--workspace", "acme"]
    args += ["--address", platform.address]
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


async def test_sync_imports_the_store_and_the_next_run_only_what_changed(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    mailwright_platform: RunningMailwright,
    tmp_path: Path,
) -> None:
    shopify.add_customers(20)
    first = await sync(shopify, shopify_server, mailwright_platform, tmp_path)
    assert first.exit_code == 0, first.output
    assert "20 events in 3 batches" in first.output
    assert "20 accepted" in first.output
    published = await mailwright_platform.wait_for_events(20)
    assert {e.source for e in published} == {"shopify"}
    assert {e.workspace for e in published} == {"acme"}

    shopify.touch_customers(2)
    second = await sync(shopify, shopify_server, mailwright_platform, tmp_path)
    assert second.exit_code == 0, second.output
    # The two edits, and the newest record of the first run again (deduplicated by id).
    assert "3 events in 1 batches" in second.output
    assert "2 accepted, 1 duplicate" in second.output
    published = await mailwright_platform.wait_for_events(22)
    assert len({e.message_id for e in published}) == 22


async def test_sync_without_a_token_says_how_to_get_one(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["connectors", "sync", "shopify", "--stream", "customers", "--workspace", "acme"],
        env={"MAILWRIGHT_TOKEN": "", "MAILWRIGHT_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "mailwright tokens create --workspace acme --scope events:write" in result.output


async def test_sync_of_an_unknown_stream_names_the_known_ones(
    shopify: FakeShopify, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["connectors", "sync", "shopify", "--stream", "products", "--workspace", "acme"],
        env={
            "MAILWRIGHT_TOKEN": "t",
            "MAILWRIGHT_DATA_DIR": str(tmp_path),
            "MAILWRIGHT_CONNECTOR_SHOPIFY_SHOP": shopify.shop,
            "MAILWRIGHT_CONNECTOR_SHOPIFY_ACCESS_TOKEN": shopify.token,
        },
    )
    assert result.exit_code == 2
    assert "customers, orders" in result.output


async def test_a_misconfigured_connector_is_reported_by_field(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["connectors", "sync", "shopify", "--stream", "orders", "--workspace", "acme"],
        env={
            "MAILWRIGHT_TOKEN": "t",
            "MAILWRIGHT_DATA_DIR": str(tmp_path),
            "MAILWRIGHT_CONNECTOR_SHOPIFY_SHOP": "not a shop",
        },
    )
    assert result.exit_code == 1
    assert "shop (MAILWRIGHT_CONNECTOR_SHOPIFY_SHOP)" in result.output


async def test_cursors_and_reset_show_and_forget_where_a_sync_resumes(
    shopify: FakeShopify,
    shopify_server: FakeServer,
    mailwright_platform: RunningMailwright,
    tmp_path: Path,
) -> None:
    shopify.add_customers(3)
    assert (await sync(shopify, shopify_server, mailwright_platform, tmp_path)).exit_code == 0
    env = {"MAILWRIGHT_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    invoke = CliRunner().invoke
    listed = await asyncio.to_thread(
        invoke, cli, ["connectors", "cursors", "--workspace", "acme"], env=env
    )
    assert "shopify" in listed.output
    assert "customers" in listed.output
    reset = await asyncio.to_thread(
        invoke,
        cli,
        ["connectors", "reset", "shopify", "--stream", "customers", "--workspace", "acme"],
        env=env,
    )
    assert "cursor forgotten" in reset.output
    empty = await asyncio.to_thread(invoke, cli, ["connectors", "cursors"], env=env)
    assert "No sync has stored a cursor yet." in empty.output
