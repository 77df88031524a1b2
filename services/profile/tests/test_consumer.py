"""The consumer's group commit: a failed batch is split until the event that cannot be
applied fails alone, and everything else in the batch is stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime

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
        self, events: Sequence[IncomingEvent], now: datetime, published: Sequence[str] = ()
    ) -> BatchResult:
        self.calls += 1
        if any(e.message_id == self.poisoned for e in events):
            raise PoisonError(self.poisoned)
        return super().apply_batch(events, now, published)


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
