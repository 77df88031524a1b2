"""The primitives a bus backend provides, in Redis Streams terms.

`Bus` and `Subscription` hold every decision (partitioning, leases, retry, dead letters,
tracing); a backend only stores streams, consumer groups, pending lists and leases. Both
backends implement exactly these operations with Redis Streams semantics, which is what
keeps the in-memory bus faithful to the Redis one.

A stream is named by `(topic, partition)`. Times are seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mailwright.runtime.bus.model import ConsumerInfo, DeadLetter, PartitionStats

StreamRef = tuple[str, int]


@dataclass(frozen=True)
class Record:
    """What a stream entry holds."""

    key: str
    value: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Delivery:
    """A stream entry handed to a consumer, with how many times it has been delivered."""

    id: str
    record: Record
    deliveries: int


@dataclass(frozen=True)
class PendingEntry:
    """An entry delivered to a consumer and not yet acknowledged."""

    id: str
    consumer: str
    idle: float
    deliveries: int


@dataclass(frozen=True)
class Failure:
    """Why an entry goes to the dead-letter stream."""

    group: str
    error: str
    deliveries: int


@dataclass(frozen=True)
class Leases:
    """Partitions a consumer holds after a coordination round, and its fair share."""

    held: frozenset[StreamRef]
    target: int


class Transport(Protocol):
    backend: str
    unavailable: tuple[type[BaseException], ...]
    """Errors meaning the server cannot be reached (turned into BusUnavailable)."""
    server_errors: tuple[type[BaseException], ...]
    """Errors the server answered with (turned into BusError)."""

    async def open(self, partitions: int) -> None:
        """Check the server answers and agrees on the partition count (BusMismatch)."""

    async def close(self) -> None: ...

    # -- producing ------------------------------------------------------------------

    async def append(self, entries: Sequence[tuple[StreamRef, Record]]) -> list[str]:
        """Append all entries at once (one round trip, one transaction); return their ids."""

    # -- consuming ------------------------------------------------------------------

    async def ensure_group(self, streams: Sequence[StreamRef], group: str) -> None:
        """Create `group` on each stream, reading from the start, if it does not exist."""

    async def read(
        self,
        group: str,
        consumer: str,
        streams: Sequence[StreamRef],
        count: int,
        block: float,
    ) -> dict[StreamRef, list[Delivery]]:
        """New entries for the group (XREADGROUP `>`), waiting up to `block` for some."""

    async def interrupt(self, group: str, consumer: str) -> None:
        """End the consumer's blocking `read` early if the backend can do so without
        losing an entry; otherwise do nothing (the read ends within its `block`)."""

    async def ack(self, group: str, done: Mapping[StreamRef, Sequence[str]]) -> None:
        """Acknowledge entries of several streams at once (one round trip)."""

    async def autoclaim(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[Delivery]:
        """Take pending entries idle at least `min_idle`, from any consumer (XAUTOCLAIM).

        Returns up to `count` entries in id order with their new delivery counts; entries
        deleted from the stream meanwhile are dropped from the pending list."""

    async def pending(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[PendingEntry]:
        """`consumer`'s own pending entries idle at least `min_idle`, in id order."""

    async def claim(
        self, stream: StreamRef, group: str, consumer: str, ids: Sequence[str]
    ) -> list[Delivery]:
        """Redeliver the given pending entries to `consumer` (XCLAIM), counting a delivery."""

    async def dead_letter(
        self, stream: StreamRef, delivery: Delivery, failure: Failure, topic: str
    ) -> None:
        """Atomically add the entry to `topic`'s dead-letter stream and ack it."""

    # -- partition leases and liveness ------------------------------------------------

    async def coordinate(
        self, group: str, consumer: str, streams: Sequence[StreamRef], ttl: float
    ) -> Leases:
        """One atomic round: heartbeat, renew this consumer's leases, take free ones up to
        its fair share (streams ÷ live consumers, rounded up)."""

    async def release(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        """Give up leases this consumer holds (no-op for those it does not)."""

    async def leave(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        """Drop the heartbeat; forget the consumer where it has nothing pending."""

    async def housekeep(
        self, stream: StreamRef, group: str, retention: float, forget_idle: float
    ) -> None:
        """Trim entries older than `retention` that every group has acknowledged; forget
        consumers of `group` with nothing pending, idle longer than `forget_idle`, no
        longer alive."""

    # -- operators ------------------------------------------------------------------

    async def topics(self) -> list[str]: ...

    async def partition_stats(self, topic: str, partitions: int) -> list[PartitionStats]: ...

    async def live_consumers(self) -> list[ConsumerInfo]: ...

    async def dead_letter_count(self, topic: str) -> int: ...

    async def dead_letters(self, topic: str, *, after: str | None, limit: int) -> list[DeadLetter]:
        """Dead letters of `topic` in id order, starting after id `after`."""

    async def dead_letters_by_id(self, topic: str, ids: Sequence[str]) -> list[DeadLetter]: ...

    async def requeue(self, topic: str, letters: Sequence[tuple[str, StreamRef, Record]]) -> int:
        """For each (dead-letter id, stream, record): append the record and delete the dead
        letter, atomically per batch. Returns how many were requeued."""

    async def purge(self, topic: str) -> int:
        """Delete `topic`'s dead-letter stream; return how many letters it held."""
