"""The Redis Streams bus backend (redis-py's asyncio client).

Keys, all under the namespace `<ns>`:

- `<ns>:bus:s:<topic>:<partition>`   one stream per topic partition
- `<ns>:bus:dead:<topic>`            the topic's dead letters (a stream)
- `<ns>:bus:lease:<group>:<topic>:<partition>`  which consumer reads that partition (PX TTL)
- `<ns>:bus:alive:<group>`           live consumers of a group (sorted set, score = expiry)
- `<ns>:bus:meta`, `<ns>:bus:topics`, `<ns>:bus:groups`  layout and catalogue

Lease rounds and dead-letter replays run as Lua scripts so they are atomic across replicas.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from mailwright.runtime.bus.model import (
    BusMismatch,
    ConsumerInfo,
    DeadLetter,
    GroupPartitionStats,
    PartitionStats,
    id_time,
    message_id,
)
from mailwright.runtime.bus.scripts import APPEND, COORDINATE, RELEASE, REQUEUE
from mailwright.runtime.bus.transport import (
    Delivery,
    Failure,
    Leases,
    PendingEntry,
    Record,
    StreamRef,
)
from mailwright.runtime.redisclient import redis_client

UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    OSError,
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_tuple(text: bytes | str) -> tuple[int, int]:
    milliseconds, _, sequence = _text(text).partition("-")
    return int(milliseconds), int(sequence or 0)


def _record(fields: dict[bytes, bytes]) -> Record:
    encoded = fields.get(b"h")
    headers = json.loads(encoded) if encoded else {}
    return Record(_text(fields[b"k"]), bytes(fields[b"v"]), headers)


def _fields(record: Record) -> dict[str, bytes | str]:
    fields: dict[str, bytes | str] = {"k": record.key, "v": record.value}
    if record.headers:
        fields["h"] = json.dumps(dict(record.headers), separators=(",", ":"))
    return fields


class RedisTransport:
    """Redis Streams semantics, in Redis."""

    backend = "redis"
    unavailable = UNAVAILABLE_ERRORS
    server_errors: tuple[type[BaseException], ...] = (redis_errors.ResponseError,)

    def __init__(self, url: str, namespace: str) -> None:
        self._client: aioredis.Redis = redis_client(url)
        self._ns = f"{namespace}:bus"
        self._append = self._client.register_script(APPEND)
        self._coordinate = self._client.register_script(COORDINATE)
        self._release = self._client.register_script(RELEASE)
        self._requeue = self._client.register_script(REQUEUE)
        # The Redis client id of each consumer's connection while it is in a blocking
        # read (None while it is still being asked for), for `interrupt`.
        self._reading: dict[tuple[str, str], int | None] = {}

    # -- key names --------------------------------------------------------------------

    def _stream(self, ref: StreamRef) -> str:
        return f"{self._ns}:s:{ref[0]}:{ref[1]}"

    def _dead(self, topic: str) -> str:
        return f"{self._ns}:dead:{topic}"

    def _lease(self, group: str, ref: StreamRef) -> str:
        return f"{self._ns}:lease:{group}:{ref[0]}:{ref[1]}"

    def _alive(self, group: str) -> str:
        return f"{self._ns}:alive:{group}"

    # -- lifecycle ------------------------------------------------------------------

    async def open(self, partitions: int) -> None:
        await self._client.ping()
        meta = f"{self._ns}:meta"
        await self._client.hsetnx(meta, "partitions", partitions)
        stored = int(await self._client.hget(meta, "partitions") or partitions)
        if stored != partitions:
            raise BusMismatch(
                f"bus_partitions: this process uses {partitions} partitions but the bus "
                f"in namespace {self._ns.removesuffix(':bus')!r} was created with {stored}"
            )

    async def close(self) -> None:
        await self._client.aclose()

    # -- producing ------------------------------------------------------------------

    async def append(self, entries: Sequence[tuple[StreamRef, Record]]) -> list[str]:
        # One script call: atomic (all or none) and one command to pack and parse.
        keys = [self._stream(ref) for ref, _ in entries]
        keys.append(f"{self._ns}:topics")
        args: list[str | bytes | int] = [len(entries)]
        for _, record in entries:
            args += [record.key, record.value, _fields(record).get("h", "")]
        args += sorted({ref[0] for ref, _ in entries})
        reply = await self._append(keys=keys, args=args)
        return _text(reply).split(" ")  # (the script joins the ids: see scripts.APPEND)

    # -- consuming ------------------------------------------------------------------

    async def ensure_group(self, streams: Sequence[StreamRef], group: str) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for ref in streams:
                pipe.xgroup_create(self._stream(ref), group, id="0", mkstream=True)
            replies = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception) and "BUSYGROUP" not in str(reply):
                raise reply

    async def read(
        self,
        group: str,
        consumer: str,
        streams: Sequence[StreamRef],
        count: int,
        block: float,
    ) -> dict[StreamRef, list[Delivery]]:
        names = {self._stream(ref): ref for ref in streams}
        key = (group, consumer)
        self._reading[key] = None
        try:
            # One connection for the read, whose id `interrupt` can unblock.
            async with self._client.client() as reader:
                self._reading[key] = int(await reader.client_id())
                reply: Any = await reader.xreadgroup(
                    group,
                    consumer,
                    dict.fromkeys(names, ">"),
                    count=count,
                    block=max(1, int(block * 1000)),
                )
        finally:
            self._reading.pop(key, None)
        found: dict[StreamRef, list[Delivery]] = {}
        for name, entries in reply or []:
            if entries:
                found[names[_text(name)]] = [
                    Delivery(_text(i), _record(fields), 1) for i, fields in entries
                ]
        return found

    async def interrupt(self, group: str, consumer: str) -> None:
        """End the consumer's blocking read with CLIENT UNBLOCK, which makes XREADGROUP
        return as if its time ran out: nothing was delivered, so nothing is stranded in
        the pending list (cancelling the command instead could). Repeated until the read
        is over, since the unblock may reach the server before the read does."""
        key = (group, consumer)
        deadline = time.monotonic() + 10.0  # the longest `block`
        while key in self._reading and time.monotonic() < deadline:
            client_id = self._reading[key]
            if client_id is not None:
                await self._client.client_unblock(client_id)
            await asyncio.sleep(0.005)

    async def ack(self, group: str, done: Mapping[StreamRef, Sequence[str]]) -> None:
        batches = [(ref, ids) for ref, ids in done.items() if ids]
        if len(batches) == 1:
            await self._client.xack(self._stream(batches[0][0]), group, *batches[0][1])
        elif batches:
            async with self._client.pipeline(transaction=False) as pipe:
                for ref, ids in batches:
                    pipe.xack(self._stream(ref), group, *ids)
                await pipe.execute()

    async def _with_counts(
        self, stream: StreamRef, group: str, entries: list[tuple[Any, Any]]
    ) -> list[Delivery]:
        live = [(i, fields) for i, fields in entries if i is not None and fields]
        if not live:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for entry_id, _ in live:
                pipe.xpending_range(self._stream(stream), group, entry_id, entry_id, 1)
            counts = await pipe.execute()
        return [
            Delivery(_text(entry_id), _record(fields), int(found[0]["times_delivered"]))
            for (entry_id, fields), found in zip(live, counts, strict=True)
            if found
        ]

    async def autoclaim(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[Delivery]:
        claimed: list[tuple[Any, Any]] = []
        cursor: bytes | str = "0-0"
        while len(claimed) < count:
            reply: Any = await self._client.xautoclaim(
                self._stream(stream),
                group,
                consumer,
                int(min_idle * 1000),
                cursor,
                count=count - len(claimed),
            )
            cursor = reply[0]
            claimed.extend(reply[1])
            if _text(cursor) == "0-0":
                break
        return await self._with_counts(stream, group, claimed)

    async def pending(
        self, stream: StreamRef, group: str, consumer: str, min_idle: float, count: int
    ) -> list[PendingEntry]:
        rows: Any = await self._client.xpending_range(
            self._stream(stream), group, "-", "+", count, consumer, int(min_idle * 1000)
        )
        return [
            PendingEntry(
                _text(row["message_id"]),
                _text(row["consumer"]),
                row["time_since_delivered"] / 1000,
                int(row["times_delivered"]),
            )
            for row in rows
        ]

    async def claim(
        self, stream: StreamRef, group: str, consumer: str, ids: Sequence[str]
    ) -> list[Delivery]:
        if not ids:
            return []
        entries: Any = await self._client.xclaim(
            self._stream(stream), group, consumer, 0, list(ids)
        )
        return await self._with_counts(stream, group, entries)

    async def dead_letter(
        self, stream: StreamRef, delivery: Delivery, failure: Failure, topic: str
    ) -> None:
        fields = _fields(delivery.record) | {
            "g": failure.group,
            "p": str(stream[1]),
            "o": delivery.id,
            "n": str(failure.deliveries),
            "e": failure.error,
        }
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self._dead(topic), fields)  # type: ignore[arg-type]
            pipe.xack(self._stream(stream), failure.group, delivery.id)
            pipe.sadd(f"{self._ns}:topics", topic)
            await pipe.execute()

    # -- leases and liveness ----------------------------------------------------------

    async def coordinate(
        self, group: str, consumer: str, streams: Sequence[StreamRef], ttl: float
    ) -> Leases:
        keys = [self._alive(group), f"{self._ns}:groups"]
        keys += [self._lease(group, ref) for ref in streams]
        target, held = await self._coordinate(
            keys=keys, args=[consumer, max(1, int(ttl * 1000)), group]
        )
        return Leases(frozenset(streams[int(i)] for i in held), int(target))

    async def release(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        if streams:
            await self._release(keys=[self._lease(group, r) for r in streams], args=[consumer])

    async def leave(self, group: str, consumer: str, streams: Sequence[StreamRef]) -> None:
        await self._client.zrem(self._alive(group), consumer)
        for ref in streams:
            for row in await self._consumers(ref, group):
                if _text(row["name"]) == consumer and int(row["pending"]) == 0:
                    await self._client.xgroup_delconsumer(self._stream(ref), group, consumer)

    async def _consumers(self, ref: StreamRef, group: str) -> list[dict[str, Any]]:
        try:
            rows: list[dict[str, Any]] = await self._client.xinfo_consumers(
                self._stream(ref), group
            )
        except redis_errors.ResponseError:
            return []
        return rows

    async def _server_ms(self) -> int:
        reply: Any = await self._client.time()
        seconds, micros = reply
        return int(seconds) * 1000 + int(micros) // 1000

    async def housekeep(
        self, stream: StreamRef, group: str, retention: float, forget_idle: float
    ) -> None:
        name = self._stream(stream)
        now = await self._server_ms()
        groups = await self._client.xinfo_groups(name)
        if groups:
            keep: list[tuple[int, int]] = [(now - int(retention * 1000), 0)]
            for info in groups:
                if int(info["pending"]):
                    summary = await self._client.xpending(name, info["name"])
                    keep.append(_id_tuple(summary["min"]))
                else:
                    last = _id_tuple(info["last-delivered-id"])
                    keep.append((last[0], last[1] + 1))
            threshold = min(keep)
            if threshold > (0, 0):
                await self._client.xtrim(
                    name, minid=f"{threshold[0]}-{threshold[1]}", approximate=False
                )
        members: Any = await self._client.zrangebyscore(self._alive(group), now, "+inf")
        alive = {_text(member) for member in members}
        for row in await self._consumers(stream, group):
            consumer = _text(row["name"])
            idle = int(row["idle"]) / 1000
            if consumer not in alive and int(row["pending"]) == 0 and idle > forget_idle:
                await self._client.xgroup_delconsumer(name, group, consumer)

    # -- operators ------------------------------------------------------------------

    async def topics(self) -> list[str]:
        return sorted(_text(t) for t in await self._client.smembers(f"{self._ns}:topics"))

    async def partition_stats(self, topic: str, partitions: int) -> list[PartitionStats]:
        result: list[PartitionStats] = []
        for partition in range(partitions):
            ref = (topic, partition)
            length = int(await self._client.xlen(self._stream(ref)))
            try:
                infos = await self._client.xinfo_groups(self._stream(ref))
            except redis_errors.ResponseError:
                infos = []
            groups: list[GroupPartitionStats] = []
            for info in infos:
                group = _text(info["name"])
                holder = await self._client.get(self._lease(group, ref))
                lag = info.get("lag")
                groups.append(
                    GroupPartitionStats(
                        group=group,
                        pending=int(info["pending"]),
                        lag=None if lag is None else int(lag),
                        lease_holder=None if holder is None else _text(holder),
                        consumers=tuple(
                            sorted(_text(r["name"]) for r in await self._consumers(ref, group))
                        ),
                    )
                )
            groups.sort(key=lambda g: g.group)
            result.append(PartitionStats(topic, partition, length, tuple(groups)))
        return result

    async def live_consumers(self) -> list[ConsumerInfo]:
        now = await self._server_ms()
        found: list[ConsumerInfo] = []
        for group in sorted(_text(g) for g in await self._client.smembers(f"{self._ns}:groups")):
            rows: Any = await self._client.zrangebyscore(
                self._alive(group), now, "+inf", withscores=True
            )
            found += [ConsumerInfo(group, _text(n), (s - now) / 1000) for n, s in sorted(rows)]
        return found

    async def dead_letter_count(self, topic: str) -> int:
        return int(await self._client.xlen(self._dead(topic)))

    def _letter(self, topic: str, entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
        record = _record(fields)
        partition = int(fields[b"p"])
        original = message_id(topic, partition, _text(fields[b"o"]))
        return DeadLetter(
            id=_text(entry_id),
            topic=topic,
            key=record.key,
            value=record.value,
            headers=record.headers,
            group=_text(fields[b"g"]),
            partition=partition,
            original_id=original,
            delivery_count=int(fields[b"n"]),
            error=_text(fields[b"e"]),
            published_at=id_time(original),
            failed_at=id_time(_text(entry_id)),
        )

    async def dead_letters(self, topic: str, *, after: str | None, limit: int) -> list[DeadLetter]:
        start = f"({after}" if after else "-"
        rows: Any = await self._client.xrange(self._dead(topic), start, "+", count=limit)
        return [self._letter(topic, i, fields) for i, fields in rows]

    async def dead_letters_by_id(self, topic: str, ids: Sequence[str]) -> list[DeadLetter]:
        async with self._client.pipeline(transaction=False) as pipe:
            for entry_id in ids:
                pipe.xrange(self._dead(topic), entry_id, entry_id, count=1)
            replies = await pipe.execute()
        return [self._letter(topic, i, f) for rows in replies for i, f in rows]

    async def requeue(self, topic: str, letters: Sequence[tuple[str, StreamRef, Record]]) -> int:
        async with self._client.pipeline(transaction=False) as pipe:
            for dead_id, ref, record in letters:
                fields = _fields(record)
                await self._requeue(
                    keys=[self._dead(topic), self._stream(ref)],
                    args=[dead_id, fields["k"], fields["v"], fields.get("h", "")],
                    client=pipe,
                )
            replies = await pipe.execute()
        return sum(int(reply) for reply in replies)

    async def purge(self, topic: str) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xlen(self._dead(topic))
            pipe.delete(self._dead(topic))
            length, _ = await pipe.execute()
        return int(length)
