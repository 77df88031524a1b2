"""The segment service as the runtime runs it.

Besides the servicer, the service runs:

* the **consumer** of `profiles.changed` and `profiles.deleted` (group `segment`), which
  hands the changes to the membership engine and publishes what they logged. It takes a
  partition's messages at once (the bus's batch subscription) and applies the changes in
  order in one transaction (group commit), then publishes once for all of them. When that
  transaction fails, the changes are applied one by one, each in its own transaction, so
  the one that cannot be applied (a poisoned message) fails alone: the bus retries it and,
  after `max_deliveries`, moves it to the dead letters, while the others are applied. An
  event already held is skipped, so a redelivered batch changes nothing and logs no
  transition twice. Erasures (`profiles.deleted`) are applied one at a time, as are
  messages that cannot be read (they fail alone);
* the **publisher** of `segments.membership`: transitions are logged in the same
  transaction that makes them (the outbox) and published right after it commits; a sweep
  republishes any a crash left behind (at least once);
* the **timer loop**, which claims due timers (atomically: two replicas never fire one
  timer) and re-evaluates those memberships; timers live in the database, so they survive
  a restart;
* the **job worker**, which runs recompute jobs slice by slice (a replica that dies leaves
  its job to another once its lease lapses);
* **housekeeping**: pruning the event log past its retention, unused specs, old history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path

import grpc
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import BaseRoute

from mailwright.errors import MailwrightError
from mailwright.names import WORKSPACE_ID
from mailwright.profile.v1 import profile_pb2
from mailwright.rules.library import builtin_taxonomy
from mailwright.runtime.bus import ConsumerOptions, Message, Outgoing, Subscription
from mailwright.runtime.db import is_busy
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright.runtime.settings import Duration
from mailwright.segment.v1 import segment_pb2, segment_pb2_grpc
from mailwright_segment.api import SegmentServicer
from mailwright_segment.catalog import SegmentCatalog
from mailwright_segment.engine import Clock, MembershipEngine, Outcome, wall_clock
from mailwright_segment.facts import ProfileChange, profile_change, profile_erasure
from mailwright_segment.messages import MEMBERSHIP_TOPIC, change_message, membership_key
from mailwright_segment.store import sqlfuncs
from mailwright_segment.store.memberships import JobRow
from mailwright_segment.store.tables import request_log
from mailwright_segment.watch import LogHub

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
CHANGED_TOPIC = "profiles.changed"
DELETED_TOPIC = "profiles.deleted"


class SegmentSettings(BaseModel):
    """`MAILWRIGHT_SERVICES__SEGMENT__<FIELD>`."""

    model_config = ConfigDict(extra="forbid")

    event_retention: Duration = timedelta(days=400)
    """How long the event log (raw events, hits, email actions) is kept; day buckets stay.
    Sliding windows may not be longer."""
    history_retention: Duration = timedelta(days=30)
    """How long published membership transitions are kept for WatchMembership replays."""
    timer_poll: Duration = timedelta(seconds=1)
    timer_batch: int = Field(default=200, ge=1, le=10_000)
    recompute_slice: int = Field(default=2000, ge=10, le=100_000)
    housekeeping_interval: Duration = timedelta(hours=1)
    republish_after: Duration = timedelta(seconds=10)
    read_batch: int = Field(default=256, ge=1, le=10_000)
    """Messages read per partition at once: the most changes applied in one transaction.
    Only a backlog fills a batch; catching up on one, 256 took a sixth less CPU than 64."""
    max_deliveries: int = Field(default=5, ge=1, le=1000)
    """Deliveries of a message that keeps failing before it goes to the dead letters."""
    retry_backoff: float = Field(default=1.0, gt=0)
    """Seconds before a failed message is redelivered; doubles with each delivery."""


class SegmentApp:
    name = "segment"

    def __init__(self, runtime: Runtime, clock: Clock = wall_clock) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.section("segment", SegmentSettings)
        self.db = runtime.database("segment", MIGRATIONS)
        sqlfuncs.prepare(self.db.engine)
        self.engine = MembershipEngine(
            self.db.engine, clock=clock, retention=self.settings.event_retention
        )
        self.catalog = SegmentCatalog(self.engine, retention=self.settings.event_retention)
        self.hub = LogHub()
        self.requests = RequestLog(self.db, request_log)
        self.owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.taxonomy, _ = builtin_taxonomy()
        self.subscription: Subscription | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self._timers_wake = asyncio.Event()
        self._jobs_wake = asyncio.Event()

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        servicer = SegmentServicer(
            self.db,
            self.catalog,
            self.requests,
            self.hub,
            self._jobs_wake.set,
        )
        segment_pb2_grpc.add_SegmentServiceServicer_to_server(servicer, server)
        return [segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)
        s = self.settings
        self.subscription = self.runtime.bus.subscribe_batches(
            [CHANGED_TOPIC, DELETED_TOPIC],
            "segment",
            self.handle_many,
            max_deliveries=s.max_deliveries,
            options=ConsumerOptions(retry_backoff=s.retry_backoff, batch_size=s.read_batch),
        )
        await self.subscription.start()
        for name, loop in (
            ("timers", self._run_timers),
            ("jobs", self._run_jobs),
            ("outbox", self._run_outbox),
            ("housekeeping", self._run_housekeeping),
        ):
            self.tasks.append(
                asyncio.create_task(self._forever(name, loop), name=f"segment-{name}")
            )

    async def stop(self) -> None:
        self.hub.close()
        if self.subscription is not None:
            await self.subscription.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    # -- consuming ----------------------------------------------------------------------
    async def handle(self, message: Message) -> None:
        """Apply one message in its own transaction and publish what it logged."""
        if message.topic == DELETED_TOPIC:
            erasure = profile_erasure(profile_pb2.ProfileDeleted.FromString(message.value))
            _check_identity(erasure.workspace, erasure.profile_id)
            await self.after(await self.db.run(self.engine.erase, erasure))
            return
        await self.after(await self.db.run(self.engine.apply, self._change(message)))

    async def handle_many(self, messages: Sequence[Message]) -> list[Exception | None]:
        """The bus batch handler: a partition's messages in order; one outcome per message
        (None when applied). Consecutive changes share one transaction (see the module
        docstring); what they logged is published once, after it commits."""
        outcomes: list[Exception | None] = [None] * len(messages)
        pending: list[tuple[int, ProfileChange]] = []
        done = Outcome()
        for index, message in enumerate(messages):
            if message.topic == DELETED_TOPIC:
                # What came before is published first, as the erasure deletes the history.
                done.extend(await self._apply_changes(pending, outcomes))
                await self.after(done)
                pending, done = [], Outcome()
                try:
                    await self.handle(message)
                except Exception as error:  # an erasure fails alone
                    outcomes[index] = error
                continue
            try:
                pending.append((index, self._change(message)))
            except Exception as error:  # an unreadable message fails alone
                outcomes[index] = error
        done.extend(await self._apply_changes(pending, outcomes))
        await self.after(done)
        return outcomes

    def _change(self, message: Message) -> ProfileChange:
        change = profile_change(profile_pb2.ProfileChanged.FromString(message.value), self.taxonomy)
        _check_identity(change.workspace, change.profile_id)
        return change

    async def _apply_changes(
        self, changes: list[tuple[int, ProfileChange]], outcomes: list[Exception | None]
    ) -> Outcome:
        """Apply the changes in one transaction or, if that fails, one by one; record the
        failures in `outcomes` (by message index) and return what was logged."""
        if not changes:
            return Outcome()
        try:
            return await self.db.run(self.engine.apply_many, [c for _, c in changes])
        except Exception as error:
            if len(changes) == 1:
                outcomes[changes[0][0]] = error
                return Outcome()
            log.info(
                "a batch of %d changes failed (%s); applying them one by one",
                len(changes),
                type(error).__name__,
            )
        done = Outcome()
        for index, change in changes:
            try:
                done.extend(await self.db.run(self.engine.apply, change))
            except Exception as error:
                log.warning(
                    "change of profile %s could not be applied: %s",
                    change.profile_id,
                    type(error).__name__,
                )
                outcomes[index] = error
        return done

    async def after(self, outcome: Outcome) -> None:
        """Publish what a unit of work logged; wake watchers and, if needed, the timers."""
        if outcome.log_ids:
            self.hub.notify()
            await self.publish(outcome.log_ids)
        if outcome.earliest_due is not None:
            self._timers_wake.set()

    async def publish(self, ids: list[int] | None) -> int:
        entries = await self.db.run(self.catalog.unpublished, ids)
        if ids is None:
            cutoff = self.engine.clock() - self.settings.republish_after // timedelta(
                microseconds=1
            )
            entries = [e for e in entries if e.at < cutoff]
        if not entries:
            return 0
        try:
            await self.runtime.bus.publish_many(
                [
                    Outgoing(
                        MEMBERSHIP_TOPIC,
                        membership_key(e),
                        change_message(e).SerializeToString(),
                    )
                    for e in entries
                ]
            )
        except Exception:
            log.warning("publishing %d membership changes failed; will retry", len(entries))
            return 0
        await self.db.run(self.catalog.mark_published, entries)
        return len(entries)

    # -- background loops ---------------------------------------------------------------
    async def _forever(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if is_busy(error):
                    log.warning("segment %s loop: the database is busy; trying again", name)
                else:
                    log.exception("segment %s loop failed; restarting", name)
                await asyncio.sleep(1.0)

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(seconds, 0.0))
        event.clear()

    async def _run_timers(self) -> None:
        poll = self.settings.timer_poll.total_seconds()
        while True:
            claimed = await self.db.run(
                self.engine.claim_timers, self.owner, self.settings.timer_batch
            )
            for segment_pk, profile_pk in claimed:
                await self.after(
                    await self.db.run(self.engine.fire_timer, self.owner, segment_pk, profile_pk)
                )
            if len(claimed) >= self.settings.timer_batch:
                continue
            due = await self.db.run(self.engine.next_due)
            delay = poll if due is None else min(poll, (due - self.engine.clock()) / 1e6)
            if delay > 0:
                await self._wait(self._timers_wake, delay)

    async def _run_jobs(self) -> None:
        while True:
            job = await self.db.run(self.catalog.claim_job, self.owner)
            if job is None:
                await self._wait(self._jobs_wake, 1.0)
                continue
            await self._work(job)

    async def _work(self, job: JobRow) -> None:
        while True:
            try:
                result = await self.db.run(
                    self.engine.recompute_slice, job, self.settings.recompute_slice
                )
            except (LookupError, MailwrightError) as error:
                await self.db.run(self.catalog.finish_job, job, str(error))
                return
            await self.after(result.outcome)
            if result.finished:
                await self.db.run(self.catalog.finish_job, job, "")
                log.info("recompute of %s done", job.segment_id)
                return
            job = await self.db.run(self.catalog.job, job.ws, job.job_id)

    async def _run_outbox(self) -> None:
        while True:
            await asyncio.sleep(self.settings.republish_after.total_seconds() / 2)
            await self.publish(None)

    async def _run_housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval.total_seconds())
            deleted = await self.db.run(self.engine.prune)
            await self.db.run(self.engine.prune_history, self.settings.history_retention)
            await self.db.run(self.requests.prune)
            log.info("housekeeping deleted %d rows past their retention", deleted)


def _check_identity(workspace: str, profile_id: str) -> None:
    """A bus message that names no valid workspace or profile can never be applied."""
    if not WORKSPACE_ID.match(workspace or ""):
        raise ValueError("message has no valid workspace")
    if not profile_id or len(profile_id) > 128:
        raise ValueError("message has no valid profile_id")


service = ServiceDefinition(
    name="segment",
    create=SegmentApp,
    description="Segments: rules, batch and incremental evaluation, real-time membership.",
)
