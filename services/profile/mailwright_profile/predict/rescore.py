"""Incremental scoring: the profiles a batch of events changed, re-scored right after it.

The event consumer calls `Rescorer.after_batch(result)` once a batch is stored; that only
notes the changed profiles (cheap, on the consumer's path) and wakes a background task,
which re-scores them with the workspace's current model versions (`Scorer.score`, one row
per person; no retraining), writes the scores and publishes the `profiles.changed` they
cause. A profile changed again while waiting is re-scored once. Current versions are
cached per workspace for `ttl` seconds, so a retrain is picked up within that time; a
workspace without models costs one query per `ttl`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from mailwright_profile.outbox import Outbox
from mailwright_profile.predict.scorers import Scorer
from mailwright_profile.predict.service import Predictor
from mailwright_profile.store.apply import BatchResult
from mailwright_profile.store.outbox import CHANGED_TOPIC, Outgoing

__all__ = ["Rescorer"]

log = logging.getLogger(__name__)


class Rescorer:
    def __init__(
        self,
        predictor: Predictor,
        outbox: Outbox,
        clock: Callable[[], datetime],
        ttl: float = 60.0,
        max_profiles: int = 500,
    ) -> None:
        self.predictor = predictor
        self.outbox = outbox
        self.clock = clock
        self.ttl = ttl
        self.max_profiles = max_profiles
        self._models: dict[str, tuple[float, list[Scorer]]] = {}
        self._pending: dict[str, set[str]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.rescored = 0

    # -- the consumer's side -----------------------------------------------------------

    def after_batch(self, result: BatchResult) -> None:
        """Note the profiles a stored batch changed (its `profiles.changed` messages)."""
        for message in result.outgoing:
            if message.topic != CHANGED_TOPIC:
                continue
            workspace, _, profile = message.key.partition(":")
            if profile:
                self._pending.setdefault(workspace, set()).add(profile)
        if self._pending:
            self._idle.clear()
            self._wake.set()

    # -- the work ----------------------------------------------------------------------

    def models(self, workspace: str) -> list[Scorer]:
        """The workspace's scorers bound to their current versions (cached `ttl` s)."""
        held = self._models.get(workspace)
        if held is not None and time.monotonic() - held[0] < self.ttl:
            return held[1]
        loaded = self.predictor.loaded(workspace)
        self._models[workspace] = (time.monotonic(), loaded)
        return loaded

    def rescore(self, workspace: str, profiles: list[str], now: datetime) -> list[Outgoing]:
        """Re-score these profiles now (blocking; run it in the database's threads)."""
        loaded = self.models(workspace)
        if not loaded:
            return []
        outgoing = self.predictor.rescore(workspace, profiles, now, loaded)
        self.rescored += len(profiles)
        return outgoing

    async def run_once(self) -> int:
        """Re-score what is pending; how many profiles were looked at."""
        pending, self._pending = self._pending, {}
        total = 0
        for workspace, profiles in pending.items():
            ordered = sorted(profiles)
            for start in range(0, len(ordered), self.max_profiles):
                chunk = ordered[start : start + self.max_profiles]
                outgoing = await self.predictor.store.db.run(
                    self.rescore, workspace, chunk, self.clock()
                )
                await self.outbox.publish(outgoing)
                total += len(chunk)
        return total

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_once()
            except Exception:  # scores catch up with the next change or retrain
                log.exception("incremental scoring failed")
            if not self._pending:
                self._idle.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="profile-rescore")

    async def drain(self) -> None:
        """Wait until everything noted so far is re-scored."""
        await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
