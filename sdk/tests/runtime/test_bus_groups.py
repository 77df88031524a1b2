"""Consumer groups: replicas share partitions, stop gracefully, and a dead one loses nothing."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailwright.runtime.bus import (
    Bus,
    ConsumerOptions,
    Message,
    Outgoing,
    connect,
    partition_for,
)
from mailwright.testing.bus import Target, eventually

WORKER = Path(__file__).with_name("bus_worker.py")


@pytest.fixture
async def replica(bus_target: Target) -> AsyncIterator[Bus]:
    """A second connection to the same bus, as another replica of a service would have."""
    other = await connect(bus_target.url, namespace=bus_target.namespace, partitions=4)
    yield other
    await other.close()


async def test_two_consumers_of_a_group_share_the_partitions_without_duplicates(
    bus: Bus, replica: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    seen: Counter[str] = Counter()
    by_consumer: Counter[str] = Counter()

    def handler_of(name: str):  # type: ignore[no-untyped-def]
        async def handle(message: Message) -> None:
            seen[message.id] += 1
            by_consumer[name] += 1

        return handle

    options = fast_consumer_options
    first = bus.subscribe("events.track", "profile", handler_of("a"), options=options)
    second = replica.subscribe("events.track", "profile", handler_of("b"), options=options)
    async with first, second:
        await eventually(
            lambda: len(first.partitions) == len(second.partitions) == 2, message="fair share"
        )
        assert first.partitions.isdisjoint(second.partitions)
        ids = await bus.publish_many(
            [Outgoing("events.track", f"person-{i % 100}", b"x") for i in range(200)]
        )
        await eventually(lambda: len(seen) == 200)
        await asyncio.sleep(0.2)

    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
    assert by_consumer["a"] > 0
    assert by_consumer["b"] > 0


async def test_a_stopped_consumer_hands_its_partitions_to_the_others(
    bus: Bus, replica: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    async def handle(message: Message) -> None:
        return None

    options = fast_consumer_options
    first = bus.subscribe("events.track", "profile", handle, options=options)
    second = replica.subscribe("events.track", "profile", handle, options=options)
    async with first, second:
        await eventually(lambda: len(first.partitions) == len(second.partitions) == 2)
        await first.stop()
        await eventually(lambda: len(second.partitions) == 4, within=3)


async def test_graceful_stop_finishes_the_message_in_hand_and_acks_it(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(message.id)

    message_id = await bus.publish("events.track", b"1", key="k")
    subscription = bus.subscribe("events.track", "profile", slow, options=fast_consumer_options)
    await subscription.start()
    await asyncio.wait_for(started.wait(), 5)

    await subscription.stop()

    assert finished == [message_id]
    stats = await bus.stats(["events.track"])
    assert sum(g.pending for p in stats.topics for g in p.groups) == 0
    assert all(g.lease_holder is None for p in stats.topics for g in p.groups)


async def test_an_aborted_consumer_loses_nothing_its_partitions_and_messages_are_taken_over(
    bus: Bus, replica: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    in_hand: list[str] = []
    never = asyncio.Event()

    async def stuck(message: Message) -> None:
        in_hand.append(message.id)
        await never.wait()

    ids = await bus.publish_many(
        [Outgoing("events.track", f"p{i}", f"{i}".encode()) for i in range(30)]
    )
    doomed = bus.subscribe("events.track", "profile", stuck, options=fast_consumer_options)
    await doomed.start()
    await eventually(lambda: len(in_hand) >= 2)
    await doomed.abort()

    handled: dict[str, int] = {}

    async def handle(message: Message) -> None:
        handled[message.id] = message.delivery_count

    async with replica.subscribe("events.track", "profile", handle, options=fast_consumer_options):
        await eventually(lambda: set(handled) == set(ids), message="every message handled")

    assert all(handled[i] >= 2 for i in in_hand)


async def test_a_message_that_keeps_killing_its_consumer_goes_to_the_dead_letters(
    bus: Bus, replica: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    never = asyncio.Event()
    reached: list[str] = []

    async def stuck(message: Message) -> None:
        reached.append(message.id)
        await never.wait()

    await bus.publish("events.track", b"crash", key="k")
    doomed = bus.subscribe(
        "events.track", "profile", stuck, max_deliveries=1, options=fast_consumer_options
    )
    await doomed.start()
    await eventually(lambda: len(reached) == 1)
    await doomed.abort()

    async def handle(message: Message) -> None:
        reached.append(message.id)

    async with replica.subscribe(
        "events.track", "profile", handle, max_deliveries=1, options=fast_consumer_options
    ):
        await eventually(lambda: _dead_count_is(replica, 1), message="dead letter")

    assert len(reached) == 1
    (letter,) = await replica.dead_letters("events.track")
    assert "crashed" in letter.error
    assert letter.delivery_count == 2


async def _dead_count_is(bus: Bus, expected: int) -> bool:
    return len(await bus.dead_letters("events.track")) == expected


@pytest.mark.redis
async def test_killing_a_consumer_process_mid_stream_loses_nothing(
    redis_url: str, redis_namespace: str, fast_consumer_options: ConsumerOptions
) -> None:
    bus = await connect(redis_url, namespace=redis_namespace, partitions=4)
    ids = await bus.publish_many(
        [Outgoing("events.track", f"person-{i}", f"{i}".encode()) for i in range(40)]
    )
    busy_partitions = {partition_for(f"person-{i}", 4) for i in range(40)}
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        redis_url,
        redis_namespace,
        "profile",
        "events.track",
        stdout=asyncio.subprocess.PIPE,
    )
    in_hand: list[str] = []
    try:
        assert worker.stdout is not None
        while len(in_hand) < len(busy_partitions):
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            assert line, "the worker exited early"
            if line.startswith(b"got "):
                in_hand.append(line.split()[1].decode())
        stats = await bus.stats(["events.track"])
        assert sum(g.pending for p in stats.topics for g in p.groups) == 40
    finally:
        worker.kill()
        await worker.wait()

    handled: dict[str, int] = {}

    async def handle(message: Message) -> None:
        handled[message.id] = message.delivery_count

    try:
        async with bus.subscribe("events.track", "profile", handle, options=fast_consumer_options):
            await eventually(lambda: set(handled) == set(ids), message="every message handled")
            await eventually(lambda: _nothing_pending(bus), message="nothing pending")
    finally:
        await bus.close()
    assert all(handled[i] == 2 for i in in_hand)


async def _nothing_pending(bus: Bus) -> bool:
    stats = await bus.stats(["events.track"])
    return sum(g.pending for p in stats.topics for g in p.groups) == 0


async def test_a_stop_ends_the_blocking_read_and_loses_nothing(bus_target: Target) -> None:
    bus = await connect(bus_target.url, namespace=bus_target.namespace, partitions=4)
    seen: list[str] = []

    async def handle(message: Message) -> None:
        seen.append(message.id)

    try:
        # A read blocks for up to ten seconds; a stop must not wait that out.
        options = ConsumerOptions(block=10.0)
        subscription = bus.subscribe("events.track", "profile", handle, options=options)
        await subscription.start()
        first = await bus.publish_many([Outgoing("events.track", "k", b"1")])
        await eventually(lambda: seen == first)
        await asyncio.sleep(0.05)  # the reader is back in its blocking read
        async with asyncio.timeout(5):
            await subscription.stop()
        later = await bus.publish_many([Outgoing("events.track", "k", b"2")])
        again = bus.subscribe("events.track", "profile", handle, options=options)
        async with again:
            await eventually(lambda: seen == first + later)
    finally:
        await bus.close()
