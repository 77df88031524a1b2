"""The key-value store: dedup keys, values, counters; same meaning on memory and Redis."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest

from mailwright.runtime.kv import KeyValueError, KeyValueStore, KeyValueUnavailable, connect
from mailwright.testing.bus import Target


async def test_a_dedup_key_is_set_once(kv: KeyValueStore) -> None:
    assert await kv.set_if_absent("dedup:ws1:m1", ttl=60) is True
    assert await kv.set_if_absent("dedup:ws1:m1", ttl=60) is False
    assert await kv.get("dedup:ws1:m1") == b"1"


async def test_a_dedup_key_can_be_set_again_once_its_ttl_has_passed(kv: KeyValueStore) -> None:
    assert await kv.set_if_absent("dedup:m1", b"first", ttl=0.15)
    await asyncio.sleep(0.25)

    assert await kv.get("dedup:m1") is None
    assert await kv.set_if_absent("dedup:m1", b"second", ttl=timedelta(seconds=60))
    assert await kv.get("dedup:m1") == b"second"


async def test_many_dedup_keys_are_checked_in_one_call(kv: KeyValueStore) -> None:
    await kv.set_if_absent("m2", ttl=60)

    answers = await kv.set_many_if_absent(["m1", "m2", "m3", "m1"], ttl=60)

    assert answers == [True, False, True, False]
    assert await kv.get_many(["m1", "m2", "m3", "m4"]) == [b"1", b"1", b"1", None]


async def test_concurrent_claims_of_one_dedup_key_have_exactly_one_winner(
    kv_target: Target,
) -> None:
    stores = [await connect(kv_target.url, namespace=kv_target.namespace) for _ in range(3)]
    try:
        answers = await asyncio.gather(
            *(stores[i % 3].set_if_absent("send:c1:p1", ttl=60) for i in range(30))
        )
    finally:
        for store in stores:
            await store.close()

    assert answers.count(True) == 1


async def test_values_are_set_read_and_deleted_with_an_optional_ttl(kv: KeyValueStore) -> None:
    await kv.set("cursor:shopify", b"page-7")
    await kv.set("session", b"s", ttl=30)

    assert await kv.get("cursor:shopify") == b"page-7"
    assert await kv.ttl("cursor:shopify") is None
    remaining = await kv.ttl("session")
    assert remaining is not None
    assert 29 < remaining <= 30
    assert await kv.delete("cursor:shopify", "session", "absent") == 2
    assert await kv.get("cursor:shopify") is None
    assert await kv.ttl("absent") is None


async def test_setting_a_value_replaces_its_ttl(kv: KeyValueStore) -> None:
    await kv.set("k", b"1", ttl=30)
    await kv.set("k", b"2")

    assert await kv.ttl("k") is None
    assert await kv.get("k") == b"2"


async def test_a_counter_adds_up_and_its_ttl_is_set_once_on_creation(kv: KeyValueStore) -> None:
    assert await kv.incr("sends:today", ttl=0.4) == 1
    assert await kv.incr("sends:today", 4, ttl=30) == 5
    assert await kv.incr("sends:today", -2) == 3
    remaining = await kv.ttl("sends:today")
    assert remaining is not None
    assert remaining <= 0.4

    await asyncio.sleep(0.5)
    assert await kv.incr("sends:today") == 1


async def test_concurrent_increments_are_not_lost(kv_target: Target) -> None:
    stores = [await connect(kv_target.url, namespace=kv_target.namespace) for _ in range(3)]
    try:
        await asyncio.gather(*(stores[i % 3].incr("hits") for i in range(60)))
        assert await stores[0].get("hits") == b"60"
    finally:
        for store in stores:
            await store.close()


async def test_incrementing_a_non_integer_is_an_error(kv: KeyValueStore) -> None:
    await kv.set("name", b"not a number")

    with pytest.raises(KeyValueError):
        await kv.incr("name")


async def test_keys_of_another_namespace_are_invisible(kv_target: Target) -> None:
    first = await connect(kv_target.url, namespace=kv_target.namespace)
    other = await connect(kv_target.url, namespace=kv_target.namespace + "-other")
    try:
        await first.set("k", b"mine")
        assert await other.get("k") is None
        assert await other.set_if_absent("k", ttl=5)
    finally:
        await other.delete("k")
        await first.close()
        await other.close()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda kv: kv.set("", b"v"), "key"),
        (lambda kv: kv.set("k" * 1025, b"v"), "key"),
        (lambda kv: kv.set("k", "text"), "value"),
        (lambda kv: kv.set("k", b"v", ttl=0), "ttl"),
        (lambda kv: kv.set_if_absent("k", ttl=-1), "ttl"),
        (lambda kv: kv.incr("k", 1.5), "amount"),
        (lambda kv: kv.window_add("k", 0), "window"),
        (lambda kv: kv.window_add_if_below("k", 10, -1), "limit"),
        (lambda kv: kv.take("k", 0, 10), "rate"),
        (lambda kv: kv.take("k", 1, 2, 3), "tokens"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    kv: KeyValueStore, call: object, field: str
) -> None:
    with pytest.raises(ValueError, match=rf"^{field}"):
        await call(kv)  # type: ignore[operator]


async def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(KeyValueUnavailable, match=f"127.0.0.1:{port}"):
        await connect(f"redis://127.0.0.1:{port}/0")


async def test_the_memory_store_sweeps_expired_keys_as_it_grows() -> None:
    """Expired keys nobody reads again are dropped by the sweeps: the store holds at most
    about twice its live keys, however many have expired (the sweeps' spacing grows with
    the store, so their cost stays proportional to the writes)."""
    from mailwright.runtime.kv.memory import MemoryStore

    store = await connect("memory://sweep-test", namespace="sweep")
    try:
        assert isinstance(store, MemoryStore)
        await store.set_many_if_absent([f"old:{n}" for n in range(5_000)], ttl=0.05)
        await asyncio.sleep(0.1)
        for start in range(0, 12_000, 500):
            await store.set_many_if_absent([f"new:{n}" for n in range(start, start + 500)])
        held = store._space.items
        assert not any(key.startswith("old:") for key in held)
        assert len(held) == 12_000
    finally:
        await store.close()
