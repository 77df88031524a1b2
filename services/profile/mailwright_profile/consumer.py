"""The consumer of `events.*`: every event applied to its profile once in effect.

The bus hands the batch handler each partition's messages at once, in order, with the
partitions in parallel. The handler queues them and waits while a single writer applies
everything the partitions have handed in together, in one transaction (group commit); it
returns — and the bus acknowledges — only once its events are stored. Order within a
partition holds because the handler queues a partition's messages in order before it
first awaits, and the writer applies the queue in order. That is what lets the bus read
ahead (`ProfileSettings.read_ahead`): the next round is read and queued while the writer
stores the last one, instead of the writer waiting for it.

The writer decodes the messages (`read_event`) on the store's thread, a batch's before
applying it and, on PostgreSQL, the next batch's while the server stores the current one
(`ProfileStore.apply_batch`'s `meanwhile`): the decoding then overlaps the server's work
instead of running on the event loop before the first transaction, with the database
idle. An undecodable message fails alone, in its own handler call.

When a batch fails, it is split in halves, applied in order, and each half that fails is
split again, so that the event that cannot be applied (a poisoned event) fails alone — in
about twice log2(batch) transactions rather than one per event: its handler raises, the
bus retries it and, after `max_deliveries`, moves it to the dead letters, while the
person's other events go on. An event whose id is already in the history is a no-op, so
redelivery is harmless.

The writer allocates many short-lived objects per event and keeps thousands of profile
states between batches; with the interpreter's default thresholds the cyclic garbage
collector runs hundreds of times a run and walks those states each time (about a tenth
of the consumer's time). `start` therefore freezes what start-up allocated
(`gc.freeze`, once per process) and raises the first generation's threshold to
`gc_threshold` (never lowers it); pass 0 to leave the collector alone.

Each event keeps its message's headers: the transaction and the publish of what it changed
run in a span that continues the first event's trace and links every event's, so a trace
follows an event from ingest through here to segment and delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from mailwright.runtime.bus import Message
from mailwright.runtime.bus.telemetry import continue_traces
from mailwright_profile.events import IncomingEvent, decode_event, read_event
from mailwright_profile.outbox import Outbox
from mailwright_profile.store import BatchResult, ProfileStore

log = logging.getLogger(__name__)


class _Ticket:
    """What one handler call waits on: the outcome of each of its events, and a future
    done once every one is decided (one future a call rather than one an event)."""

    __slots__ = ("future", "left", "outcomes")

    def __init__(self, count: int) -> None:
        self.outcomes: list[BaseException | object | None] = [_PENDING] * count
        self.left = count
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, index: int, error: BaseException | None = None) -> None:
        """Decide one event (stored: None); an event already decided keeps its outcome."""
        if self.outcomes[index] is not _PENDING:
            return
        self.outcomes[index] = error
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(None)


_PENDING = object()


class _Item:
    """One event handed in: its message as the bus read it (`raw`) until the writer
    reads it into `event` (or finds it unreadable: `error`), the ticket its handler waits
    on with its place in it, and its message's headers (trace context)."""

    __slots__ = ("error", "event", "headers", "index", "raw", "ticket")

    def __init__(
        self,
        ticket: _Ticket,
        index: int,
        headers: Mapping[str, str] | None,
        raw: bytes | None = None,
        event: IncomingEvent | None = None,
    ) -> None:
        self.ticket, self.index, self.headers = ticket, index, headers
        self.raw, self.event = raw, event
        self.error: Exception | None = None

    def read(self) -> None:
        """Read the message into an event, once."""
        if self.event is None and self.error is None and self.raw is not None:
            try:
                self.event = read_event(decode_event(self.raw), self.raw)
            except Exception as error:  # an unreadable event fails alone
                self.error = error


EVENT_TOPICS = (
    "events.track",
    "events.identify",
    "events.page",
    "events.alias",
    "events.commerce",
    "events.email",
)

DEFAULT_GC_THRESHOLD = 50_000
_frozen = False


def tune_garbage_collector(threshold: int) -> None:
    """Freeze the objects alive now (once per process) and raise the collector's first
    threshold to `threshold` (see the module docstring); 0 does nothing."""
    global _frozen
    if threshold <= 0:
        return
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    first, second, third = gc.get_threshold()
    if first < threshold:
        gc.set_threshold(threshold, max(second, 20), max(third, 50))


