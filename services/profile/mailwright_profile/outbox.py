"""Publishing what the store wrote to its outbox, in order, at least once.

Every change is written to `profile_outbox` in the transaction that makes it, and
published right after the commit. A publish that fails (the bus is down) is retried by
`relay_once`, which also picks up what a crashed process left behind, oldest first. A
published message's row is deleted in the next transaction the service runs anyway
(`take_published`), or by the relay. Consumers may see a message twice, never zero times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from mailwright.runtime.bus import Bus
from mailwright.runtime.bus import Outgoing as BusMessage
from mailwright_profile.store import Outgoing, ProfileStore

log = logging.getLogger(__name__)

PUBLISH_CHUNK = 1000


class Outbox:
    def __init__(
        self,
        bus: Bus,
        store: ProfileStore,
        clock: Callable[[], datetime],
        grace: timedelta = timedelta(seconds=30),
    ) -> None:
        self.bus = bus
        self.store = store
        self.clock = clock
        self.grace = grace
        self._pending: dict[str, Outgoing] = {}
        self._published: list[str] = []
        self._deleting: set[str] = set()
        self._lock = asyncio.Lock()
        self.sent = 0

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        """Publish freshly written messages (and any older ones still waiting), in order."""
        if not outgoing and not self._pending:
            return
        async with self._lock:
            for message in outgoing:
                self._pending[message.id] = message
            await self._drain()

    async def _drain(self) -> None:
        waiting = sorted(self._pending.values(), key=lambda m: m.id)
        for start in range(0, len(waiting), PUBLISH_CHUNK):
            chunk = waiting[start : start + PUBLISH_CHUNK]
            try:
                await self.bus.publish_many([BusMessage(m.topic, m.key, m.payload) for m in chunk])
            except Exception as error:
                log.warning(
                    "could not publish %d profile messages (%s); the relay will retry",
                    len(waiting) - start,
                    type(error).__name__,
                )
                return
            for message in chunk:
                del self._pending[message.id]
                self._published.append(message.id)
            self.sent += len(chunk)

    def take_published(self) -> list[str]:
        """Ids of published messages whose rows may now be deleted (by the caller)."""
        taken, self._published = self._published, []
        self._deleting.update(taken)
        return taken

    def deleted(self, ids: Sequence[str]) -> None:
        """Ids taken whose rows the caller's transaction has deleted."""
        self._deleting.difference_update(ids)

    def give_back(self, ids: Sequence[str]) -> None:
        """Ids taken whose deletion did not happen (the transaction failed)."""
        self._deleting.difference_update(ids)
        self._published[:0] = list(ids)

    async def relay_once(self) -> int:
        """Publish what waits in the outbox (older than the grace period, or failed
        here); delete the rows of what was published. Returns how many were sent."""
        async with self._lock:
            before = self.sent
            skip = [*self._pending, *self._published, *self._deleting]
            cutoff = self.clock() - self.grace
            found = await self.store.db.run(self.store.pending_outbox, cutoff, skip, 5000)
            for message in found:
                self._pending[message.id] = message
            await self._drain()
            done = self.take_published()
            if done:
                try:
                    await self.store.db.run(self.store.delete_outbox, done)
                except Exception:
                    self.give_back(done)
                    raise
                self.deleted(done)
            return self.sent - before

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                sent = await self.relay_once()
                if sent:
                    log.info("outbox relay published %d profile messages", sent)
