"""The delivery service as the runtime runs it: the servicer, the bus consumers, and the
workers (send worker, campaign scheduler, journey timers, outbox relay)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from starlette.routing import BaseRoute

from mailwright.delivery.v1 import delivery_pb2, delivery_pb2_grpc
from mailwright.plugins import get_plugins
from mailwright.runtime.bus import ConsumerOptions, Subscription
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright_delivery.api import DeliveryServicer
from mailwright_delivery.audience_operations import AudienceDestinations
from mailwright_delivery.audience_runner import AudienceConnectors, AudienceRunner
from mailwright_delivery.campaigns import CampaignRunner
from mailwright_delivery.directory import Directory
from mailwright_delivery.feedback import TOPICS, Consumer, Relay, loop
from mailwright_delivery.journey_runner import JourneyRunner
from mailwright_delivery.operations import Operations
from mailwright_delivery.pipeline import SendWorker
from mailwright_delivery.providers import Policies, Providers, RateLimiter
from mailwright_delivery.records import SendRecord
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore, request_log

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HOUSEKEEPING_INTERVAL = 3600.0
REQUEST_LOG_KEPT = timedelta(days=7)
FEEDBACK_LOG_KEPT = timedelta(days=30)
# Send workers after the first, the outbox relay and the audience workers poll this many
# times less often than `poll_interval`: what this replica writes wakes them at once.
SIBLING_POLLS = 5


class DeliveryApp:
    name = "delivery"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.config = runtime.settings.section("delivery", DeliverySettings)
        self.db = runtime.database("delivery", MIGRATIONS)
        self.store = DeliveryStore(self.db.engine)
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        plugins = get_plugins(runtime.settings)
        self.providers = Providers(plugins, runtime.settings)
        self.policies = Policies(self.db, self.store)
        directory = Directory(runtime.clients)
        # Set when new work is written, so a waiting loop starts at once.
        self._sends_ready = asyncio.Event()
        self._outbox_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self.worker = SendWorker(
            directory=directory,
            providers=self.providers,
            policies=self.policies,
            limiter=RateLimiter(runtime.kv),
            plugins=plugins,
            kv=runtime.kv,
            owner=self.owner,
            db=self.db,
            store=self.store,
            settings=self.config,
            notify_outbox=self._outbox_ready.set,
            notify_campaigns=self._wake.set,
        )
        self.campaigns = CampaignRunner(
            db=self.db,
            store=self.store,
            settings=self.config,
            directory=directory,
            owner=self.owner,
            notify_sends=self._sends_ready.set,
        )
        self.journeys = JourneyRunner(
            db=self.db,
            store=self.store,
            settings=self.config,
            directory=directory,
            owner=self.owner,
            send_now=self._send_now if self.config.workers else None,
        )
        self.consumer = Consumer(
            db=self.db,
            store=self.store,
            journeys=self.journeys,
            policies=self.policies,
            settings=self.config,
            notify_sends=self._sends_ready.set,
        )
        self._audiences_ready = asyncio.Event()
        self._resyncs_ready = asyncio.Event()
        self.audience_connectors = AudienceConnectors(plugins, runtime.settings, self.config)
        self.audience_runner = AudienceRunner(
            db=self.db,
            store=self.store,
            directory=directory,
            connectors=self.audience_connectors,
            settings=self.config,
            owner=self.owner,
            notify=self._wake_audiences,
        )
        self.audiences = AudienceDestinations(
            db=self.db,
            store=self.store,
            directory=directory,
            connectors=self.audience_connectors,
            runner=self.audience_runner,
            wake=self._wake_audiences,
        )
        self.consumer.audiences = self.audience_runner
        self.relay = Relay(self.db, self.store, runtime.bus)
        self.operations = Operations(
            directory=directory,
            worker=self.worker,
            wake=self._wake_all,
            db=self.db,
            store=self.store,
            settings=self.config,
        )
        self.requests = RequestLog(self.db, request_log)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        servicer = DeliveryServicer(
            self.db,
            self.store,
            self.requests,
            self.operations,
            self.providers,
            self.policies,
            self.audiences,
        )
        delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(servicer, server)
        return [delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)
        options = ConsumerOptions(
            block=self.config.consumer_block.total_seconds(),
            retry_backoff=self.config.consumer_retry_backoff.total_seconds(),
        )
        self._subscription = self.runtime.bus.subscribe(
            TOPICS, "delivery", self.consumer.handle, options=options
        )
        await self._subscription.start()
        interval = self.config.poll_interval.total_seconds()
        # (name, tick, wake, poll interval). The relay and the audience workers are woken
        # by what this replica writes; their polls only pick up what another replica (or
        # a crash) left, and audience retries that came due, so they look less often.
        rarely = interval * SIBLING_POLLS
        tasks: list[tuple[str, Any, asyncio.Event | None, float]] = [
            ("relay", self.relay.step, self._outbox_ready, rarely)
        ]
        self._tasks.append(
            asyncio.create_task(
                loop("housekeeping", self._housekeeping, HOUSEKEEPING_INTERVAL, self._stop),
                name="delivery-housekeeping",
            )
        )
        if self.config.workers:
            tasks += [
                ("campaigns", self.campaigns.tick, self._wake, interval),
                ("journeys", self.journeys.tick, None, interval),
                ("audiences", self.audience_runner.tick, self._audiences_ready, rarely),
                (
                    "audience-resyncs",
                    self.audience_runner.resync_tick,
                    self._resyncs_ready,
                    rarely,
                ),
            ]
        for name, tick, wake, every in tasks:
            self._tasks.append(
                asyncio.create_task(
                    loop(name, tick, every, self._stop, wake), name=f"delivery-{name}"
                )
            )
        if self.config.workers:
            # One send worker polls for sends that came due by time alone (retries, a
            # throttle's spacing, quiet hours); the others wait to be woken — by new
            # sends, or by a sibling whose full batch says more are due — and look
            # themselves only now and then.
            for n in range(self.config.worker_concurrency):
                every = interval if n == 0 else rarely
                self._tasks.append(
                    asyncio.create_task(
                        loop(f"sends-{n}", self._send_tick, every, self._stop, self._sends_ready),
                        name=f"delivery-sends-{n}",
                    )
                )

    async def _send_tick(self) -> int:
        claimed = await self.worker.tick()
        if claimed >= self.config.batch_size:
            self._sends_ready.set()  # a full batch: more may be due, wake the others
        return claimed

    def _send_now(self, sends: list[SendRecord]) -> None:
        """Sends a journey move just wrote, already claimed by this replica: to the
        pipeline at once, beside the polling workers (a trigger's email waits for no
        poll and no claim). Should this fail, or the service be stopping, the sends go
        back to the queue at once rather than when their lease runs out."""
        stopping = self._stop.is_set()
        work = self._give_back(sends) if stopping else self._deliver_quietly(sends)
        task = asyncio.create_task(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _deliver_quietly(self, sends: list[SendRecord]) -> None:
        try:
            await self.worker.deliver(sends)
        except Exception:
            log.exception("sending %d new journey sends failed; the workers retry", len(sends))
            await self._give_back(sends)

    async def _give_back(self, sends: list[SendRecord]) -> None:
        now = datetime.now(UTC)
        try:
            await self.db.run(
                self.store.release_sends, [s.id for s in sends], self.owner, None, now
            )
        except Exception:
            log.exception("%d journey sends wait for their lease to run out", len(sends))
        self._sends_ready.set()

    async def _housekeeping(self) -> bool:
        """Forget old request ids and applied feedback; returns False (then waits)."""
        await self.db.run(self.requests.prune, REQUEST_LOG_KEPT)
        await self.db.run(self.store.prune_feedback_log, datetime.now(UTC) - FEEDBACK_LOG_KEPT)
        return False

    def _wake_audiences(self) -> None:
        # Each loop has its own event: a loop clears its event after waiting, and must
        # not clear the other's wake.
        self._audiences_ready.set()
        self._resyncs_ready.set()

    def _wake_all(self) -> None:
        self._wake.set()
        self._sends_ready.set()

    async def stop(self) -> None:
        self._stop.set()
        if self._subscription is not None:
            await self._subscription.stop()
        # Each worker finishes the batch in its hands (recording every outcome), then stops.
        grace = self.runtime.settings.shutdown_grace.total_seconds()
        pending = [*self._tasks, *self._inflight]
        if pending:
            await asyncio.wait(pending, timeout=grace)
        late = [task for task in self._inflight if task not in pending]
        if late:  # sends journey moves made while the workers were finishing
            await asyncio.wait(late, timeout=grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # What the relay had not published yet stays in the outbox for the next start.
        with contextlib.suppress(Exception):
            await self.relay.tick()
        await self.providers.aclose()
        await self.audience_connectors.aclose()


service = ServiceDefinition(
    name="delivery",
    create=DeliveryApp,
    description="Campaigns, journeys, transactional sends, suppression, reports.",
)
