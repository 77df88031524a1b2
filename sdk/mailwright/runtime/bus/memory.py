"""The in-process bus backend: Redis Streams semantics kept in Python objects.

Streams, consumer groups, pending-entry lists with delivery counts, leases and heartbeats
behave as in Redis, so a service tested on `memory://` meets no surprise on Redis. Every
`connect("memory://")` of one process with the same namespace shares one broker (that is
how `mailwright up` runs five services on one bus); the broker lives while a bus uses it.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mailwright.runtime.bus.model import (
    BusError,
    BusMismatch,
    ConsumerInfo,
    DeadLetter,
    GroupPartitionStats,
    PartitionStats,
    id_time,
    message_id,
)
from mailwright.runtime.bus.transport import (
    Delivery,
    Failure,
    Leases,
    PendingEntry,
    Record,
    StreamRef,
)

EntryId = tuple[int, int]


def _format(entry_id: EntryId) -> str:
    return f"{entry_id[0]}-{entry_id[1]}"


def _parse(text: str) -> EntryId:
    milliseconds, _, sequence = text.partition("-")
    return int(milliseconds), int(sequence or 0)


@dataclass
class _Pending:
    consumer: str
    delivered_at: float
    deliveries: int


@dataclass
class _Group:
    last_id: EntryId = (0, 0)
    pel: dict[EntryId, _Pending] = field(default_factory=dict)
    consumers: dict[str, float] = field(default_factory=dict)


@dataclass
class _Stream:
    ids: list[EntryId] = field(default_factory=list)
    records: dict[EntryId, Record] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)


class _Broker:
    """The shared state of one in-memory bus."""

    def __init__(self) -> None:
        self.partitions: int | None = None
        self.streams: dict[StreamRef, _Stream] = {}
        self.dead: dict[str, dict[EntryId, DeadLetter]] = {}
        self.leases: dict[tuple[str, StreamRef], tuple[str, float]] = {}
        self.heartbeats: dict[str, dict[str, float]] = {}
        self.last_id: EntryId = (0, 0)
        self.waiters: set[asyncio.Future[bool]] = set()  # True: interrupted

    def next_id(self) -> EntryId:
        milliseconds = time.time_ns() // 1_000_000
        last_ms, last_seq = self.last_id
        self.last_id = (last_ms, last_seq + 1) if milliseconds <= last_ms else (milliseconds, 0)
        return self.last_id

    def stream(self, ref: StreamRef) -> _Stream:
        return self.streams.setdefault(ref, _Stream())

    def notify(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(False)
        self.waiters.clear()

    def alive(self, group: str, now: float) -> dict[str, float]:
        beats = self.heartbeats.setdefault(group, {})
        for name in [name for name, expires in beats.items() if expires <= now]:
            del beats[name]
        return beats

    def holder(self, group: str, ref: StreamRef, now: float) -> str | None:
        lease = self.leases.get((group, ref))
        return lease[0] if lease is not None and lease[1] > now else None


_BROKERS: weakref.WeakValueDictionary[tuple[str, str], _Broker] = weakref.WeakValueDictionary()


class MemoryTransport:
    """Redis Streams semantics on a `_Broker` shared within the process."""

    backend = "memory"
    unavailable: tuple[type[BaseException], ...] = ()
    server_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, name: str, namespace: str) -> None:
        broker = _BROKERS.get((name, namespace))
        if broker is None:
            broker = _Broker()
            _BROKERS[(name, namespace)] = broker
        self._broker = broker
        self._reading: dict[tuple[str, str], asyncio.Future[bool]] = {}

    async def open(self, partitions: int) -> None:
        if self._broker.partitions is None:
            self._broker.partitions = partitions
        elif self._broker.partitions != partitions:
            raise BusMismatch(
                f"bus_partitions: this process uses {partitions} partitions but the bus "
                f"was created with {self._broker.partitions}"
            )

    async def close(self) -> None:
        return None

    async def append(self, entries: Sequence[tuple[StreamRef, Record]]) -> list[str]:
        ids: list[str] = []
        for ref, record in entries:
            entry_id = self._broker.next_id()
            stream = self._broker.stream(ref)
            stream.ids.append(entry_id)
            stream.records[entry_id] = record
            ids.append(_format(entry_id))
        self._broker.notify()
        return ids

    async def ensure_group(self, streams: Sequence[StreamRef], group: str) -> None:
        for ref in streams:
            self._broker.stream(ref).groups.setdefault(group, _Group())

    def _group(self, ref: StreamRef, group: str) -> tuple[_Stream, _Group]:
        stream = self._broker.streams.get(ref)
        if stream is None or group not in stream.groups:
            raise BusError(f"NOGROUP: no group {group!r} on {ref[0]}/{ref[1]}")
        return stream, stream.groups[group]

    def _read_now(
        self, group: str, consumer: str, streams: Sequence[StreamRef], count: int
    ) -> dict[StreamRef, list[Delivery]]:
        now = time.monotonic()
        found: dict[StreamRef, list[Delivery]] = {}
        for ref in streams:
            stream, state = self._group(ref, group)
            state.consumers[consumer] = now
            start = bisect.bisect_right(stream.ids, state.last_id)
            fresh = stream.ids[start : start + count]
            if not fresh:
                continue
            for entry_id in fresh:
                state.pel[entry_id] = _Pending(consumer, now, 1)
            state.last_id = fresh[-1]
            found[ref] = [Delivery(_format(i), stream.records[i], 1) for i in fresh]
        return found

    async def read(
        self,
        group: str,
        consumer: str,
        streams: Sequence[StreamRef],
        count: int,
        block: float,
    ) -> dict[StreamRef, list[Delivery]]:
        deadline = time.monotonic() + block
        while True:
            found = self._read_now(group, consumer, streams, count)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._broker.waiters.add(waiter)
            self._reading[(group, consumer)] = waiter
            try:
                async with asyncio.timeout(remaining):
                    if await waiter:  # interrupted
                        return self._read_now(group, consumer, streams, count)
            except TimeoutError:
                return self._read_now(group, consumer, streams, count)
            finally:
                self._broker.waiters.discard(waiter)
                self._reading.pop((group, consumer), None)

    async def interrupt(self, group: str, consumer: str) -> None:
        """End the consumer's blocking read now: it returns what is there, maybe nothing.
        Nothing is taken from a stream before the wait ends, so nothing is lost."""
        waiter = self._reading.get((group, consumer))
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def ack(self, group: str, done: Mapping[StreamRef, Sequence[str]]) -> None:
        for stream, ids in done.items():
            _, state = self._group(stream, group)
            for text in ids:
                state.pel.pop(_parse(text), None)

    def _take(
        self, stream: _Stream, state: _Group, entry_id: EntryId, consumer: str, now: float
    ) -> Delivery | None:
        pending = state.pel[entry_id]
        if entry_id not in stream.records:
            del state.pel[entry_id]
            return None
        pending.consumer, pending.delivered_at = consumer, now
        pending.deliveries += 1
        return Delivery(_format(entry_id), stream.records[entry_id], pending.deliveries)

    async def autoclaim(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[Delivery]:
        entries, state = self._group(stream, group)
        now = time.monotonic()
        state.consumers[consumer] = now
        claimed: list[Delivery] = []
        for entry_id in sorted(state.pel):
            if len(claimed) >= count:
                break
            if now - state.pel[entry_id].delivered_at >= min_idle:
                delivery = self._take(entries, state, entry_id, consumer, now)
                if delivery is not None:
                    claimed.append(delivery)
        return claimed

    async def pending(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[PendingEntry]:
        _, state = self._group(stream, group)
        now = time.monotonic()
        found = [
            PendingEntry(_format(i), p.consumer, now - p.delivered_at, p.deliveries)
            for i, p in sorted(state.pel.items())
            if p.consumer == consumer and now - p.delivered_at >= min_idle
        ]
        return found[:count]

    async def claim(
        self, stream: StreamRef, group: str, consumer: str, ids: Sequence[str]
    ) -> list[Delivery]:
        entries, state = self._group(stream, group)
        now = time.monotonic()
        state.consumers[consumer] = now
        claimed: list[Delivery] = []
        for entry_id in map(_parse, ids):
            if entry_id in state.pel:
                delivery = self._take(entries, state, entry_id, consumer, now)
                if delivery is not None:
                    claimed.append(delivery)
        return claimed

    async def dead_letter(
        self, stream: StreamRef, delivery: Delivery, failure: Failure, topic: str
    ) -> None:
        _, state = self._group(stream, failure.group)
        dead_id = self._broker.next_id()
        self._broker.dead.setdefault(topic, {})[dead_id] = DeadLetter(
            id=_format(dead_id),
            topic=topic,
            key=delivery.record.key,
            value=delivery.record.value,
            headers=dict(delivery.record.headers),
            group=failure.group,
            partition=stream[1],
            original_id=message_id(topic, stream[1], delivery.id),
            delivery_count=failure.deliveries,
            error=failure.error,
            published_at=id_time(delivery.id),
            failed_at=id_time(_format(dead_id)),
        )
        state.pel.pop(_parse(delivery.id), None)

    async def coordinate(
        self, group: str, consumer: str, streams: Sequence[StreamRef], ttl: float
    ) -> Leases:
        now = time.monotonic()
        beats = self._broker.alive(group, now)
        beats[consumer] = now + ttl
        target = math.ceil(len(streams) / len(beats))
        held: set[StreamRef] = set()
        for ref in streams:
            if self._broker.holder(group, ref, now) == consumer:
                self._broker.leases[(group, ref)] = (consumer, now + ttl)
                held.add(ref)
        for ref in streams:
            if len(held) >= target:
                break
            if self._broker.holder(group, ref, now) is None:
                self._broker.leases[(group, ref)] = (consumer, now + ttl)
                held.add(ref)
        return Leases(frozenset(held), target)

    async def release(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        now = time.monotonic()
        for ref in streams:
            if self._broker.holder(group, ref, now) == consumer:
                del self._broker.leases[(group, ref)]

    async def leave(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        self._broker.heartbeats.get(group, {}).pop(consumer, None)
        for ref in streams:
            state = self._broker.stream(ref).groups.get(group)
            if state is not None and all(p.consumer != consumer for p in state.pel.values()):
                state.consumers.pop(consumer, None)

    async def housekeep(
        self, stream: StreamRef, group: str, retention: float, forget_idle: float
    ) -> None:
        entries = self._broker.stream(stream)
        if entries.groups:
            cutoff = (int((time.time() - retention) * 1000), 0)
            keep_from = min(
                min(state.pel) if state.pel else (state.last_id[0], state.last_id[1] + 1)
                for state in entries.groups.values()
            )
            threshold = min(cutoff, keep_from)
            drop = bisect.bisect_left(entries.ids, threshold)
            for entry_id in entries.ids[:drop]:
                del entries.records[entry_id]
            del entries.ids[:drop]
        state = entries.groups.get(group)
        if state is None:
            return
        now = time.monotonic()
        alive = self._broker.alive(group, now)
        busy = {p.consumer for p in state.pel.values()}
        for name, active in list(state.consumers.items()):
            if name not in alive and name not in busy and now - active > forget_idle:
                del state.consumers[name]

    async def topics(self) -> list[str]:
        return sorted({ref[0] for ref in self._broker.streams} | set(self._broker.dead))

    async def partition_stats(self, topic: str, partitions: int) -> list[PartitionStats]:
        now = time.monotonic()
        result: list[PartitionStats] = []
        for partition in range(partitions):
            ref = (topic, partition)
            stream = self._broker.streams.get(ref) or _Stream()
            groups = tuple(
                GroupPartitionStats(
                    group=name,
                    pending=len(state.pel),
                    lag=len(stream.ids) - bisect.bisect_right(stream.ids, state.last_id),
                    lease_holder=self._broker.holder(name, ref, now),
                    consumers=tuple(sorted(state.consumers)),
                )
                for name, state in sorted(stream.groups.items())
            )
            result.append(PartitionStats(topic, partition, len(stream.ids), groups))
        return result

    async def live_consumers(self) -> list[ConsumerInfo]:
        now = time.monotonic()
        return [
            ConsumerInfo(group, name, expires - now)
            for group in sorted(self._broker.heartbeats)
            for name, expires in sorted(self._broker.alive(group, now).items())
        ]

    async def dead_letter_count(self, topic: str) -> int:
        return len(self._broker.dead.get(topic, {}))

    async def dead_letters(self, topic: str, *, after: str | None, limit: int) -> list[DeadLetter]:
        letters = self._broker.dead.get(topic, {})
        start = _parse(after) if after else (-1, -1)
        return [letters[i] for i in sorted(letters) if i > start][:limit]

    async def dead_letters_by_id(self, topic: str, ids: Sequence[str]) -> list[DeadLetter]:
        letters = self._broker.dead.get(topic, {})
        return [letters[i] for i in map(_parse, ids) if i in letters]

    async def requeue(self, topic: str, letters: Sequence[tuple[str, StreamRef, Record]]) -> int:
        dead = self._broker.dead.get(topic, {})
        present = [(ref, record) for dead_id, ref, record in letters if _parse(dead_id) in dead]
        await self.append(present)
        for dead_id, _, _ in letters:
            dead.pop(_parse(dead_id), None)
        return len(present)

    async def purge(self, topic: str) -> int:
        return len(self._broker.dead.pop(topic, {}))


def memory_name(url: str) -> str:
    """`memory://` is the default bus of the process; `memory://other` a separate one."""
    return url.removeprefix("memory://").strip("/")
