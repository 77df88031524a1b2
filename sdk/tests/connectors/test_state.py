"""The cursor store keeps one cursor per workspace, connector and stream, on SQLite and
PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from mailwright.connectors.state import CursorKey, CursorStore

KEY = CursorKey("acme", "shopify", "orders")


@pytest_asyncio.fixture
async def store(database_url: str) -> AsyncIterator[CursorStore]:
    opened = CursorStore.open(database_url)
    yield opened
    opened.close()


async def test_a_stream_never_synced_has_no_cursor(store: CursorStore) -> None:
    assert await store.load(KEY) is None


async def test_a_saved_cursor_is_loaded_back(store: CursorStore) -> None:
    await store.save(KEY, '{"after": "abc"}')
    assert await store.load(KEY) == '{"after": "abc"}'


async def test_saving_again_replaces_the_cursor(store: CursorStore) -> None:
    await store.save(KEY, "one")
    await store.save(KEY, "two")
    assert await store.load(KEY) == "two"
    assert len(await store.entries()) == 1


async def test_cursors_are_kept_apart_by_workspace_connector_and_stream(
    store: CursorStore,
) -> None:
    keys = [
        KEY,
        CursorKey("other", "shopify", "orders"),
        CursorKey("acme", "hubspot", "orders"),
        CursorKey("acme", "shopify", "customers"),
    ]
    for n, key in enumerate(keys):
        await store.save(key, f"cursor-{n}")
    assert [await store.load(key) for key in keys] == [f"cursor-{n}" for n in range(4)]
    assert [e.key for e in await store.entries("acme")] == sorted(
        (k for k in keys if k.workspace == "acme"), key=lambda k: (k.connector, k.stream)
    )


async def test_clearing_forgets_the_cursor(store: CursorStore) -> None:
    await store.save(KEY, "x")
    assert await store.clear(KEY)
    assert await store.load(KEY) is None
    assert not await store.clear(KEY)


async def test_entries_carry_an_aware_saved_time(store: CursorStore) -> None:
    await store.save(KEY, None)
    [entry] = await store.entries()
    assert entry.cursor is None
    assert entry.updated_at.tzinfo is not None


async def test_the_table_survives_reopening(database_url: str) -> None:
    first = CursorStore.open(database_url)
    await first.save(KEY, "kept")
    first.close()
    second = CursorStore.open(database_url)
    assert await second.load(KEY) == "kept"
    second.close()


async def test_an_oversized_cursor_is_refused(store: CursorStore) -> None:
    with pytest.raises(ValueError, match="64 KiB"):
        await store.save(KEY, "x" * (64 * 1024 + 1))


@pytest.mark.parametrize("field", ["workspace", "connector", "stream"])
def test_a_key_needs_every_part(field: str) -> None:
    parts = {"workspace": "acme", "connector": "shopify", "stream": "orders", field: ""}
    with pytest.raises(ValueError, match=field):
        CursorKey(**parts)
