"""The profile service as the runtime runs it: servicer, store, consumer and upkeep.

On start it migrates its database, creates the monthly event partitions ahead
(PostgreSQL), publishes what a previous run left in the outbox, and subscribes to every
`events.*` topic as group `profile`. In the background it re-evaluates computed traits
that change with time, relays the outbox and prunes what erasure kept for a while.

Settings (`MAILWRIGHT_SERVICES__PROFILE__<FIELD>`): see `ProfileSettings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from mailwright.plugins import Plugins, get_plugins
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.runtime.bus import ConsumerOptions, Subscription
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright_profile import convert
from mailwright_profile.api import ProfileServicer
from mailwright_profile.consumer import DEFAULT_GC_THRESHOLD, EVENT_TOPICS, EventConsumer
from mailwright_profile.outbox import Outbox
from mailwright_profile.predict.rescore import Rescorer
from mailwright_profile.predict.service import (
    Predictor,
    Progress,
    Training,
    quiet,
    scorer_traits,
)
from mailwright_profile.profiles import Profiles
from mailwright_profile.store import ProfileStore
from mailwright_profile.store.tables import request_log
from mailwright_profile.store.upkeep import month_start, next_month

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
GROUP = "profile"


class ProfileSettings(BaseModel):
    """The profile service's own settings."""

    model_config = ConfigDict(extra="forbid")

    max_deliveries: int = Field(default=5, ge=1, le=1000)
    """Deliveries of an event before it goes to the dead letters."""
    retry_backoff: float = Field(default=1.0, gt=0)
    claim_idle: float = Field(default=15.0, gt=0)
    lease_ttl: float = Field(default=10.0, gt=0)
    read_batch: int = Field(default=512, ge=1, le=10_000)
    """Events read per partition per round."""
    read_ahead: int = Field(default=2, ge=0, le=8)
    """Rounds of events read and decoded while the earlier ones are being stored (two:
    a round is acknowledged only once all its events are stored, which may take two
    transactions, and the round after it should not wait for that)."""
    max_batch: int = Field(default=10_000, ge=1, le=10_000)
    """Most events applied in one transaction."""
    gc_threshold: int = Field(default=DEFAULT_GC_THRESHOLD, ge=0)
    """The garbage collector's first threshold while the consumer runs (0: untouched)."""
    refresh_interval: float = Field(default=300.0, gt=0)
    """Seconds between re-evaluations of computed traits that change with time."""
    refresh_limit: int = Field(default=2000, ge=1)
    outbox_interval: float = Field(default=5.0, gt=0)
    outbox_grace: float = Field(default=30.0, ge=0)
    """Seconds before the relay publishes a message its writer has not published."""
    partition_months_ahead: int = Field(default=3, ge=0, le=36)
    erased_event_days: float = Field(default=7.0, gt=0)
    """How long hashes of erased events' ids are kept against late redelivery."""
    model_ttl: float = Field(default=60.0, ge=0)
    """Seconds the current model versions are cached for incremental scoring (a
    retrain is picked up within that time)."""


def now() -> datetime:
    return datetime.now(UTC)


class ProfileApp:
    name = "profile"

    def __init__(
        self,
        runtime: Runtime,
        clock: Callable[[], datetime] = now,
        plugins: Plugins | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.section("profile", ProfileSettings)
        self.clock = clock
        self.db = runtime.database("profile", MIGRATIONS)
        self.store = ProfileStore(
            self.db, convert.encode_changed, convert.encode_deleted, convert.email_hashes
        )
        self.outbox = Outbox(
            runtime.bus, self.store, clock, timedelta(seconds=self.settings.outbox_grace)
        )
        scorers = list((plugins or get_plugins(runtime.settings)).scorers)
        self.predictor = Predictor(self.db, scorers)
        self.rescorer = Rescorer(self.predictor, self.outbox, clock, self.settings.model_ttl)
        self.consumer = EventConsumer(
            self.store,
            self.outbox,
            clock,
            self.settings.max_batch,
            after_batch=self.rescorer.after_batch,
            gc_threshold=self.settings.gc_threshold,
        )
        self.profiles = Profiles(self.store, self.outbox, clock, scorer_traits(scorers))
        self.requests = RequestLog(self.db, request_log)
        self.subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        servicer = ProfileServicer(self.profiles, self.requests, self.clock)
        profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
        return [profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)
        await self.partitions()
        await self.outbox.relay_once()
        await self.consumer.start()
        await self.rescorer.start()
        s = self.settings
        options = ConsumerOptions(
            lease_ttl=s.lease_ttl,
            claim_idle=s.claim_idle,
            retry_backoff=s.retry_backoff,
            batch_size=s.read_batch,
            read_ahead=s.read_ahead,
        )
        self.subscription = self.runtime.bus.subscribe_batches(
            list(EVENT_TOPICS),
            GROUP,
            self.consumer.handle_many,
            max_deliveries=s.max_deliveries,
            options=options,
        )
        await self.subscription.start()
        self._every("profile-refresh", s.refresh_interval, self.refresh)
        self._every("profile-outbox", s.outbox_interval, self.outbox.relay_once)
        self._every("profile-upkeep", 6 * 3600.0, self.upkeep)

    def _every(
        self, name: str, interval: float, job: Callable[[], Coroutine[Any, Any, Any]]
    ) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await job()
                except Exception:
                    log.exception("%s failed; will try again", name)

        self._tasks.append(asyncio.create_task(loop(), name=name))

    async def partitions(self) -> list[str]:
        """Create the event partitions of this month and the next ones (PostgreSQL)."""
        today = self.clock().date()
        last = month_start(today)
        for _ in range(self.settings.partition_months_ahead):
            last = next_month(last)
        created: list[str] = await self.db.run(self.store.ensure_partitions, today, last)
        return created

    async def refresh(self) -> int:
        """Re-evaluate computed traits that changed with time alone; announce changes."""
        total = 0
        while True:
            count, outgoing = await self.db.run(
                self.store.refresh_due, self.clock(), self.settings.refresh_limit
            )
            await self.outbox.publish(outgoing)
            total += count
            if count < self.settings.refresh_limit:
                return total

    async def train_models(
        self,
        workspace: str,
        as_of: datetime | None = None,
        models: Sequence[str] = (),
        progress: Progress = quiet,
    ) -> Training:
        """What `mailwright predict train` does for one workspace (`as_of` is its
        `--as-of`; default now), run by this process on its own database, for a platform
        that embeds the service (the demo). The job, another process, leaves the score
        changes to this service's outbox relay, which waits `outbox_grace` before it
        publishes a row; here they are published as soon as they are written, as the
        incremental re-scoring publishes its own."""
        training = await self.db.run(
            self.predictor.train_and_score,
            workspace,
            as_of or self.clock(),
            list(models),
            progress,
        )
        await self.outbox.publish(training.outgoing)
        return training

    async def upkeep(self) -> None:
        await self.partitions()
        await self.db.run(
            self.store.prune, self.clock(), timedelta(days=self.settings.erased_event_days)
        )
        await self.db.run(self.requests.prune)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.subscription is not None:
            await self.subscription.stop()
            self.subscription = None
        await self.consumer.stop()
        await self.rescorer.stop()
        with contextlib.suppress(Exception):
            await self.outbox.relay_once()


service = ServiceDefinition(
    name="profile",
    create=ProfileApp,
    description="Identity resolution, single customer view, computed traits, consent, GDPR.",
    migrations=MIGRATIONS,
)
