"""Batch consumers get a partition's messages at once and decide each one's fate."""

from __future__ import annotations

from collections.abc import Sequence

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
