"""Loading the demo shop's history through ingest's public gRPC API (`IngestBatch`), and
waiting for the platform to digest it.

Events go in batches of `BATCH` with a few calls in flight. Ingest answers once an event
is on the bus; the profile service applies it later, and the segment service after that.
`wait_for_consumers` follows the consumer groups' backlog on the bus (what `mailwright
bus stats` shows an operator) until every group has caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.bus import Bus
from mailwright.runtime.clients import Clients

from .generate import TIME_TRAITS, Customer, DemoEvent, DemoShop

BATCH = 500
IN_FLIGHT = 3
_TYPES = {
    "track": event_pb2.EVENT_TYPE_TRACK,
    "page": event_pb2.EVENT_TYPE_PAGE,
    "identify": event_pb2.EVENT_TYPE_IDENTIFY,
}


def to_proto(event: DemoEvent, customer: Customer, now: datetime) -> event_pb2.Event:
    """The call as a tracking library would send it, at its place before `now`."""
    message = event_pb2.Event(
        message_id=event.message_id,
        type=_TYPES[event.type],
        user_id=event.user_id,
        anonymous_id=event.anonymous_id,
        event=event.event,
        name=event.name,
        category=event.category,
    )
    message.timestamp.FromDatetime(now - timedelta(seconds=event.ago))
    message.context.locale = customer.locale
    message.context.timezone = customer.timezone
    if event.properties:
        message.properties.update(event.properties)
    if event.traits:
        traits = dict(event.traits)
        for key in TIME_TRAITS:
            if isinstance(traits.get(key), int):
                at = now - timedelta(seconds=traits[key])
                traits[key] = at.isoformat(timespec="seconds").replace("+00:00", "Z")
        message.traits.update(traits)
    return message


@dataclass
class LoadCounts:
    customers: int = 0
    sent: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    first_rejection: str = ""


def batches(shop: DemoShop, now: datetime) -> Iterator[tuple[int, list[event_pb2.Event]]]:
    """(customers completed, events) per batch; a customer's events stay in one batch
    unless they alone fill more than one."""
    pending: list[event_pb2.Event] = []
    customers = 0
    for customer, history in shop.histories():
        if pending and len(pending) + len(history) > BATCH:
            yield customers, pending
            pending, customers = [], 0
        for event in history:
            pending.append(to_proto(event, customer, now))
            if len(pending) == BATCH:
                yield customers, pending
                pending, customers = [], 0
        customers += 1
    if pending or customers:
        yield customers, pending


async def ingest(
    clients: Clients,
    parent: str,
    chunks: Iterable[tuple[int, list[event_pb2.Event]]],
    advance: Callable[[int, int], None],
) -> LoadCounts:
    """Send every chunk with `IngestBatch`; `advance(customers, events)` after each."""
    counts = LoadCounts()
    slots = asyncio.Semaphore(IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()

    async def send(customers: int, events: list[event_pb2.Event]) -> None:
        try:
            reply = await clients.ingest.IngestBatch(
                # history: accepted however old, and it starts no journey
                ingest_pb2.IngestBatchRequest(parent=parent, events=events, backfill=True)
            )
        finally:
            slots.release()
        counts.customers += customers
        counts.sent += len(events)
        counts.accepted += reply.accepted_count
        counts.duplicate += reply.duplicate_count
        counts.rejected += reply.rejected_count
        if reply.rejected_count and not counts.first_rejection:
            bad = next(r for r in reply.results if r.status == ingest_pb2.EVENT_STATUS_REJECTED)
            counts.first_rejection = "; ".join(
                f"{v.field}: {v.description}" for v in bad.violations
            )
        advance(customers, len(events))

    for customers, events in chunks:
        await slots.acquire()
        task = asyncio.create_task(send(customers, events))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        # Let the calls run while the next batch is being built.
        await asyncio.sleep(0)
        failed = [t for t in list(tasks) if t.done() and t.exception() is not None]
        if failed:
            raise failed[0].exception()  # type: ignore[misc]
    if tasks:
        await asyncio.gather(*tasks)
    return counts


async def backlogs(bus: Bus) -> dict[str, int]:
    """Messages published and not yet handled, per consumer group."""
    stats = await bus.stats()
    found: dict[str, int] = {}
    for partition in stats.topics:
        for group in partition.groups:
            left = group.pending + (group.lag or 0)
            found[group.group] = found.get(group.group, 0) + left
    return found


async def backlog(bus: Bus) -> int:
    """Messages published and not yet handled, summed over every consumer group."""
    return sum((await backlogs(bus)).values())


async def wait_for_consumers(
    bus: Bus, advance: Callable[[int], None], *, settle: float = 0.5
) -> dict[str, float]:
    """Until every consumer group has handled everything (and stays so for `settle`
    seconds: the profile service's changes feed the segment service, and so on).

    Returns, per group, the seconds it took to catch up (for groups that had work)."""
    quiet_since: float | None = None
    loop = asyncio.get_running_loop()
    started = loop.time()
    busy: set[str] = set()
    caught_up: dict[str, float] = {}
    while True:
        groups = await backlogs(bus)
        for group, left in groups.items():
            if left:
                busy.add(group)
                caught_up.pop(group, None)
            elif group in busy and group not in caught_up:
                caught_up[group] = loop.time() - started
        left = sum(groups.values())
        advance(left)
        if left == 0:
            quiet_since = quiet_since or loop.time()
            if loop.time() - quiet_since >= settle:
                return caught_up
        else:
            quiet_since = None
        await asyncio.sleep(0.25)
