"""The consumer's group commit: a failed batch is split until the event that cannot be
applied fails alone, and everything else in the batch is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from mailwright.runtime import bus as bus_module
from mailwright.runtime.bus import Message
from mailwright_profile.consumer import EventConsumer
from mailwright_profile.events import IncomingEvent, PoisonEvent, read_event
from mailwright_profile.identity import Identity
from mailwright_profile.outbox import Outbox
from mailwright_profile.simulate import Clock, track
from mailwright_profile.store import BatchResult, ProfileStore


class PoisonError(Exception):
    pass


class PoisonedStore(ProfileStore):
    """A real store that cannot apply one chosen event (a bug that event triggers)."""

    poisoned = "poison"
    calls = 0

    def apply_batch(
        self,
        events: Sequence[IncomingEvent],
        now: datetime,
        published: Sequence[str] = (),
        *,
        meanwhile: Callable[[], None] | None = None,
    ) -> BatchResult:
        self.calls += 1
        if any(e.message_id == self.poisoned for e in events):
            raise PoisonError(self.poisoned)
        return super().apply_batch(events, now, published, meanwhile=meanwhile)


@dataclass
class Harness:
    """A started consumer on a store that cannot apply the event `poison`."""

    store: PoisonedStore
    consumer: EventConsumer


@pytest.fixture
async def harness(store: ProfileStore) -> AsyncIterator[Harness]:
    poisoned = PoisonedStore(
        store.db, store.encode_changed, store.encode_deleted, store.email_hashes
    )
    bus = await bus_module.connect("memory://")
    clock = Clock()
    consumer = EventConsumer(poisoned, Outbox(bus, poisoned, clock), clock, gc_threshold=0)
    await consumer.start()
    yield Harness(poisoned, consumer)
    await consumer.stop()
    await bus.close()


async def test_a_failed_batch_is_split_until_the_poisoned_event_fails_alone(
    harness: Harness,
) -> None:
    poisoned, consumer = harness.store, harness.consumer
    ids = [f"e{i}" for i in range(31)]
    ids.insert(20, "poison")
    events = [
        read_event(track("Product Viewed", user_id=f"u{i % 5}", message_id=m))
        for i, m in enumerate(ids)
    ]
    outcomes = await asyncio.gather(*(consumer.submit(e) for e in events), return_exceptions=True)

    failed = [m for m, o in zip(ids, outcomes, strict=True) if o is not None]
    assert failed == ["poison"]
    assert isinstance(outcomes[20], PoisonError)
    assert consumer.applied == 31
    # One batch, then halves down to the poisoned event: about 2·log2(32), not 32.
    assert consumer.batches <= 10
    assert poisoned.calls <= 11
    for person in range(5):
        view = poisoned.lookup("acme", Identity("user_id", f"u{person}"))
        assert view is not None
        assert view.aggregates.days  # its views are stored


def _message(value: bytes, index: int) -> Message:
    return Message("events.track", "acme:u", value, {}, f"events.track/0/{index}-0", 0, 1)


async def test_the_batch_handler_gives_each_message_its_own_outcome_in_order(
    harness: Harness,
) -> None:
    """Two handler calls share the writer: the undecodable message and the poisoned event
    fail, each alone and in its own call; every other event is stored."""
    consumer = harness.consumer

    def event(message_id: str, person: int) -> bytes:
        return track(
            "Product Viewed", user_id=f"u{person}", message_id=message_id
        ).SerializeToString()

    first = [_message(event(f"a{i}", i % 3), i) for i in range(6)]
    first.insert(2, _message(b"\xff not an event", 99))
    second = [_message(event(m, 1), 50 + i) for i, m in enumerate(["b0", "poison", "b1"])]
    outcomes_first, outcomes_second = await asyncio.gather(
        consumer.handle_many(first), consumer.handle_many(second)
    )

    assert [o is None for o in outcomes_first] == [True, True, False, True, True, True, True]
    assert isinstance(outcomes_first[2], PoisonEvent)
    assert outcomes_second[0] is None
    assert outcomes_second[2] is None
    assert isinstance(outcomes_second[1], PoisonError)
    assert consumer.applied == 8


async def test_the_next_batch_is_read_while_the_database_stores_one(harness: Harness) -> None:
    """The writer reads a batch's messages itself, and on PostgreSQL the next batch's
    while the server stores the one before (`meanwhile`; SQLite has stored it already):
    an unreadable message read that way still fails alone, in its own handler call, and
    everything else is stored in order."""
    consumer = harness.consumer
    consumer.max_batch = 3
    store = harness.store
    read_ahead: list[list[bool]] = []
    apply_batch = store.apply_batch

    def watched(*args: Any, meanwhile: Callable[[], None] | None = None, **kwargs: Any) -> Any:
        def then() -> None:
            assert meanwhile is not None
            meanwhile()
            read_ahead.append([i.event is not None or i.error is not None for i in queued()])

        return apply_batch(*args, meanwhile=then, **kwargs)

    def queued() -> list[Any]:
        return consumer._queue[: consumer.max_batch]  # (the writer's queue)

    store.apply_batch = watched  # type: ignore[method-assign]

    def event(message_id: str) -> bytes:
        return track("Product Viewed", user_id="u1", message_id=message_id).SerializeToString()

    messages = [_message(event(f"e{i}"), i) for i in range(8)]
    messages.insert(4, _message(b"\xff not an event", 99))
    outcomes = await consumer.handle_many(messages)

    assert [o is None for o in outcomes] == [True] * 4 + [False] + [True] * 4
    assert isinstance(outcomes[4], PoisonEvent)
    assert consumer.applied == 8
    assert consumer.batches == 3
    if store.db.engine.dialect.name == "postgresql":
        assert read_ahead[0] == [True, True, True]  # the second batch, read during the first
    else:
        assert read_ahead == []
    view = store.lookup("acme", Identity("user_id", "u1"))
    assert view is not None
    assert sorted(
        e.message_id for e in store.list_events("acme", view.profile_id, [], None, None, None, 100)
    ) == [f"e{i}" for i in range(8)]
