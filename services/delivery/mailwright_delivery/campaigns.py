"""The campaign scheduler: starts campaigns when their time comes, snapshots their
audience into the outbox, chooses experiment winners, and marks campaigns sent.

The snapshot is taken at send start, page by page, under a lease: a replica that dies
half-way leaves the lease to expire and another takes the snapshot over; pages written
before are not written twice (each send's key is the campaign and the person).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from mailwright.runtime.db import Database
from mailwright_delivery import experiments, policy, schedule
from mailwright_delivery.convert import campaign_spec
from mailwright_delivery.directory import Directory
from mailwright_delivery.events import send_id_for
from mailwright_delivery.model import (
    PRIORITY_CAMPAIGN,
    CampaignSpec,
    ExperimentKind,
    Recipient,
    SendAtBestTime,
    SendAtLocalTime,
    SendNow,
    SendState,
)
from mailwright_delivery.pipeline import METRIC_COLUMN
from mailwright_delivery.records import CampaignRecord, NewSend
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore

log = logging.getLogger(__name__)
PAGE = 1000
SNAPSHOT_LEASE = timedelta(minutes=2)


class CampaignRunner:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        settings: DeliverySettings,
        owner: str,
        clock: Callable[[], datetime] = policy.utcnow,
        notify_sends: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.settings = settings
        self.owner = owner
        self.clock = clock
        self.notify_sends = notify_sends

    async def tick(self) -> None:
        if await self.db.run(self.store.scheduler_idle):
            return
        now = self.clock()
        started = await self.db.run(
            self.store.claim_campaign_starts, now, self.owner, now + SNAPSHOT_LEASE
        )
        for record in started:
            try:
                await self.snapshot(record)
            except Unavailable as error:
                log.warning("campaign %s waits for its snapshot: %s", record.id, error.message)
            except FailedPrecondition as error:
                log.info("campaign %s: snapshot stopped: %s", record.id, error.message)
        await self.choose_winners()
        await self.db.run(self.store.sweep_cancelled, self.clock())
        for workspace, campaign in await self.db.run(self.store.finish_campaigns, self.clock()):
            log.info("campaign %s/%s sent", workspace, campaign)

    async def snapshot(self, record: CampaignRecord) -> int:
        """Put the campaign's audience, as it is now, in the outbox; its size."""
        workspace = record.workspace
        spec = campaign_spec(workspace, pb.Campaign.FromString(record.spec))
        try:
            version = (await self.directory.template(spec.template)).version
        except (NotFound, FailedPrecondition, InvalidArgument) as error:
            await self.db.run(
                self.store.fail_campaign, workspace, record.id, error.message, self.clock()
            )
            return 0
        audience = await self._audience(workspace, spec)
        start = record.start_at or self.clock()
        needs_people = isinstance(spec.schedule, SendAtLocalTime | SendAtBestTime)
        for offset, end in _pages(len(audience), min(self.settings.batch_size, PAGE)):
            page = audience[offset:end]
            people = (
                await self.directory.recipients(workspace, [p for p, _ in page])
                if needs_people
                else {}
            )
            sends = [
                self._send(
                    record, spec, start, offset + i, profile_id, segment, people.get(profile_id)
                )
                for i, (profile_id, segment) in enumerate(page)
            ]
            now = self.clock()
            await self.db.run(
                self.store.add_snapshot_sends, workspace, record.id, self.owner, sends, now
            )
            self.notify_sends()
            await self.db.run(
                self.store.extend_campaign_lease,
                workspace,
                record.id,
                self.owner,
                now + SNAPSHOT_LEASE,
            )
        size = await self.db.run(
            self.store.finish_snapshot, workspace, record.id, self.owner, version, self.clock()
        )
        log.info("campaign %s/%s: audience of %d snapshotted", workspace, record.id, size)
        return int(size)

    async def _audience(self, workspace: str, spec: CampaignSpec) -> list[tuple[str, str]]:
        """(person, the first included segment they are in), excluded people left out."""
        members: dict[str, str] = {}
        for segment in spec.audience.include_segments:
            async for page in self.directory.members(workspace, segment):
                for profile_id in page:
                    members.setdefault(profile_id, segment)
        excluded: set[str] = set()
        for segment in spec.audience.exclude_segments:
            async for page in self.directory.members(workspace, segment):
                excluded.update(page)
        return sorted((p, s) for p, s in members.items() if p not in excluded)

    def _send(
        self,
        record: CampaignRecord,
        spec: CampaignSpec,
        start: datetime,
        index: int,
        profile_id: str,
        segment: str,
        person: Recipient | None,
    ) -> NewSend:
        assignment = experiments.assign(spec.experiment, record.id, profile_id)
        best = person.traits.get("best_send_hour") if person is not None else None
        due = schedule.due_time(
            spec.schedule or SendNow(),
            start,
            timezone=person.timezone if person is not None else "",
            best_hour=int(best) if isinstance(best, int | float) else None,
        ) + schedule.throttle_offset(index, spec.throttle_per_hour)
        waiting = spec.experiment.kind is ExperimentKind.WINNER and not assignment.in_test
        if waiting:
            due = max(due, start + spec.experiment.window)
        subject = ""
        for variant in spec.experiment.variants:
            if variant.key == assignment.variant:
                subject = variant.subject_variant
        key = f"campaign:{record.id}:{profile_id}"
        return NewSend(
            id=send_id_for(record.workspace, key),
            workspace=record.workspace,
            idempotency_key=key,
            category=spec.category,
            priority=PRIORITY_CAMPAIGN,
            due_at=due,
            profile_id=profile_id,
            campaign_id=record.id,
            variant=assignment.variant,
            subject_variant=subject,
            holdout=assignment.holdout,
            awaiting_winner=waiting and not assignment.holdout,
            segment=segment,
            state=SendState.SKIPPED if assignment.holdout else SendState.QUEUED,
            reason="holdout" if assignment.holdout else "",
            attribution_seconds=int(spec.attribution_window.total_seconds()),
        )

    async def choose_winners(self) -> None:
        now = self.clock()
        for record in await self.db.run(self.store.campaigns_awaiting_winner, now):
            spec = campaign_spec(record.workspace, pb.Campaign.FromString(record.spec))
            experiment = spec.experiment
            if record.start_at is None or record.start_at + experiment.window > now:
                continue
            results = await self.db.run(
                self.store.variant_results,
                record.workspace,
                record.id,
                METRIC_COLUMN[experiment.metric.value],
            )
            arms = []
            for variant in experiment.variants:
                successes, trials, total, squares = results.get(variant.key, (0, 0, 0.0, 0.0))
                moments = (
                    experiments.Moments(trials, total, squares)
                    if experiment.metric.value == "revenue"
                    else None
                )
                arms.append(experiments.Arm(variant.key, successes, trials, moments))
            winner = experiments.choose_winner(arms, experiment.alpha)
            released = await self.db.run(
                self.store.set_winner, record.workspace, record.id, winner.key, now, now
            )
            log.info(
                "campaign %s: winner %s (significant=%s, p=%.4f), %d sends released",
                record.id,
                winner.key,
                winner.significant,
                winner.p_value,
                released,
            )


def _pages(size: int, first: int) -> list[tuple[int, int]]:
    """(start, end) of each page of an audience of `size`: the first is one worker batch,
    so the workers start on it while the rest is written; then `PAGE` at a time."""
    bounds = [0, *range(first, size, PAGE), size] if size > first else [0, size]
    return [(start, end) for start, end in itertools.pairwise(bounds) if end > start]
