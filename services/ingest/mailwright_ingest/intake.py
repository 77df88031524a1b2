"""The front door every event passes: gRPC, the HTTP edge, tracking and webhooks alike.

For a batch of events of one workspace: take the rate, prepare each event (check,
normalise, taxonomy), let plugins enrich the good ones, claim their message ids, publish
every fresh one in one `publish_many`, and commit the claim. One outcome per event, in
order. A bad event is rejected alone; the others are kept. When the bus (or the
key-value store) is down the call fails with UNAVAILABLE and nothing is accepted: the
claims are released, so the retry is not mistaken for a duplicate.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mailwright.common.v1 import event_pb2
from mailwright.errors import Aborted, FieldViolation, ResourceExhausted, Unavailable
from mailwright.runtime.bus import Bus, BusError, Outgoing
from mailwright.runtime.kv import KeyValueStore, KeyValueUnavailable
from mailwright_ingest.catalog import Catalog
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.dedup import Claim, Dedup, InFlight
from mailwright_ingest.events import Rules, partition_key, prepare, topic_of
from mailwright_ingest.policy import MAX_PAST
from mailwright_ingest.values import Limits

log = logging.getLogger(__name__)

T = TypeVar("T")


class Status(enum.Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Outcome:
    """What became of one event of a call."""

    index: int
    message_id: str
    status: Status
    violations: tuple[FieldViolation, ...] = ()
    event: event_pb2.Event | None = None
    """The event as published (accepted events only)."""


EnrichHook = Callable[[event_pb2.Event], Any]


class Intake:
    def __init__(
        self,
        bus: Bus,
        kv: KeyValueStore,
        catalog: Catalog,
        settings: IngestSettings,
        enrich: EnrichHook | None = None,
    ) -> None:
        self.bus = bus
        self.kv = kv
        self.catalog = catalog
        self.dedup = Dedup(kv)
        self.enrich = enrich
        self.limits = Limits(
            max_depth=settings.max_property_depth,
            max_entries=settings.max_properties,
            max_string_chars=settings.max_string_chars,
        )
        self.max_event_bytes = settings.max_event_bytes

    async def ingest(
        self,
        workspace: str,
        events: Sequence[event_pb2.Event],
        *,
        source: str,
        field: Callable[[int], str],
        rate_key: str | None = None,
        trusted: bool = False,
        backfill: bool = False,
        now: datetime | None = None,
    ) -> list[Outcome]:
        """Ingest `events` of `workspace`; `field(i)` names event i in violations
        (`events[3]`), `rate_key` is whose rate to take (a write key, a token);
        `backfill` events are imported history (see `IngestBatchRequest.backfill`)."""
        config = await self._reach(self.catalog.config(workspace))
        policy = config.policy
        if backfill:
            policy = dataclasses.replace(policy, max_past=MAX_PAST)
        if rate_key is not None and policy.rate_per_second > 0 and events:
            await self._take_rate(
                workspace, rate_key, len(events), policy.rate_per_second, policy.burst
            )
        rules = Rules(policy, config.taxonomy, self.limits, self.max_event_bytes)
        moment = now or datetime.now(UTC)
        outcomes: list[Outcome | None] = [None] * len(events)
        ready: list[int] = []
        for index, event in enumerate(events):
            problems = prepare(
                event,
                workspace,
                rules,
                source=source,
                now=moment,
                prefix=field(index),
                trusted=trusted,
                backfill=backfill,
            )
            if not problems and self.enrich is not None:
                problems = self._enrich(event, field(index))
            if problems:
                outcomes[index] = Outcome(index, event.message_id, Status.REJECTED, tuple(problems))
            else:
                ready.append(index)
        await self._publish(workspace, events, ready, outcomes, policy.dedup_window)
        return [outcome for outcome in outcomes if outcome is not None]

    async def _publish(
        self,
        workspace: str,
        events: Sequence[event_pb2.Event],
        ready: list[int],
        outcomes: list[Outcome | None],
        window: timedelta,
    ) -> None:
        if not ready:
            return
        ids = [events[i].message_id for i in ready]
        try:
            claim = await self._reach(self.dedup.claim(workspace, ids, window))
        except InFlight as error:
            raise Aborted(
                f"{len(error.message_ids)} of these events are being ingested by another call"
                " right now (a retry racing the original?); nothing was accepted, retry"
            ) from error
        fresh = [i for i, new in zip(ready, claim.fresh, strict=True) if new]
        try:
            await self.bus.publish_many(
                Outgoing(
                    topic_of(events[i]), partition_key(events[i]), events[i].SerializeToString()
                )
                for i in fresh
            )
        except BusError as error:
            await self._release(claim)
            raise Unavailable(
                f"the event bus is unavailable; nothing was accepted ({error})"
            ) from error
        try:
            await self.dedup.commit(claim)
        except KeyValueUnavailable:
            # The events are on the bus; only a later duplicate could slip through.
            log.warning("dedup commit failed for %d events of %s", len(fresh), workspace)
        published = set(fresh)
        for i in ready:
            event = events[i]
            if i in published:
                outcomes[i] = Outcome(i, event.message_id, Status.ACCEPTED, event=event)
            else:
                outcomes[i] = Outcome(i, event.message_id, Status.DUPLICATE)

    async def _release(self, claim: Claim) -> None:
        try:
            await self.dedup.release(claim)
        except KeyValueUnavailable:
            log.warning(
                "could not release %d dedup claims; they expire with the window", len(claim.keys)
            )

    async def _take_rate(
        self, workspace: str, rate_key: str, count: int, rate: float, burst: int
    ) -> None:
        grant = await self._reach(
            self.kv.take(f"ingest:rate:{workspace}:{rate_key}", rate, burst, min(count, burst))
        )
        if not grant.allowed:
            raise ResourceExhausted(
                f"rate limit of {rate:g} events per second (burst {burst}) exceeded;"
                f" retry in {grant.retry_after:.1f} s",
                retry_after=grant.retry_after,
            )

    def _enrich(self, event: event_pb2.Event, field: str) -> list[FieldViolation]:
        assert self.enrich is not None
        held = (event.workspace, event.message_id, event.type)
        try:
            self.enrich(event)
        except Exception as error:
            log.warning("enrich_event plugin failed on an event: %s", type(error).__name__)
            return [FieldViolation(field, f"a plugin failed to enrich it ({type(error).__name__})")]
        if (event.workspace, event.message_id, event.type) != held:
            return [FieldViolation(field, "a plugin changed its workspace, message_id or type")]
        return []

    @staticmethod
    async def _reach(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except KeyValueUnavailable as error:
            raise Unavailable(
                f"the key-value store is unavailable; nothing was accepted ({error})"
            ) from error
