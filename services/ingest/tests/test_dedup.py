"""Dedup claims on the key-value store (memory and Redis): duplicates are reported, a failed
publish releases its claims, a crashed call's claims are taken over."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailwright.runtime.kv import KeyValueStore
from mailwright_ingest.dedup import Dedup, InFlight, dedup_key

WINDOW = timedelta(hours=24)


async def test_first_sighting_is_fresh_and_a_committed_id_is_a_duplicate(kv: KeyValueStore) -> None:
    dedup = Dedup(kv)
    first = await dedup.claim("acme", ["m1", "m2"], WINDOW)
    assert first.fresh == [True, True]
    await dedup.commit(first)
    again = await dedup.claim("acme", ["m2", "m3"], WINDOW)
    assert again.fresh == [False, True]


async def test_a_repeat_within_one_batch_is_a_duplicate_of_the_first(kv: KeyValueStore) -> None:
    claim = await Dedup(kv).claim("acme", ["m1", "m1", "m2"], WINDOW)
    assert claim.fresh == [True, False, True]


async def test_workspaces_do_not_share_message_ids(kv: KeyValueStore) -> None:
    dedup = Dedup(kv)
    await dedup.commit(await dedup.claim("acme", ["m1"], WINDOW))
    assert (await dedup.claim("other", ["m1"], WINDOW)).fresh == [True]


async def test_a_released_claim_lets_the_retry_through(kv: KeyValueStore) -> None:
    dedup = Dedup(kv)
    failed = await dedup.claim("acme", ["m1"], WINDOW)
    await dedup.release(failed)
    retry = await dedup.claim("acme", ["m1"], WINDOW)
    assert retry.fresh == [True]


async def test_an_id_being_published_by_another_call_asks_for_a_retry(kv: KeyValueStore) -> None:
    dedup = Dedup(kv)
    await dedup.claim("acme", ["m1"], WINDOW)
    with pytest.raises(InFlight) as info:
        await dedup.claim("acme", ["m0", "m1"], WINDOW)
    assert info.value.message_ids == ("m1",)
    # The racing call released what it had claimed: m0 is still free.
    assert await kv.get(dedup_key("acme", "m0")) is None


async def test_a_claim_abandoned_by_a_crashed_call_is_taken_over(kv: KeyValueStore) -> None:
    await Dedup(kv).claim("acme", ["m1"], WINDOW)
    later = Dedup(kv, in_flight=timedelta(0))
    taken = await later.claim("acme", ["m1"], WINDOW)
    assert taken.fresh == [True]


async def test_dedup_keys_expire_with_the_window(kv: KeyValueStore) -> None:
    dedup = Dedup(kv)
    claim = await dedup.claim("acme", ["m1"], timedelta(hours=2))
    ttl = await kv.ttl(dedup_key("acme", "m1"))
    assert ttl is not None
    assert 7000 < ttl <= 7200
    await dedup.commit(claim)
