"""A consumer group member: partition leases, delivery, ack, retry and dead letters.

Each partition of a topic is read by one member of a group at a time, the holder of its
lease; members share a group's partitions evenly and a dead member's leases lapse, so its
partitions move to the living, who claim its pending messages once idle (XAUTOCLAIM).

Within a partition messages are handled one after another, in order; partitions proceed
in parallel. A handler that returns acks its message. One that raises leaves it pending;
the holder redelivers it after a backoff that doubles with each delivery while the rest
of the partition proceeds, and after `max_deliveries` it goes to the topic's dead-letter
stream with the error, acked in the same step: a message is never dropped silently.

A batch subscription may read ahead (`ConsumerOptions.read_ahead`): it reads and hands in
the next round while the handlers of earlier rounds still run, so that a handler that
stores a partition's messages in one transaction gets the next ones while it writes.
Such a handler takes a partition's messages in order before it first awaits; rounds are
acked as their handlers return. Before claiming, retrying or handing back partitions the
consumer waits until nothing is in hand, as it always does without reading ahead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

from opentelemetry.trace import Status, StatusCode

from mailwright.runtime.bus.model import (
    REPLAY_GROUP_HEADER,
    ConsumerOptions,
    Message,
    message_id,
)
from mailwright.runtime.bus.telemetry import BusTelemetry
from mailwright.runtime.bus.transport import Delivery, Failure, StreamRef, Transport

log = logging.getLogger("mailwright.runtime.bus")

Handler = Callable[[Message], Awaitable[None]]
BatchHandler = Callable[[Sequence[Message]], Awaitable[Sequence[Exception | None]]]
"""Handles a partition's messages together, in order; returns one outcome per message:
None acks it, an exception retries it (and dead-letters it after `max_deliveries`)."""
MAX_ERROR_CHARS = 2000


class Subscription:
    """One consumer of a group on some topics; `start()` it, `stop()` it gracefully."""

    def __init__(
        self,
        *,
        transport: Transport,
        telemetry: BusTelemetry,
        streams: Sequence[StreamRef],
        group: str,
        handler: Handler | None,
        consumer: str,
        max_deliveries: int,
        options: ConsumerOptions,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler and batch_handler")
        if options.read_ahead and batch_handler is None:
            raise ValueError(
                "ConsumerOptions.read_ahead needs a batch handler: one message's handler "
                "would be called for the next message before the last one returned"
            )
        self._transport = transport
        self._telemetry = telemetry
        self._streams = list(streams)
        self.group = group
        self.consumer = consumer
        self._handler = handler
        self._batch_handler = batch_handler
        self._max_deliveries = max_deliveries
        self._options = options
        self._held: set[StreamRef] = set()
        self._fresh: set[StreamRef] = set()
        self._to_release: set[StreamRef] = set()
        self._retry: set[StreamRef] = set()
        self._lease_lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._halted = asyncio.Event()  # every loop ends: set when stopped or aborted
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Rounds read ahead and still being handled, oldest first, with when each was read.
        self._in_hand: deque[tuple[float, asyncio.Task[None]]] = deque()
        self._state = "new"
        self._last_adopt = self._last_retry = self._last_housekeeping = time.monotonic()

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(topic for topic, _ in self._streams))

    @property
    def partitions(self) -> frozenset[StreamRef]:
        """The (topic, partition) pairs whose leases this consumer holds now."""
        return frozenset(self._held)

    @property
    def running(self) -> bool:
        return self._state == "running"

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Join the group: create it where missing, take a first share of partitions."""
        if self._state != "new":
            raise RuntimeError(f"subscription {self.consumer} was already started")
        self._state = "starting"
        try:
            await self._transport.ensure_group(self._streams, self.group)
            await self._coordinate()
        except BaseException:
            self._state = "new"
            raise
        self._state = "running"
        self._retry = set(self._held)  # a consumer reusing its name finds its old failures
        self._tasks = [
            asyncio.create_task(self._coordinate_forever(), name=f"bus-lease-{self.consumer}"),
            asyncio.create_task(self._read_forever(), name=f"bus-read-{self.consumer}"),
        ]

    async def stop(self) -> None:
        """Stop reading, finish and ack what is in hand, release the leases, leave."""
        if self._state != "running":
            return
        self._state = "stopping"
        self._stopping.set()
        self._wake.set()
        reader, coordinator = self._tasks[1], self._tasks[0]
        await self._transport.interrupt(self.group, self.consumer)
        await asyncio.wait([reader])  # the coordinator keeps the leases alive meanwhile
        await self._end([coordinator])
        try:
            async with self._lease_lock:
                held, self._held = sorted(self._held), set()
                await self._transport.release(self.group, self.consumer, held)
            await self._transport.leave(self.group, self.consumer, self._streams)
        except Exception as error:  # the leases lapse on their own
            log.warning("consumer %s could not release its leases: %s", self.consumer, error)
        self._state = "stopped"

    async def abort(self) -> None:
        """Stop at once, as a crash would: nothing more is acked and no lease is released;
        messages in hand stay pending until another consumer claims them."""
        self._state = "stopped"
        await self._end([*self._tasks, *(task for _, task in self._in_hand)])

    async def _end(self, tasks: Sequence[asyncio.Task[None]]) -> None:
        """Cancel the tasks and wait until they are over, cancelling again if need be.
        Their loops also watch `_halted`: on Python 3.11 redis-py can lose a cancellation
        (its `asyncio.wait_for` around a socket write), and a stop must not hang."""
        self._halted.set()
        pending = [task for task in tasks if not task.done()]
        while pending:
            for task in pending:
                task.cancel()
            _, still = await asyncio.wait(pending, timeout=1.0)
            pending = list(still)

    # -- leases -----------------------------------------------------------------------

    async def _coordinate(self) -> None:
        async with self._lease_lock:
            leases = await self._transport.coordinate(
                self.group, self.consumer, self._streams, self._options.lease_ttl
            )
            gained = leases.held - self._held
            lost = self._held - leases.held
            self._held = set(leases.held)
            self._fresh = (self._fresh | gained) - lost
            excess = len(self._held) - leases.target
            self._to_release = (
                set(sorted(self._held)[len(self._held) - excess :]) if excess > 0 else set()
            )
        if lost:
            log.warning(
                "consumer %s of group %s lost %d partition leases",
                self.consumer,
                self.group,
                len(lost),
            )
        if gained:
            log.info(
                "consumer %s of group %s took %d partitions", self.consumer, self.group, len(gained)
            )
            self._wake.set()

    async def _coordinate_forever(self) -> None:
        while not self._halted.is_set():
            await asyncio.sleep(self._options.lease_ttl / 3)
            if self._halted.is_set():
                return
            try:
                await self._coordinate()
            except Exception as error:
                log.warning(
                    "consumer %s could not renew its leases: %s",
                    self.consumer,
                    type(error).__name__,
                )

    async def _release_excess(self) -> None:
        """Hand back partitions beyond the fair share; called between batches only, so
        nothing of those partitions is in hand."""
        if not self._to_release:
            return
        async with self._lease_lock:
            releasing = sorted(self._to_release & self._held)
            await self._transport.release(self.group, self.consumer, releasing)
            self._held -= set(releasing)
            self._to_release.clear()

    # -- reading ----------------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = 0.05
        while not self._halted.is_set():
            try:
                if self._stopping.is_set():
                    await self._settle()  # a graceful stop acks what is in hand
                    return
                await self._round()
                delay = 0.05
            except Exception as error:
                log.warning(
                    "consumer %s of group %s: %s; retrying in %.2fs",
                    self.consumer,
                    self.group,
                    type(error).__name__,
                    delay,
                )
                log.debug("consumer error", exc_info=True)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)

    async def _pause(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _round(self) -> None:
        self._wake.clear()
        if self._to_release:
            await self._settle()
            await self._release_excess()
        held = sorted(self._held)
        if not held:
            await self._pause(self._options.block)
            return
        options, now = self._options, time.monotonic()
        adopt = set(self._fresh)
        if now - self._last_adopt >= options.claim_idle / 2:
            adopt, self._last_adopt = set(held), now
        self._fresh -= adopt
        if adopt & self._held:
            # XAUTOCLAIM takes any pending message idle for `claim_idle`, this consumer's
            # own in hand too: let the rounds that might be that old finish first.
            await self._settle(read_before=now - options.claim_idle / 2)
        await asyncio.gather(*(self._adopt(ref) for ref in sorted(adopt & self._held)))
        if self._retry and now - self._last_retry >= options.retry_backoff / 2:
            self._last_retry = now
            await self._settle()  # a retry must not overtake the rounds in hand
            self._retry &= self._held
            await asyncio.gather(*(self._redeliver(ref) for ref in sorted(self._retry)))
        if now - self._last_housekeeping >= options.housekeeping_interval:
            self._last_housekeeping = now
            forget = 2 * max(options.claim_idle, options.lease_ttl)
            for ref in held:
                await self._transport.housekeep(ref, self.group, options.retention, forget)
        if self._stopping.is_set():
            return
        batch = await self._transport.read(
            self.group, self.consumer, held, options.batch_size, options.block
        )
        if not options.read_ahead:
            await self._handle_all(batch)
            return
        if batch:
            task = asyncio.create_task(self._handle_all(batch), name=f"bus-round-{self.consumer}")
            self._in_hand.append((time.monotonic(), task))
        while len(self._in_hand) > options.read_ahead:
            await self._in_hand.popleft()[1]

    async def _settle(self, read_before: float | None = None) -> None:
        """Wait until the rounds read ahead (those read before `read_before`, if given)
        are handled and acked, oldest first."""
        while self._in_hand and (read_before is None or self._in_hand[0][0] < read_before):
            await self._in_hand.popleft()[1]

    async def _adopt(self, ref: StreamRef) -> None:
        """Claim what other (dead or departed) consumers left pending in this partition."""
        while not self._stopping.is_set():
            claimed = await self._transport.autoclaim(
                ref, self.group, self.consumer, self._options.claim_idle, self._options.batch_size
            )
            if claimed:
                log.info(
                    "consumer %s claimed %d pending messages of %s/%d",
                    self.consumer,
                    len(claimed),
                    ref[0],
                    ref[1],
                )
            await self._handle_all({ref: claimed})
            if len(claimed) < self._options.batch_size:
                return

    async def _redeliver(self, ref: StreamRef) -> None:
        """Retry this consumer's failed messages of the partition whose backoff is over."""
        pending = await self._transport.pending(
            ref, self.group, self.consumer, 0.0, self._options.batch_size
        )
        if not pending:
            self._retry.discard(ref)
            return
        due = [e.id for e in pending if e.idle >= self._options.backoff(e.deliveries)]
        if due:
            claimed = await self._transport.claim(ref, self.group, self.consumer, due)
            await self._handle_all({ref: claimed})

    # -- handling ---------------------------------------------------------------------

    async def _handle_all(self, batch: Mapping[StreamRef, Sequence[Delivery]]) -> None:
        """Handle the partitions in parallel, then ack what succeeded in one round trip."""
        refs = list(batch)
        done = await asyncio.gather(*(self._handle(ref, batch[ref]) for ref in refs))
        await self._transport.ack(self.group, dict(zip(refs, done, strict=True)))

    async def _handle(self, ref: StreamRef, deliveries: Sequence[Delivery]) -> list[str]:
        """Handle one partition's deliveries in order; return the ids to ack."""
        if self._batch_handler is not None:
            return await self._handle_batch(ref, deliveries, self._batch_handler)
        done: list[str] = []
        for delivery in deliveries:
            if ref not in self._held:
                break  # the lease moved on: what is left stays pending for the new holder
            if await self._deliver(ref, delivery):
                done.append(delivery.id)
        return done

    def _message(self, ref: StreamRef, delivery: Delivery) -> Message:
        record = delivery.record
        return Message(
            topic=ref[0],
            key=record.key,
            value=record.value,
            headers=dict(record.headers),
            id=message_id(ref[0], ref[1], delivery.id),
            partition=ref[1],
            delivery_count=delivery.deliveries,
        )

    async def _screen(self, ref: StreamRef, delivery: Delivery) -> bool | None:
        """Decide a delivery without the handler: True ack, False dead-lettered, None handle."""
        replay_for = delivery.record.headers.get(REPLAY_GROUP_HEADER)
        if replay_for is not None and replay_for != self.group:
            return True  # a dead letter replayed for another group
        if delivery.deliveries > self._max_deliveries:
            error = (
                f"delivered {delivery.deliveries} times without an outcome: the "
                "consumer stopped or crashed while handling it"
            )
            await self._dead_letter(ref, delivery, error)
            return False
        return None

    async def _handle_batch(
        self, ref: StreamRef, deliveries: Sequence[Delivery], handler: BatchHandler
    ) -> list[str]:
        """Hand the partition's deliveries to the batch handler at once, in order."""
        done: list[str] = []
        batch: list[tuple[Delivery, Message]] = []
        limit = self._max_deliveries
        for delivery in deliveries:
            # Most deliveries need no screening: a first delivery, no replay header.
            if delivery.deliveries > limit or REPLAY_GROUP_HEADER in delivery.record.headers:
                decided = await self._screen(ref, delivery)
                if decided is True:
                    done.append(delivery.id)
                if decided is not None:
                    continue
            batch.append((delivery, self._message(ref, delivery)))
        if not batch or ref not in self._held:
            return done
        started = time.perf_counter()
        messages = [message for _, message in batch]
        with self._telemetry.processing(messages[0], self.group) as span:
            try:
                outcomes = list(await handler(messages))
                if len(outcomes) != len(messages):
                    raise RuntimeError(
                        f"batch handler returned {len(outcomes)} outcomes for "
                        f"{len(messages)} messages"
                    )
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                outcomes = [error] * len(messages)
        elapsed = (time.perf_counter() - started) / len(messages)
        failed = 0
        for (delivery, _), outcome in zip(batch, outcomes, strict=True):
            if outcome is None:
                done.append(delivery.id)
            else:
                failed += 1
                await self._failed(ref, delivery, outcome)
        count = self._telemetry.count_consumed_many
        count(ref[0], self.group, "ack", elapsed, len(messages) - failed)
        count(ref[0], self.group, "error", elapsed, failed)
        return done

    async def _deliver(self, ref: StreamRef, delivery: Delivery) -> bool:
        """Run the handler on one delivery; True when the message is to be acked."""
        message = self._message(ref, delivery)
        decided = await self._screen(ref, delivery)
        if decided is not None:
            return decided
        assert self._handler is not None
        started = time.perf_counter()
        with self._telemetry.processing(message, self.group) as span:
            try:
                await self._handler(message)
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                await self._failed(ref, delivery, error)
                outcome = "error"
            else:
                outcome = "ack"
        self._telemetry.count_consumed(message, self.group, outcome, time.perf_counter() - started)
        return outcome == "ack"

    async def _failed(self, ref: StreamRef, delivery: Delivery, error: Exception) -> None:
        if delivery.deliveries >= self._max_deliveries:
            text = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
            await self._dead_letter(ref, delivery, text)
            return
        self._retry.add(ref)
        log.warning(
            "group %s failed on message %s/%d/%s (delivery %d of %d): %s; retry in %.1fs",
            self.group,
            ref[0],
            ref[1],
            delivery.id,
            delivery.deliveries,
            self._max_deliveries,
            type(error).__name__,
            self._options.backoff(delivery.deliveries),
        )

    async def _dead_letter(self, ref: StreamRef, delivery: Delivery, error: str) -> None:
        failure = Failure(self.group, error, delivery.deliveries)
        await self._transport.dead_letter(ref, delivery, failure, ref[0])
        log.error(
            "group %s dead-lettered message %s/%d/%s after %d deliveries",
            self.group,
            ref[0],
            ref[1],
            delivery.id,
            delivery.deliveries,
        )
