"""Batch consumers get a partition's messages at once and decide each one's fate."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from mailwright.runtime.bus import Bus, ConsumerOptions, Message, Outgoing
from mailwright.testing.bus import eventually


async def test_a_batch_handler_gets_one_partitions_messages_in_order(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    batches: list[list[bytes]] = []

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        batches.append([m.value for m in messages])
        return [None] * len(messages)

    await bus.publish_many([Outgoing("events.track", "k", str(i).encode()) for i in range(20)])
    async with bus.subscribe_batches(
        "events.track", "profile", handle, options=fast_consumer_options
    ):
        await eventually(lambda: sum(len(b) for b in batches) == 20)
    seen = [value for batch in batches for value in batch]
    assert seen == [str(i).encode() for i in range(20)]
    assert max(len(b) for b in batches) > 1


async def test_a_failed_message_of_a_batch_is_retried_alone_then_dead_lettered(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    handled: list[bytes] = []

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        for message in messages:
            if message.value == b"poison":
                outcomes.append(ValueError("cannot apply"))
            else:
                handled.append(message.value)
                outcomes.append(None)
        return outcomes

    await bus.publish_many([Outgoing("events.track", "k", v) for v in (b"a", b"poison", b"b")])
    async with bus.subscribe_batches(
        "events.track", "profile", handle, max_deliveries=2, options=fast_consumer_options
    ):
        await eventually(lambda: handled == [b"a", b"b"])

        async def dead_lettered() -> bool:
            return len(await bus.dead_letters("events.track")) == 1

        await eventually(dead_lettered)
    (letter,) = await bus.dead_letters("events.track")
    assert letter.value == b"poison"
    assert "cannot apply" in letter.error


async def test_a_batch_handler_that_raises_retries_the_whole_batch(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    calls: list[int] = []

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        calls.append(len(messages))
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return [None] * len(messages)

    await bus.publish_many([Outgoing("events.track", "k", b"x") for _ in range(3)])
    async with bus.subscribe_batches(
        "events.track", "profile", handle, options=fast_consumer_options
    ):
        await eventually(lambda: sum(calls[1:]) >= 3)
    assert await bus.dead_letters("events.track") == []


async def test_reading_ahead_hands_in_the_next_round_while_the_last_is_in_hand(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    """Calls for one partition overlap (they never would without reading ahead), order
    within the partition holds, and a graceful stop leaves nothing pending."""
    taken: list[bytes] = []
    active = most_active = 0

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        nonlocal active, most_active
        taken.extend(m.value for m in messages)  # taken in order before the first await
        active += 1
        most_active = max(most_active, active)
        await asyncio.sleep(0.05)
        active -= 1
        return [None] * len(messages)

    await bus.publish_many([Outgoing("events.track", "k", str(i).encode()) for i in range(40)])
    options = dataclasses.replace(fast_consumer_options, batch_size=4, read_ahead=1)
    async with bus.subscribe_batches("events.track", "profile", handle, options=options):
        await eventually(lambda: len(taken) == 40)
    assert taken == [str(i).encode() for i in range(40)]
    assert most_active == 2
    stats = await bus.stats(["events.track"])
    assert sum(g.pending for p in stats.topics for g in p.groups) == 0


async def test_a_graceful_stop_waits_for_every_round_read_ahead(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    stored: list[bytes] = []

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        await asyncio.sleep(0.05)
        stored.extend(m.value for m in messages)
        return [None] * len(messages)

    await bus.publish_many([Outgoing("events.track", "k", str(i).encode()) for i in range(12)])
    options = dataclasses.replace(fast_consumer_options, batch_size=3, read_ahead=2)
    subscription = bus.subscribe_batches("events.track", "profile", handle, options=options)
    await subscription.start()
    await eventually(lambda: len(stored) >= 3)
    await subscription.stop()
    stats = await bus.stats(["events.track"])
    # every round read was handled to the end and acked before the stop returned
    assert sum(g.pending for p in stats.topics for g in p.groups) == 0
    assert stored == [str(i).encode() for i in range(len(stored))]


async def test_a_failed_message_is_retried_when_reading_ahead(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    handled: list[bytes] = []
    failures = 0

    async def handle(messages: Sequence[Message]) -> list[Exception | None]:
        nonlocal failures
        outcomes: list[Exception | None] = []
        for message in messages:
            if message.value == b"flaky" and failures < 2:
                failures += 1
                outcomes.append(ValueError("not yet"))
            else:
                handled.append(message.value)
                outcomes.append(None)
        await asyncio.sleep(0)
        return outcomes

    values = [b"a", b"flaky", b"b", b"c", b"d", b"e"]
    await bus.publish_many([Outgoing("events.track", "k", v) for v in values])
    options = dataclasses.replace(fast_consumer_options, batch_size=2, read_ahead=1)
    async with bus.subscribe_batches("events.track", "profile", handle, options=options):
        await eventually(lambda: sorted(handled) == sorted(values))
    assert failures == 2
    assert await bus.dead_letters("events.track") == []


def test_reading_ahead_needs_a_batch_handler(bus: Bus) -> None:
    async def handle(message: Message) -> None:
        return None

    with pytest.raises(ValueError, match="read_ahead needs a batch handler"):
        bus.subscribe("events.track", "profile", handle, options=ConsumerOptions(read_ahead=1))


def test_read_ahead_is_bounded() -> None:
    with pytest.raises(ValueError, match="read_ahead must be between 0 and 8"):
        ConsumerOptions(read_ahead=9)
