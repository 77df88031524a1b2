"""The commands behind the API: what scheduling checks, how a transactional send is
answered, what a report is made of. The servicer translates; this decides."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import datetime

from google.protobuf import json_format

from mailwright.common.v1 import common_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import FailedPrecondition, InvalidArgument, NotFound, Violations
from mailwright.runtime.db import Database
from mailwright_delivery import lifecycle, policy, reports, schedule
from mailwright_delivery.convert import (
    ADDRESS,
    METRIC_PB,
    campaign_spec,
    sender_from_proto,
    sender_json,
    template_name,
)
from mailwright_delivery.directory import Directory, TemplateInfo
from mailwright_delivery.events import send_id_for
from mailwright_delivery.model import (
    PRIORITY_TRANSACTIONAL,
    CampaignSpec,
    CampaignState,
    Category,
    SendNow,
    SendState,
    email_hash,
)
from mailwright_delivery.pipeline import SendWorker
from mailwright_delivery.records import CampaignRecord, FactRow, NewSend, SendRecord
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore

MAX_CONTEXT_BYTES = 256 * 1024


class Operations:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        worker: SendWorker,
        settings: DeliverySettings,
        wake: Callable[[], None],
        clock: Callable[[], datetime] = policy.utcnow,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.worker = worker
        self.settings = settings
        self.wake = wake
        self.clock = clock

    # -- campaigns --------------------------------------------------------------------

    async def check_sendable(self, workspace: str, spec: CampaignSpec) -> str:
        """Refuse what cannot be sent, naming the field; the template version to pin."""
        if not spec.audience.include_segments:
            raise InvalidArgument.field(
                "campaign.audience.include_segments", "a campaign needs an audience: name a segment"
            )
        if not spec.template:
            raise InvalidArgument.field("campaign.template", "a campaign needs a template")
        sizes = []
        for index, segment in enumerate(spec.audience.include_segments):
            try:
                sizes.append(await self.directory.check_segment(workspace, segment))
            except NotFound as error:
                raise InvalidArgument.field(
                    f"campaign.audience.include_segments[{index}]", f"no segment {segment!r}"
                ) from error
        for index, segment in enumerate(spec.audience.exclude_segments):
            try:
                await self.directory.check_segment(workspace, segment)
            except NotFound as error:
                raise InvalidArgument.field(
                    f"campaign.audience.exclude_segments[{index}]", f"no segment {segment!r}"
                ) from error
        if not any(sizes):
            raise FailedPrecondition(
                "the campaign's audience is empty: its segments have no members"
            )
        info = await self._template(spec.template, "campaign.template")
        if spec.category is Category.MARKETING and info.category is Category.TRANSACTIONAL:
            raise FailedPrecondition(
                "a marketing campaign needs a marketing template (with an unsubscribe link and "
                f"a postal address); {spec.template} is transactional"
            )
        for index, variant in enumerate(spec.experiment.variants):
            if variant.template_version:
                await self._template(
                    variant.template_version,
                    f"campaign.experiment.variants[{index}].template_version",
                )
        return info.version

    async def _template(self, name: str, field: str) -> TemplateInfo:
        try:
            return await self.directory.template(name)
        except NotFound as error:
            raise InvalidArgument.field(field, f"unknown template or version {name}") from error
        except FailedPrecondition as error:
            raise InvalidArgument.field(field, error.message) from error

    async def schedule(
        self, workspace: str, campaign_id: str, override: pb.Schedule | None
    ) -> CampaignRecord:
        record = await self.db.run(self.store.require_campaign, workspace, campaign_id)
        lifecycle.transition(record.state, lifecycle.Command.SCHEDULE)
        message = pb.Campaign.FromString(record.spec)
        if override is not None and override.WhichOneof("when") is not None:
            message.schedule.CopyFrom(override)
        spec = campaign_spec(workspace, message)
        when = spec.schedule or SendNow()
        if spec.schedule is None:
            message.schedule.now = True
        now = self.clock()
        schedule.validate(when, now)
        version = await self.check_sendable(workspace, spec)
        start = schedule.start_time(when, now)
        result = await self.db.run(
            self.store.schedule_campaign,
            workspace,
            campaign_id,
            message.SerializeToString(),
            version,
            start,
            now,
        )
        self.wake()
        return result

    async def update(self, workspace: str, campaign_id: str, merged: pb.Campaign) -> CampaignRecord:
        """Save a draft's or a scheduled campaign's new content; a scheduled one is checked
        again as scheduling checks it, and its start and template version follow."""
        record = await self.db.run(self.store.require_campaign, workspace, campaign_id)
        lifecycle.transition(record.state, lifecycle.Command.UPDATE)
        spec = campaign_spec(workspace, merged)
        now = self.clock()
        scheduled = record.state is CampaignState.SCHEDULED
        version = ""
        if scheduled:
            when = spec.schedule or SendNow()
            schedule.validate(when, now)
            version = await self.check_sendable(workspace, spec)
        updated = await self.db.run(
            self.store.update_campaign,
            workspace,
            campaign_id,
            spec.display_name,
            merged.SerializeToString(),
            spec.category,
            now,
        )
        if not scheduled:
            return updated
        start = schedule.start_time(spec.schedule or SendNow(), now)
        result = await self.db.run(
            self.store.schedule_campaign,
            workspace,
            campaign_id,
            merged.SerializeToString(),
            version,
            start,
            now,
        )
        self.wake()
        return result

    async def command(
        self, workspace: str, campaign_id: str, command: lifecycle.Command
    ) -> CampaignRecord:
        result = await self.db.run(
            self.store.command_campaign, workspace, campaign_id, command, self.clock()
        )
        self.wake()
        return result

    # -- transactional ----------------------------------------------------------------

    async def send_transactional(
        self, workspace: str, request: pb.SendTransactionalRequest
    ) -> SendRecord:
        problems = Violations()
        template = template_name(workspace, request.template, "template", problems)
        sender = sender_from_proto(request.sender, "sender", problems)
        which = request.WhichOneof("recipient")
        profile_id = address = ""
        if which == "profile":
            pieces = request.profile.split("/")
            if len(pieces) != 4 or pieces[:1] != ["workspaces"] or pieces[2] != "profiles":
                problems.add("profile", "must look like workspaces/{w}/profiles/{p}")
            elif pieces[1] != workspace:
                problems.add("profile", "names a profile of another workspace")
            else:
                profile_id = pieces[3]
        elif which == "email":
            address = request.email.strip()
            if not ADDRESS.match(address) or len(address) > 320:
                problems.add("email", "is not an email address")
        else:
            problems.add("recipient", "give a profile or an email address")
        context = json_format.MessageToDict(request.context) if request.HasField("context") else {}
        encoded = json.dumps(context)
        if len(encoded) > MAX_CONTEXT_BYTES:
            problems.add("context", f"larger than {MAX_CONTEXT_BYTES} bytes")
        problems.raise_if_any()
        info = await self._template(template, "template")
        key = f"transactional:{request.request_id or uuid.uuid4().hex}"
        now = self.clock()
        new = NewSend(
            id=send_id_for(workspace, key),
            workspace=workspace,
            idempotency_key=key,
            category=Category.TRANSACTIONAL,
            priority=PRIORITY_TRANSACTIONAL,
            due_at=now,
            profile_id=profile_id,
            email_hash=email_hash(address) if address else "",
            address=address,
            template=info.version,
            sender=sender_json(sender),
            context=encoded,
            request_id=request.request_id,
        )
        record, created = await self.db.run(self.store.insert_send, new, now)
        if created or record.state in (SendState.QUEUED, SendState.SENDING):
            await self.worker.tick(only=[record.id])
            record = await self._await_outcome(workspace, record.id)
        return record

    async def _await_outcome(self, workspace: str, send_id: str) -> SendRecord:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.transactional_wait.total_seconds()
        while True:
            record = await self.db.run(self.store.get_send, workspace, send_id)
            assert record is not None
            if record.state not in (SendState.QUEUED, SendState.SENDING):
                return record
            if loop.time() >= deadline:
                return record
            await asyncio.sleep(0.05)

    # -- reports ----------------------------------------------------------------------

    async def campaign_report(
        self, workspace: str, campaign_id: str, by_segment: bool
    ) -> pb.Report:
        record = await self.db.run(self.store.require_campaign, workspace, campaign_id)
        spec = campaign_spec(workspace, pb.Campaign.FromString(record.spec))
        base = await self.db.run(self.store.facts, workspace, campaign_id=campaign_id)
        variants = await self.db.run(
            self.store.facts, workspace, campaign_id=campaign_id, by="variant"
        )
        segments = (
            await self.db.run(self.store.facts, workspace, campaign_id=campaign_id, by="segment")
            if by_segment
            else []
        )
        report = pb.Report(winner=record.winner)
        for row in [*base, *variants, *segments]:
            report.rows.append(report_row(row))
        experiment = spec.experiment
        metric = experiment.metric
        order = {v.key: i for i, v in enumerate(experiment.variants)}
        variant_facts = sorted(
            (to_facts(v) for v in variants), key=lambda f: order.get(f.dimension[8:], 99)
        )
        for comparison in reports.variant_comparisons(variant_facts, metric, experiment.alpha):
            report.comparisons.append(comparison_proto(comparison))
        by_name = {row.dimension: row for row in base}
        if "holdout" in by_name:
            lift = reports.holdout_lift(
                to_facts(by_name["total"]), to_facts(by_name["holdout"]), experiment.alpha
            )
            report.comparisons.append(comparison_proto(lift))
        report.generate_time.FromDatetime(self.clock())
        return report

    async def journey_report(self, workspace: str, journey_id: str) -> pb.GetJourneyReportResponse:
        await self.db.run(self.store.require_journey, workspace, journey_id)
        base = await self.db.run(self.store.facts, workspace, journey_id=journey_id)
        steps = await self.db.run(self.store.facts, workspace, journey_id=journey_id, by="step")
        counts = await self.db.run(self.store.journey_counts, workspace, journey_id)
        report = pb.Report()
        for row in [*base, *steps]:
            report.rows.append(report_row(row))
        report.generate_time.FromDatetime(self.clock())
        return pb.GetJourneyReportResponse(
            report=report,
            waiting=counts["waiting"],
            entered=counts["entered"],
            exited=counts["exited"],
            goals_reached=counts["goals"],
        )


def to_facts(row: FactRow) -> reports.Facts:
    return reports.Facts(
        dimension=row.dimension,
        audience=row.audience,
        sent=row.sent,
        delivered=row.delivered,
        unique_opens=row.unique_opens,
        machine_opens=row.machine_opens,
        unique_clicks=row.unique_clicks,
        conversions=row.conversions,
        revenue=row.revenue,
        revenue_squares=row.revenue_squares,
        currency=row.currency,
        unsubscribes=row.unsubscribes,
        bounces=row.bounces,
        complaints=row.complaints,
        skipped=row.skipped,
        converted_people=row.converted_people,
    )


def report_row(fact: FactRow) -> pb.ReportRow:
    rates = reports.row(to_facts(fact))
    return pb.ReportRow(
        dimension=fact.dimension,
        audience=fact.audience,
        sent=fact.sent,
        delivered=fact.delivered,
        unique_opens=fact.unique_opens,
        machine_opens=fact.machine_opens,
        unique_clicks=fact.unique_clicks,
        click_to_open=rates.click_to_open,
        conversions=fact.conversions,
        revenue=common_pb2.Money(
            currency_code=fact.currency, amount=f"{fact.revenue.normalize():f}"
        ),
        unsubscribes=fact.unsubscribes,
        bounces=fact.bounces,
        complaints=fact.complaints,
        skipped=fact.skipped,
        open_rate=rates.open_rate,
        click_rate=rates.click_rate,
        conversion_rate=rates.conversion_rate,
    )


def comparison_proto(comparison: reports.Comparison) -> pb.Comparison:
    return pb.Comparison(
        left=comparison.left,
        right=comparison.right,
        metric=METRIC_PB[comparison.metric],
        difference=comparison.difference,
        confidence_interval=pb.Interval(low=comparison.low, high=comparison.high),
        p_value=comparison.p_value,
        lift=comparison.lift,
    )
