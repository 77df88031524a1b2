"""Publishing: what goes in comes out, by key into partitions, and bad input is refused."""

from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright.runtime.bus import (
    Bus,
    BusMismatch,
    BusUnavailable,
    ConsumerOptions,
    InvalidMessage,
    Message,
    Outgoing,
    connect,
    partition_for,
)
from mailwright.testing.bus import Target, eventually


async def collect(
    bus: Bus, topics: str | list[str], group: str, options: ConsumerOptions, expected: int
) -> list[Message]:
    received: list[Message] = []

    async def handle(message: Message) -> None:
        received.append(message)

    async with bus.subscribe(topics, group, handle, options=options):
        await eventually(lambda: len(received) >= expected, message=f"{expected} messages")
    return received


async def test_published_message_arrives_with_topic_key_value_and_headers(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    message_id = await bus.publish(
        "events.track", b'{"event":"Viewed"}', key="ws1/p1", headers={"content-type": "json"}
    )

    (message,) = await collect(bus, "events.track", "profile", fast_consumer_options, 1)

    assert message.id == message_id
    assert (message.topic, message.key, message.value) == (
        "events.track",
        "ws1/p1",
        b'{"event":"Viewed"}',
    )
    assert message.headers["content-type"] == "json"
    assert message.partition == partition_for("ws1/p1", bus.partitions)
    assert message.delivery_count == 1
    assert message.published_at.tzinfo is not None


async def test_publish_many_returns_one_id_per_message_in_order(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    batch = [Outgoing("events.track", f"k{i % 7}", f"{i}".encode()) for i in range(50)]
    batch += [Outgoing("events.identify", "k1", b"identify")]

    ids = await bus.publish_many(batch)

    assert len(ids) == len(set(ids)) == 51
    received = await collect(
        bus, ["events.track", "events.identify"], "profile", fast_consumer_options, 51
    )
    by_id = {m.id: m for m in received}
    assert [by_id[i].value for i in ids] == [m.value for m in batch]
    assert by_id[ids[-1]].topic == "events.identify"


async def test_messages_of_one_key_arrive_in_the_order_they_were_published(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    for round_ in range(20):
        await bus.publish_many(
            [Outgoing("events.track", f"person-{k}", f"{round_}".encode()) for k in range(10)]
        )

    received = await collect(bus, "events.track", "profile", fast_consumer_options, 200)

    for k in range(10):
        values = [int(m.value) for m in received if m.key == f"person-{k}"]
        assert values == list(range(20))


async def test_each_group_receives_every_message(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    await bus.publish_many([Outgoing("profiles.changed", f"p{i}", b"x") for i in range(30)])

    first, second = await asyncio.gather(
        collect(bus, "profiles.changed", "segment", fast_consumer_options, 30),
        collect(bus, "profiles.changed", "delivery", fast_consumer_options, 30),
    )

    assert {m.id for m in first} == {m.id for m in second}
    assert len(first) == len(second) == 30


@given(key=st.text(min_size=1, max_size=100), partitions=st.integers(1, 1024))
def test_a_key_always_maps_to_the_same_partition_in_range(key: str, partitions: int) -> None:
    chosen = partition_for(key, partitions)
    assert 0 <= chosen < partitions
    assert chosen == partition_for(key, partitions)


def test_keys_spread_over_all_partitions() -> None:
    used = {partition_for(f"profile-{i}", 8) for i in range(200)}
    assert used == set(range(8))


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (Outgoing("Events Track", "k", b"v"), "topic"),
        (Outgoing("events:track", "k", b"v"), "topic"),
        (Outgoing("events.track\n", "k", b"v"), "topic"),  # `$` alone would let it through
        (Outgoing("events.track", "", b"v"), "key"),
        (Outgoing("events.track", "k" * 513, b"v"), "key"),
        (Outgoing("events.track", "k", "text"), "value"),  # type: ignore[arg-type]
        (Outgoing("events.track", "k", b"v" * (1024 * 1024 + 1)), "value"),
        (Outgoing("events.track", "k", b"v", {"mailwright-replay-group": "x"}), "headers"),
        (Outgoing("events.track", "k", b"v", {"trace": 1}), "headers.trace"),  # type: ignore[dict-item]
    ],
)
async def test_bad_message_is_refused_naming_the_field(
    bus: Bus, message: Outgoing, field: str
) -> None:
    with pytest.raises(InvalidMessage, match=rf"^{field}"):
        await bus.publish_many([message])


async def test_a_refused_message_fails_the_whole_batch(
    bus: Bus, fast_consumer_options: ConsumerOptions
) -> None:
    with pytest.raises(InvalidMessage):
        await bus.publish_many(
            [Outgoing("events.track", "k", b"ok"), Outgoing("events.track", "", b"")]
        )

    stats = await bus.stats(["events.track"])
    assert [p.length for p in stats.topics] == [0] * bus.partitions


async def test_a_process_with_another_partition_count_is_refused(bus_target: Target) -> None:
    first = await connect(bus_target.url, namespace=bus_target.namespace, partitions=4)
    try:
        with pytest.raises(BusMismatch, match="bus_partitions"):
            await connect(bus_target.url, namespace=bus_target.namespace, partitions=8)
    finally:
        await first.close()


async def test_an_unreachable_redis_is_reported_as_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BusUnavailable, match=rf"redis://\*\*\*@127.0.0.1:{port}") as caught:
        await connect(f"redis://:secret@127.0.0.1:{port}/0", namespace="nowhere")
    assert "secret" not in str(caught.value)


async def test_an_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="bus_url"):
        await connect("kafka://broker:9092")


def test_a_handler_must_be_an_async_function(bus: Bus) -> None:
    def handle(message: Message) -> None:
        return None

    with pytest.raises(InvalidMessage, match=r"^handler"):
        bus.subscribe("events.track", "profile", handle)  # type: ignore[arg-type]


def test_group_names_are_checked(bus: Bus) -> None:
    async def handle(message: Message) -> None:
        return None

    with pytest.raises(InvalidMessage, match=r"^group"):
        bus.subscribe("events.track", "profile service", handle)
    with pytest.raises(InvalidMessage, match=r"^group"):
        bus.subscribe("events.track", "profile\n", handle)


async def test_a_topic_found_valid_once_is_still_refused_in_another_form(bus: Bus) -> None:
    """Valid names are remembered; what is remembered cannot let a near miss through."""
    await bus.publish_many([Outgoing("events.track", "k", b"v")])
    for topic in ("events.track\n", "Events.track", " events.track"):
        with pytest.raises(InvalidMessage, match=r"^topic"):
            await bus.publish_many([Outgoing(topic, "k", b"v")])
