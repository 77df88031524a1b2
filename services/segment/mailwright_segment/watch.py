"""Following the transition log: what `WatchMembership` streams.

The log is the one record of every transition, whichever replica made it, so a watcher
reads it by id: first the recorded transitions from the requested start time, then new
ones as they are committed. Commits in this process wake watchers at once; those of other
replicas are seen at the next poll.

On PostgreSQL ids come from a sequence and transactions may commit out of id order: a
watcher that has seen id 11 may still see id 10 appear. It therefore keeps the ids it has
not seen below the highest one it has (gaps) and looks for them again until they are a few
seconds old (a gap that old was a rolled-back transaction, or another workspace's row).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from mailwright_segment.store.memberships import LogEntry

GAP_PATIENCE = 5.0
"""Seconds a missing id is looked for before it is taken as never coming."""


class LogHub:
    """Wakes watchers when transitions are committed in this process."""

    def __init__(self) -> None:
        self.version = 0
        self.closed = False
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait(self, since_version: int, patience: float) -> None:
        """Until a commit after `since_version` (at most `patience` seconds, or closing)."""
        if self.closed or self.version != since_version:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter, patience)
        except TimeoutError:
            return
        finally:
            self._waiters.discard(waiter)

    def close(self) -> None:
        self.closed = True
        self.notify()


@dataclass
class Cursor:
    """Where a watcher is: every id up to `low` is settled; `seen` holds ids above it."""

    low: int
    seen: set[int]
    gaps: dict[int, float]

    def settle(self, now: float) -> None:
        if not self.seen:
            return
        top = max(self.seen)
        while self.low < top:
            nxt = self.low + 1
            if nxt in self.seen:
                self.seen.discard(nxt)
            elif now - self.gaps.setdefault(nxt, now) < GAP_PATIENCE:
                break
            self.gaps.pop(nxt, None)
            self.low = nxt


Fetch = Callable[[int, int | None, int], Awaitable[list[LogEntry]]]
"""fetch(after_id, since, limit) -> entries of the watched workspace and segments, by id."""


async def follow(
    fetch: Fetch,
    hub: LogHub,
    *,
    start_id: int,
    since: int | None,
    poll: float = 0.5,
    page: int = 500,
) -> AsyncIterator[LogEntry]:
    """Entries after `start_id` (from instant `since` when given), then new ones, forever."""
    cursor = Cursor(start_id, set(), {})
    while not hub.closed:
        version = hub.version
        after = cursor.low
        fresh: list[LogEntry] = []
        while True:
            batch = await fetch(after, since, page)
            fresh.extend(e for e in batch if e.id not in cursor.seen)
            if len(batch) < page:
                break
            after = batch[-1].id
        for entry in fresh:
            cursor.seen.add(entry.id)
            yield entry
        cursor.settle(time.monotonic())
        if not fresh:
            await hub.wait(version, poll)


def matches(entry: LogEntry, segment_ids: Sequence[str]) -> bool:
    return not segment_ids or entry.segment_id in segment_ids
