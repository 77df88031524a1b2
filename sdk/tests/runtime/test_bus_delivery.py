"""Delivery: ack, redelivery with backoff, dead letters, replay and purge, retention."""

from __future__ import annotations

import asyncio
import itertools

from mailwright.runtime.bus import Bus, ConsumerOptions, Message, Outgoing
from mailwright.testing.bus import eventually


async def pending_of(bus: Bus, topic: str, group: str) -> int:
    stats = await bus.stats([topic])
    return sum(g.pending for p in stats.topics for g in p.groups if g.group == group)


async def test_a_handled_message_is_acked_and_not_delivered_again(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    seen: list[str] = []

    async def handle(message: Message) -> None:
        seen.append(message.id)

    await bus.publish("events.track", b"1", key="k")
    async with bus.subscribe("events.track", "profile", handle, options=fast_consumer_options):
        await eventually(lambda: len(seen) == 1)
    assert await pending_of(bus, "events.track", "profile") == 0

    async with bus.subscribe("events.track", "profile", handle, options=fast_consumer_options):
        await asyncio.sleep(0.3)
    assert len(seen) == 1


async def test_a_failed_message_is_redelivered_with_a_growing_delivery_count(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    counts: list[int] = []

    async def flaky(message: Message) -> None:
        counts.append(message.delivery_count)
        if message.delivery_count < 3:
            raise RuntimeError("database is restarting")

    await bus.publish("events.track", b"1", key="k")
    async with bus.subscribe("events.track", "profile", flaky, options=fast_consumer_options):
        await eventually(lambda: len(counts) == 3)
        await asyncio.sleep(0.2)

    assert counts == [1, 2, 3]
    assert await pending_of(bus, "events.track", "profile") == 0
    assert await bus.dead_letters("events.track") == []


async def test_redelivery_waits_for_a_backoff_that_doubles(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    options = ConsumerOptions(
        lease_ttl=0.6, claim_idle=2.0, retry_backoff=0.1, block=0.02, housekeeping_interval=1
    )
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def failing(message: Message) -> None:
        times.append(loop.time())
        raise RuntimeError("no")

    await bus.publish("events.track", b"1", key="k")
    async with bus.subscribe("events.track", "g", failing, max_deliveries=4, options=options):
        await eventually(lambda: len(times) == 4)

    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps[0] >= 0.09  # the server measures idle time in whole milliseconds
    assert gaps[1] >= 0.18
    assert gaps[2] >= 0.36


async def test_a_poisoned_message_does_not_hold_up_its_partition(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    handled: list[bytes] = []

    async def handle(message: Message) -> None:
        if message.value == b"poison":
            raise ValueError("cannot parse")
        handled.append(message.value)

    await bus.publish("events.track", b"poison", key="same-key")
    await bus.publish_many(
        [Outgoing("events.track", "same-key", f"{i}".encode()) for i in range(5)]
    )

    options = ConsumerOptions(lease_ttl=0.6, claim_idle=5, retry_backoff=5, block=0.02)
    async with bus.subscribe("events.track", "profile", handle, options=options):
        await eventually(lambda: len(handled) == 5, within=2)

    assert handled == [b"0", b"1", b"2", b"3", b"4"]


async def test_after_max_deliveries_a_message_goes_to_the_dead_letters_and_nothing_is_lost(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    handled: set[bytes] = set()
    attempts: list[int] = []

    async def handle(message: Message) -> None:
        if message.value == b"7":
            attempts.append(message.delivery_count)
            raise KeyError("trait 'plan' missing")
        handled.add(message.value)

    await bus.publish_many(
        [Outgoing("events.track", f"k{i}", f"{i}".encode(), {"h": "v"}) for i in range(20)]
    )
    async with bus.subscribe(
        "events.track", "profile", handle, max_deliveries=3, options=fast_consumer_options
    ):
        await eventually(lambda: len(handled) == 19)
        await eventually(lambda: _has_dead_letter(bus, "events.track"), message="a dead letter")
        await asyncio.sleep(0.2)

    assert attempts == [1, 2, 3]
    (letter,) = await bus.dead_letters("events.track")
    assert (letter.topic, letter.key, letter.value, letter.group) == (
        "events.track",
        "k7",
        b"7",
        "profile",
    )
    assert letter.headers["h"] == "v"
    assert letter.delivery_count == 3
    assert letter.error == "KeyError: \"trait 'plan' missing\""
    assert letter.original_id.startswith("events.track/")
    assert await pending_of(bus, "events.track", "profile") == 0
    assert (await bus.stats(["events.track"])).dead_letters == {"events.track": 1}


async def _has_dead_letter(bus: Bus, topic: str) -> bool:
    return bool(await bus.dead_letters(topic))


async def test_a_replayed_dead_letter_is_handled_again_by_its_group_only(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    broken = True
    segment_seen: list[bytes] = []
    delivery_seen: list[bytes] = []

    async def segment(message: Message) -> None:
        if broken:
            raise RuntimeError("rule compiler bug")
        segment_seen.append(message.value)

    async def delivery(message: Message) -> None:
        delivery_seen.append(message.value)

    await bus.publish("profiles.changed", b"p1", key="p1")
    opts = fast_consumer_options
    async with (
        bus.subscribe("profiles.changed", "segment", segment, max_deliveries=1, options=opts),
        bus.subscribe("profiles.changed", "delivery", delivery, options=opts),
    ):
        await eventually(lambda: _has_dead_letter(bus, "profiles.changed"))
        await eventually(lambda: delivery_seen == [b"p1"])
        broken = False

        assert await bus.replay_dead_letters("profiles.changed") == 1

        await eventually(lambda: segment_seen == [b"p1"])
        await asyncio.sleep(0.3)

    assert delivery_seen == [b"p1"]
    assert await bus.dead_letters("profiles.changed") == []


async def test_replay_by_id_replays_only_those_letters(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    async def failing(message: Message) -> None:
        raise RuntimeError("down")

    await bus.publish_many([Outgoing("events.track", f"k{i}", f"{i}".encode()) for i in range(3)])
    async with bus.subscribe(
        "events.track", "g", failing, max_deliveries=1, options=fast_consumer_options
    ):
        await eventually(lambda: _count_dead(bus, "events.track", 3))
    letters = await bus.dead_letters("events.track")

    assert await bus.replay_dead_letters("events.track", ids=[letters[1].id, "1-1"]) == 1

    remaining = await bus.dead_letters("events.track")
    assert [letter.value for letter in remaining] == [letters[0].value, letters[2].value]
    stats = await bus.stats(["events.track"])
    assert sum(p.length for p in stats.topics) == 4


async def _count_dead(bus: Bus, topic: str, expected: int) -> bool:
    return len(await bus.dead_letters(topic)) == expected


async def test_purge_deletes_the_dead_letters_of_a_topic(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    async def failing(message: Message) -> None:
        raise RuntimeError("down")

    await bus.publish_many([Outgoing("events.email", f"k{i}", b"x") for i in range(4)])
    async with bus.subscribe(
        "events.email", "g", failing, max_deliveries=1, options=fast_consumer_options
    ):
        await eventually(lambda: _count_dead(bus, "events.email", 4))

    assert await bus.purge_dead_letters("events.email") == 4
    assert await bus.dead_letters("events.email") == []
    assert await bus.purge_dead_letters("events.email") == 0


async def test_acknowledged_messages_are_trimmed_after_the_retention_but_pending_ones_stay(
    bus: Bus,
) -> None:
    options = ConsumerOptions(
        lease_ttl=0.6,
        claim_idle=5,
        retry_backoff=5,
        block=0.02,
        retention=0,
        housekeeping_interval=0.05,
    )
    handled: list[bytes] = []

    async def handle(message: Message) -> None:
        if message.value == b"stuck":
            raise RuntimeError("later")
        handled.append(message.value)

    await bus.publish_many([Outgoing("events.page", f"k{i}", b"ok") for i in range(10)])
    await bus.publish("events.page", b"stuck", key="stuck")
    async with bus.subscribe("events.page", "g", handle, options=options):
        await eventually(lambda: len(handled) == 10)
        await eventually(lambda: _retained(bus, "events.page", 1), message="trimmed to 1")
        await asyncio.sleep(0.2)

    assert await _retained(bus, "events.page", 1)
    assert await pending_of(bus, "events.page", "g") == 1


async def _retained(bus: Bus, topic: str, expected: int) -> bool:
    stats = await bus.stats([topic])
    return sum(p.length for p in stats.topics) == expected
