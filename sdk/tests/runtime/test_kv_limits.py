"""Rolling windows (frequency caps) and token buckets (rate limits), on memory and Redis."""

from __future__ import annotations

import asyncio

from mailwright.runtime.kv import KeyValueStore, connect
from mailwright.testing.bus import Target


async def test_a_rolling_window_counts_the_events_of_the_last_seconds(kv: KeyValueStore) -> None:
    assert await kv.window_add("cap:p1", 0.6) == 1
    assert await kv.window_add("cap:p1", 0.6) == 2
    await asyncio.sleep(0.35)
    assert await kv.window_add("cap:p1", 0.6) == 3

    await asyncio.sleep(0.35)
    assert await kv.window_count("cap:p1", 0.6) == 1
    assert await kv.window_count("cap:p1", 0.1) == 0

    await asyncio.sleep(0.35)
    assert await kv.window_count("cap:p1", 0.6) == 0


async def test_recording_the_same_member_twice_counts_it_once(kv: KeyValueStore) -> None:
    await kv.window_add("cap:p1", 60, member="send-1")
    assert await kv.window_add("cap:p1", 60, member="send-1") == 1
    assert await kv.window_add("cap:p1", 60, member="send-2") == 2


async def test_window_add_if_below_records_until_the_limit(kv: KeyValueStore) -> None:
    results = [await kv.window_add_if_below("cap:p1", 60, 2) for _ in range(3)]

    assert results == [(True, 1), (True, 2), (False, 2)]
    assert await kv.window_count("cap:p1", 60) == 2


async def test_window_add_if_below_makes_room_as_events_age_out(kv: KeyValueStore) -> None:
    assert await kv.window_add_if_below("cap:p1", 0.5, 1) == (True, 1)
    assert await kv.window_add_if_below("cap:p1", 0.5, 1) == (False, 1)
    await asyncio.sleep(0.6)

    assert await kv.window_add_if_below("cap:p1", 0.5, 1) == (True, 1)


async def test_a_retried_send_already_in_the_window_is_allowed_without_counting_twice(
    kv: KeyValueStore,
) -> None:
    assert await kv.window_add_if_below("cap:p1", 60, 1, member="send-1") == (True, 1)

    assert await kv.window_add_if_below("cap:p1", 60, 1, member="send-1") == (True, 1)
    assert await kv.window_add_if_below("cap:p1", 60, 1, member="send-2") == (False, 1)


async def test_a_frequency_cap_holds_under_concurrent_replicas(kv_target: Target) -> None:
    stores = [await connect(kv_target.url, namespace=kv_target.namespace) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(stores[i % 3].window_add_if_below("cap:p1", 60, 5) for i in range(40))
        )
        assert await stores[0].window_count("cap:p1", 60) == 5
    finally:
        for store in stores:
            await store.close()

    assert sum(1 for recorded, _ in results if recorded) == 5


async def test_a_token_bucket_starts_full_and_then_says_how_long_to_wait(
    kv: KeyValueStore,
) -> None:
    grants = [await kv.take("rate:esp", rate=1, burst=3) for _ in range(4)]

    assert [g.allowed for g in grants] == [True, True, True, False]
    assert [g.retry_after for g in grants[:3]] == [0.0, 0.0, 0.0]
    assert 0.5 < grants[3].retry_after <= 1.0


async def test_a_token_bucket_refills_at_its_rate_up_to_its_burst(kv: KeyValueStore) -> None:
    for _ in range(2):
        assert (await kv.take("rate:esp", rate=4, burst=2)).allowed
    assert not (await kv.take("rate:esp", rate=4, burst=2)).allowed

    await asyncio.sleep(0.8)  # 3.2 tokens' worth of time, but the bucket holds 2

    grants = [await kv.take("rate:esp", rate=4, burst=2) for _ in range(3)]
    assert [g.allowed for g in grants] == [True, True, False]


async def test_taking_several_tokens_at_once_needs_them_all(kv: KeyValueStore) -> None:
    assert (await kv.take("rate:batch", rate=1, burst=10, tokens=8)).allowed
    denied = await kv.take("rate:batch", rate=1, burst=10, tokens=5)

    assert not denied.allowed
    assert 2.5 < denied.retry_after <= 3.0
    assert (await kv.take("rate:batch", rate=1, burst=10, tokens=2)).allowed


async def test_a_token_bucket_is_atomic_across_concurrent_replicas(kv_target: Target) -> None:
    stores = [await connect(kv_target.url, namespace=kv_target.namespace) for _ in range(3)]
    try:
        grants = await asyncio.gather(
            *(stores[i % 3].take("rate:key", rate=0.001, burst=10) for i in range(60))
        )
    finally:
        for store in stores:
            await store.close()

    assert sum(1 for g in grants if g.allowed) == 10


async def test_separate_keys_have_separate_buckets(kv: KeyValueStore) -> None:
    assert (await kv.take("rate:ws1", rate=1, burst=1)).allowed
    assert (await kv.take("rate:ws2", rate=1, burst=1)).allowed
    assert not (await kv.take("rate:ws1", rate=1, burst=1)).allowed