class EventConsumer:
    """Group commit of events handed in by the bus (see the module docstring)."""

    def __init__(
        self,
        store: ProfileStore,
        outbox: Outbox,
        clock: Callable[[], datetime],
        max_batch: int = 10_000,
        gather_rounds: int = 4,
        after_batch: Callable[[BatchResult], None] | None = None,
        gc_threshold: int = DEFAULT_GC_THRESHOLD,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.clock = clock
        self.max_batch = max_batch
        self.gather_rounds = gather_rounds
        # Called with each stored batch's result (incremental scoring); must be cheap.
        self.after_batch = after_batch
        self.gc_threshold = gc_threshold
        self._queue: list[_Item] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.applied = 0

    async def start(self) -> None:
        tune_garbage_collector(self.gc_threshold)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="profile-event-writer")

    async def stop(self) -> None:
        """Stop after the events handed in so far are applied (stop the bus first)."""
        await self._idle.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def handle(self, message: Message) -> None:
        """The bus handler: returns once the event is stored; raises if it cannot be."""
        event = read_event(decode_event(message.value), message.value)
        await self.submit(event, message.headers)

    async def handle_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """The bus batch handler: a partition's messages, applied in order with whatever
        the other partitions hand in; one outcome per message (None when stored). The
        writer reads them (see the module docstring)."""
        ticket = _Ticket(len(messages))
        self._queue += [
            _Item(ticket, index, message.headers, raw=message.value)
            for index, message in enumerate(messages)
        ]
        await self._queued(ticket)
        outcomes: list[Exception | None] = []
        for outcome in ticket.outcomes:
            if outcome is None or isinstance(outcome, Exception):
                outcomes.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
        return outcomes

    async def submit(self, event: IncomingEvent, headers: Mapping[str, str] | None = None) -> None:
        ticket = _Ticket(1)
        self._queue.append(_Item(ticket, 0, headers, event=event))
        await self._queued(ticket)
        if isinstance(ticket.outcomes[0], BaseException):
            raise ticket.outcomes[0]

    async def _queued(self, ticket: _Ticket) -> None:
        """Wake the writer for what was just queued and wait until `ticket` is decided
        (at once when none of its events could be queued)."""
        if not ticket.future.done():
            self._idle.clear()
            self._wake.set()
            await ticket.future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # Partitions whose handlers are ready hand in their message within a few
            # turns of the loop; wait for them so they share this transaction.
            for _ in range(self.gather_rounds):
                await asyncio.sleep(0)
            self._wake.clear()
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            if self._queue:
                self._wake.set()
            try:
                await self._flush(batch)
            except Exception as error:  # never let the writer die
                log.exception("profile event writer failed")
                for item in batch:
                    item.ticket.settle(item.index, error)
            if not self._queue:
                self._idle.set()

    async def _flush(self, batch: list[_Item]) -> None:
        with continue_traces(
            "apply events", (item.headers for item in batch), {"events": len(batch)}
        ):
            await self._apply(batch)

    async def _apply(self, batch: list[_Item]) -> None:
        published = self.outbox.take_published()
        try:
            result = await self.store.db.run(self._read_and_apply, batch, self.clock(), published)
        except Exception as error:
            self.outbox.give_back(published)
            readable = _settle_unreadable(batch)
            if len(readable) <= 1:
                for item in readable:
                    log.warning(
                        "event %s could not be applied: %s",
                        item.event.message_id if item.event is not None else "(unread)",
                        type(error).__name__,
                    )
                    item.ticket.settle(item.index, error)
                return
            log.info("a batch of %d events failed; applying it in halves", len(readable))
            middle = len(readable) // 2
            await self._flush(readable[:middle])
            await self._flush(readable[middle:])
            return
        _settle_unreadable(batch)
        self.outbox.deleted(published)
        self.batches += 1
        self.applied += result.applied
        if self.after_batch is not None:
            try:
                self.after_batch(result)
            except Exception:  # never fail a stored batch for what follows it
                log.exception("after-batch hook failed")
        # Stored: the handlers may return (and the bus read on) while the outbox publishes;
        # the next batch is applied only after that publish (this writer waits for it).
        for item in batch:
            item.ticket.settle(item.index)
        await self.outbox.publish(result.outgoing)

    def _read_and_apply(
        self, batch: Sequence[_Item], now: datetime, published: Sequence[str]
    ) -> BatchResult:
        """(On the store's thread.) Read the batch's messages and apply its events; while
        the database stores them, read the next batch's (`_read_next`)."""
        for item in batch:
            item.read()
        events = [item.event for item in batch if item.event is not None]
        return self.store.apply_batch(events, now, published, meanwhile=self._read_next)

    def _read_next(self) -> None:
        # (a slice is taken at once: handlers may append to the queue meanwhile)
        for item in self._queue[: self.max_batch]:
            item.read()


def _settle_unreadable(batch: Sequence[_Item]) -> list[_Item]:
    """Fail the items whose message could not be read; the others."""
    readable: list[_Item] = []
    for item in batch:
        if item.error is not None:
            item.ticket.settle(item.index, item.error)
        else:
            readable.append(item)
    return readable
