"""The bus: publish by key into partitioned topics, subscribe as a consumer group, and
the operator's view (statistics, dead letters, replay, purge).

Everything here is backend-neutral; a `Transport` (memory or Redis Streams) stores.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

from opentelemetry import metrics, trace

from mailwright.runtime.bus.consumer import BatchHandler, Handler, Subscription
from mailwright.runtime.bus.model import (
    REPLAY_GROUP_HEADER,
    BusError,
    BusStats,
    BusUnavailable,
    ConsumerOptions,
    DeadLetter,
    InvalidMessage,
    Outgoing,
    check_consumer,
    check_group,
    check_outgoing,
    check_topic,
    message_id,
    partition_for,
)
from mailwright.runtime.bus.telemetry import BusTelemetry
from mailwright.runtime.bus.transport import Record, StreamRef, Transport
from mailwright.runtime.urls import redact_url

DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
MAX_BATCH = 10_000
_REPLAY_BATCH = 500


def default_consumer_name() -> str:
    """`<host>-<pid>-<random>`: unique per subscription, readable in `mailwright bus stats`."""
    host = "".join(c if c.isalnum() or c in "-_." else "-" for c in socket.gethostname())
    return f"{host[:60] or 'host'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Bus:
    """A connection to one bus (a namespace on a Redis server, or the process's memory)."""

    def __init__(
        self,
        transport: Transport,
        *,
        url: str,
        namespace: str,
        partitions: int,
        max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._transport = transport
        self.url = url
        self.namespace = namespace
        self.partitions = partitions
        self.max_value_bytes = max_value_bytes
        self._telemetry = BusTelemetry(transport.backend, tracer_provider, meter_provider)
        self._subscriptions: list[Subscription] = []

    @property
    def backend(self) -> str:
        """`memory` or `redis`."""
        return self._transport.backend

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Check the server answers and agrees on the layout (`connect` calls this)."""
        async with self._reaching():
            await self._transport.open(self.partitions)

    async def close(self) -> None:
        """Stop this bus's running subscriptions gracefully, then disconnect."""
        for subscription in self._subscriptions:
            await subscription.stop()
        self._subscriptions.clear()
        await self._transport.close()

    @contextlib.asynccontextmanager
    async def _reaching(self) -> AsyncIterator[None]:
        unavailable: tuple[type[BaseException], ...] = self._transport.unavailable
        failed: tuple[type[BaseException], ...] = self._transport.server_errors
        try:
            yield
        except unavailable as error:
            raise BusUnavailable(
                f"the bus at {redact_url(self.url)} is unreachable: {error}"
            ) from error
        except failed as error:
            raise BusError(f"the bus at {redact_url(self.url)} refused: {error}") from error

    # -- publishing -------------------------------------------------------------------

    async def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: str,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Publish one message; return its id. Messages of one key keep their order."""
        (message_id,) = await self.publish_many([Outgoing(topic, key, value, headers)])
        return message_id

    async def publish_many(self, messages: Iterable[Outgoing]) -> list[str]:
        """Publish a batch in one round trip and one transaction; return the ids in order.

        If this raises, treat the whole batch as not published and publish it again
        (consumers are idempotent: a message may arrive twice, never zero times)."""
        batch = list(messages)
        if len(batch) > MAX_BATCH:
            raise InvalidMessage(f"messages: more than {MAX_BATCH} in one batch")
        if not batch:
            return []
        checked = [(m, check_outgoing(m, self.max_value_bytes)) for m in batch]
        topics = {m.topic for m in batch}
        with self._telemetry.publishing(topics, len(batch)):
            context: dict[str, str] = {}
            self._telemetry.inject(context)
            entries: list[tuple[StreamRef, Record]] = [
                (
                    (message.topic, partition_for(message.key, self.partitions)),
                    # A message that brings its own trace context (a relay publishing
                    # what was written earlier) keeps it.
                    Record(
                        message.key,
                        bytes(message.value),
                        headers if not context or "traceparent" in headers else headers | context,
                    ),
                )
                for message, headers in checked
            ]
            async with self._reaching():
                entry_ids = await self._transport.append(entries)
        ids = [
            message_id(ref[0], ref[1], i) for (ref, _), i in zip(entries, entry_ids, strict=True)
        ]
        for topic in topics:
            self._telemetry.count_sent(topic, sum(1 for m in batch if m.topic == topic))
        return ids

    # -- consuming --------------------------------------------------------------------

    def subscribe(
        self,
        topics: str | Sequence[str],
        group: str,
        handler: Handler,
        *,
        consumer: str | None = None,
        max_deliveries: int = 5,
        options: ConsumerOptions | None = None,
    ) -> Subscription:
        """A consumer of `group` on `topics`; `await sub.start()` (or `async with`) to run.

        `handler(message)` returning acks the message; raising retries it later, and
        after `max_deliveries` deliveries sends it to `deadletter.<topic>`. All members of
        a group should subscribe to the same topics."""
        _check_handler(handler, "handler: must be an async function taking a Message")
        return self._subscription(topics, group, consumer, max_deliveries, options, handler=handler)

    def subscribe_batches(
        self,
        topics: str | Sequence[str],
        group: str,
        handler: BatchHandler,
        *,
        consumer: str | None = None,
        max_deliveries: int = 5,
        options: ConsumerOptions | None = None,
    ) -> Subscription:
        """Like `subscribe`, but `handler(messages)` gets each partition's read at once (up
        to `options.batch_size`, in order) and returns one outcome per message: None acks
        it, an exception retries it. For consumers that write a batch in one transaction."""
        _check_handler(handler, "handler: must be an async function taking a list of Messages")
        return self._subscription(
            topics, group, consumer, max_deliveries, options, batch_handler=handler
        )

    def _subscription(
        self,
        topics: str | Sequence[str],
        group: str,
        consumer: str | None,
        max_deliveries: int,
        options: ConsumerOptions | None,
        *,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
    ) -> Subscription:
        names = [topics] if isinstance(topics, str) else list(topics)
        if not names:
            raise InvalidMessage("topics: at least one topic is needed")
        for name in names:
            check_topic(name, "topics")
        check_group(group)
        if not 1 <= max_deliveries <= 1000:
            raise InvalidMessage("max_deliveries: must be between 1 and 1000")
        subscription = Subscription(
            transport=self._transport,
            telemetry=self._telemetry,
            streams=[(t, p) for t in dict.fromkeys(names) for p in range(self.partitions)],
            group=group,
            handler=handler,
            batch_handler=batch_handler,
            consumer=check_consumer(consumer or default_consumer_name()),
            max_deliveries=max_deliveries,
            options=options or ConsumerOptions(),
        )
        self._subscriptions.append(subscription)
        return subscription

    # -- operators --------------------------------------------------------------------

    async def topics(self) -> list[str]:
        """Every topic published to (or dead-lettered) on this bus."""
        async with self._reaching():
            return await self._transport.topics()

    async def stats(self, topics: Sequence[str] | None = None) -> BusStats:
        """Depth, pending counts, lag and lease holder per topic partition and group; dead
        letters per topic; live consumers."""
        async with self._reaching():
            names = list(topics) if topics is not None else await self._transport.topics()
            partitions = []
            dead: dict[str, int] = {}
            for topic in names:
                check_topic(topic)
                partitions += await self._transport.partition_stats(topic, self.partitions)
                dead[topic] = await self._transport.dead_letter_count(topic)
            consumers = await self._transport.live_consumers()
        return BusStats(
            backend=self.backend,
            namespace=self.namespace,
            partitions=self.partitions,
            topics=tuple(partitions),
            dead_letters=dead,
            consumers=tuple(consumers),
        )

    async def dead_letters(
        self, topic: str | None = None, *, limit: int = 100, after: str | None = None
    ) -> list[DeadLetter]:
        """Dead letters, oldest first: of `topic`, or of every topic when None."""
        async with self._reaching():
            names = [check_topic(topic)] if topic else await self._transport.topics()
            found: list[DeadLetter] = []
            for name in names:
                if len(found) >= limit:
                    break
                found += await self._transport.dead_letters(
                    name, after=after, limit=limit - len(found)
                )
        return found

    async def replay_dead_letters(self, topic: str, ids: Sequence[str] | None = None) -> int:
        """Publish dead letters of `topic` again (all, or those with `ids`) and remove them
        from the dead-letter stream. Only the group that dead-lettered a message handles
        its replay. Returns how many were replayed."""
        check_topic(topic)
        replayed = 0
        async with self._reaching():
            if ids is not None:
                for start in range(0, len(ids), _REPLAY_BATCH):
                    chunk = list(ids[start : start + _REPLAY_BATCH])
                    letters = await self._transport.dead_letters_by_id(topic, chunk)
                    replayed += await self._requeue(topic, letters)
                return replayed
            # Only what is dead now: a replay that fails again is not chased forever.
            remaining = await self._transport.dead_letter_count(topic)
            cursor: str | None = None
            while remaining > 0:
                letters = await self._transport.dead_letters(
                    topic, after=cursor, limit=min(remaining, _REPLAY_BATCH)
                )
                if not letters:
                    break
                cursor, remaining = letters[-1].id, remaining - len(letters)
                replayed += await self._requeue(topic, letters)
            return replayed

    async def _requeue(self, topic: str, letters: Sequence[DeadLetter]) -> int:
        batch = []
        for letter in letters:
            headers = dict(letter.headers) | {REPLAY_GROUP_HEADER: letter.group}
            record = Record(letter.key, letter.value, headers)
            batch.append((letter.id, (topic, partition_for(letter.key, self.partitions)), record))
        return await self._transport.requeue(topic, batch)

    async def purge_dead_letters(self, topic: str) -> int:
        """Delete every dead letter of `topic`; return how many there were."""
        async with self._reaching():
            return await self._transport.purge(check_topic(topic))


def _check_handler(handler: object, message: str) -> None:
    if not (
        inspect.iscoroutinefunction(handler)
        or inspect.iscoroutinefunction(getattr(handler, "__call__", None))  # noqa: B004
    ):
        raise InvalidMessage(message)
