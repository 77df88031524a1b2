"""Protobuf ↔ delivery's domain values, with the checks that name each bad field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2

from mailwright.common.v1 import common_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import Violations
from mailwright.names import RESOURCE_ID, resource_name
from mailwright_delivery import schedule as schedules
from mailwright_delivery.model import (
    Audience,
    CampaignSpec,
    Category,
    DeliveryPolicy,
    Experiment,
    ExperimentKind,
    FrequencyCap,
    Metric,
    QuietHours,
    Schedule,
    SendAt,
    SendAtBestTime,
    SendAtLocalTime,
    Sender,
    SendNow,
    SendState,
    SuppressionReason,
    Variant,
)
from mailwright_delivery.records import CampaignRecord, SendRecord, SuppressionRecord

MAX_NAME = 200
ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

CATEGORY = {
    pb.CATEGORY_MARKETING: Category.MARKETING,
    pb.CATEGORY_TRANSACTIONAL: Category.TRANSACTIONAL,
}
CATEGORY_PB = {value: key for key, value in CATEGORY.items()}
KIND = {
    pb.EXPERIMENT_KIND_UNSPECIFIED: ExperimentKind.NONE,
    pb.EXPERIMENT_KIND_SPLIT: ExperimentKind.SPLIT,
    pb.EXPERIMENT_KIND_WINNER: ExperimentKind.WINNER,
    pb.EXPERIMENT_KIND_BANDIT: ExperimentKind.BANDIT,
}
METRIC = {
    pb.METRIC_UNSPECIFIED: Metric.OPENS,
    pb.METRIC_OPENS: Metric.OPENS,
    pb.METRIC_CLICKS: Metric.CLICKS,
    pb.METRIC_CONVERSIONS: Metric.CONVERSIONS,
    pb.METRIC_REVENUE: Metric.REVENUE,
}
METRIC_PB = {
    Metric.OPENS: pb.METRIC_OPENS,
    Metric.CLICKS: pb.METRIC_CLICKS,
    Metric.CONVERSIONS: pb.METRIC_CONVERSIONS,
    Metric.REVENUE: pb.METRIC_REVENUE,
}
STATE_PB = {
    "draft": pb.CAMPAIGN_STATE_DRAFT,
    "scheduled": pb.CAMPAIGN_STATE_SCHEDULED,
    "sending": pb.CAMPAIGN_STATE_SENDING,
    "paused": pb.CAMPAIGN_STATE_PAUSED,
    "sent": pb.CAMPAIGN_STATE_SENT,
    "cancelled": pb.CAMPAIGN_STATE_CANCELLED,
}
STATE_FROM_PB = {value: key for key, value in STATE_PB.items()}
SEND_STATE_PB = {
    SendState.QUEUED: pb.SEND_STATE_QUEUED,
    SendState.SENDING: pb.SEND_STATE_QUEUED,
    SendState.SENT: pb.SEND_STATE_SENT,
    SendState.DELIVERED: pb.SEND_STATE_DELIVERED,
    SendState.DEFERRED: pb.SEND_STATE_DEFERRED,
    SendState.BOUNCED: pb.SEND_STATE_BOUNCED,
    SendState.SKIPPED: pb.SEND_STATE_SKIPPED,
    SendState.PARKED: pb.SEND_STATE_PARKED,
    SendState.CANCELLED: pb.SEND_STATE_CANCELLED,
}
SEND_STATE_FROM_PB = {
    pb.SEND_STATE_QUEUED: SendState.QUEUED,
    pb.SEND_STATE_SENT: SendState.SENT,
    pb.SEND_STATE_DELIVERED: SendState.DELIVERED,
    pb.SEND_STATE_DEFERRED: SendState.DEFERRED,
    pb.SEND_STATE_BOUNCED: SendState.BOUNCED,
    pb.SEND_STATE_SKIPPED: SendState.SKIPPED,
    pb.SEND_STATE_PARKED: SendState.PARKED,
    pb.SEND_STATE_CANCELLED: SendState.CANCELLED,
}
REASON_PB = {
    SuppressionReason.UNSUBSCRIBED: pb.SUPPRESSION_REASON_UNSUBSCRIBED,
    SuppressionReason.HARD_BOUNCE: pb.SUPPRESSION_REASON_HARD_BOUNCE,
    SuppressionReason.SOFT_BOUNCES: pb.SUPPRESSION_REASON_SOFT_BOUNCES,
    SuppressionReason.COMPLAINT: pb.SUPPRESSION_REASON_COMPLAINT,
    SuppressionReason.MANUAL: pb.SUPPRESSION_REASON_MANUAL,
    SuppressionReason.ERASED: pb.SUPPRESSION_REASON_ERASED,
}
REASON_FROM_PB = {value: key for key, value in REASON_PB.items()}


# -- small values --------------------------------------------------------------------


def to_datetime(value: timestamp_pb2.Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


def to_timedelta(value: duration_pb2.Duration) -> timedelta:
    return value.ToTimedelta()


def stamp(target: timestamp_pb2.Timestamp, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value.astimezone(UTC))


def template_name(workspace: str, text: str, field: str, problems: Violations) -> str:
    """`welcome`, `workspaces/ws/templates/welcome` or `.../versions/3`, normalised."""
    if not text:
        problems.add(field, "must name a template or a template version")
        return ""
    if not text.startswith("workspaces/"):
        if not RESOURCE_ID.match(text):
            problems.add(field, f"{text!r} is not a template id")
            return ""
        return resource_name(workspace, "templates", text)
    pieces = text.split("/")
    if (
        len(pieces) not in (4, 6)
        or pieces[2] != "templates"
        or (len(pieces) == 6 and (pieces[4] != "versions" or not pieces[5].isdigit()))
    ):
        problems.add(field, "must look like workspaces/{w}/templates/{t}[/versions/{n}]")
        return ""
    if pieces[1] != workspace:
        problems.add(field, "names a template of another workspace")
        return ""
    return text


def segment_id(workspace: str, text: str, field: str, problems: Violations) -> str:
    if text.startswith("workspaces/"):
        pieces = text.split("/")
        if len(pieces) != 4 or pieces[2] != "segments":
            problems.add(field, "must look like workspaces/{w}/segments/{s} or a segment id")
            return ""
        if pieces[1] != workspace:
            problems.add(field, "names a segment of another workspace")
            return ""
        text = pieces[3]
    if not RESOURCE_ID.match(text):
        problems.add(field, f"{text!r} is not a segment id")
        return ""
    return text


def sender_from_proto(message: pb.Sender, field: str, problems: Violations) -> Sender:
    for name in ("from_address", "reply_to"):
        value = getattr(message, name)
        if value and not ADDRESS.match(value):
            problems.add(f"{field}.{name}", "is not an email address")
    if len(message.from_name) > MAX_NAME:
        problems.add(f"{field}.from_name", f"longer than {MAX_NAME} characters")
    if any(c in message.from_name for c in "\r\n"):
        problems.add(f"{field}.from_name", "must not contain line breaks")
    return Sender(message.from_address, message.from_name, message.reply_to, message.provider)


def sender_to_proto(sender: Sender) -> pb.Sender:
    return pb.Sender(
        from_address=sender.from_address,
        from_name=sender.from_name,
        reply_to=sender.reply_to,
        provider=sender.provider,
    )


def sender_json(sender: Sender) -> str:
    return json.dumps(
        {
            "from_address": sender.from_address,
            "from_name": sender.from_name,
            "reply_to": sender.reply_to,
            "provider": sender.provider,
        }
    )


def sender_from_json(text: str) -> Sender:
    if not text:
        return Sender()
    data = json.loads(text)
    return Sender(
        data.get("from_address", ""),
        data.get("from_name", ""),
        data.get("reply_to", ""),
        data.get("provider", ""),
    )


def schedule_from_proto(message: pb.Schedule, field: str, problems: Violations) -> Schedule | None:
    which = message.WhichOneof("when")
    if which is None:
        return None
    if which == "now":
        if not message.now:
            problems.add(f"{field}.now", "must be true when given")
        return SendNow()
    if which == "send_time":
        return SendAt(to_datetime(message.send_time))
    if which == "local_time":
        local = message.local_time
        return SendAtLocalTime(
            local.date, local.hour, local.minute, local.fallback_timezone or "UTC"
        )
    best = message.best_time
    window = to_timedelta(best.window) if best.HasField("window") else timedelta(days=1)
    return SendAtBestTime(to_datetime(best.start_time), window)


def experiment_from_proto(message: pb.Experiment, field: str, problems: Violations) -> Experiment:
    kind = KIND.get(message.kind, ExperimentKind.NONE)
    variants = tuple(
        Variant(
            v.key,
            v.subject_variant,
            v.preheader_variant,
            v.template_version,
            v.weight if v.weight else 1.0,
        )
        for v in message.variants
    )
    keys = [v.key for v in variants]
    for index, variant in enumerate(message.variants):
        where = f"{field}.variants[{index}]"
        if not variant.key or not RESOURCE_ID.match(variant.key) or len(variant.key) > 64:
            problems.add(f"{where}.key", "must be a short id of letters, digits, - and _")
        elif keys.count(variant.key) > 1:
            problems.add(f"{where}.key", f"{variant.key!r} is used by another variant")
        if variant.weight < 0:
            problems.add(f"{where}.weight", "must not be negative")
    if kind is not ExperimentKind.NONE and len(variants) < 2:
        problems.add(f"{field}.variants", "an experiment needs at least two variants")
    if not 0 <= message.holdout_fraction < 1:
        problems.add(f"{field}.holdout_fraction", "must be in [0, 1)")
    test_fraction = message.test_fraction or 0.2
    if kind is ExperimentKind.WINNER and not 0 < test_fraction < 1:
        problems.add(f"{field}.test_fraction", "must be in (0, 1)")
    alpha = message.alpha or 0.05
    if not 0 < alpha <= 0.5:
        problems.add(f"{field}.alpha", "must be in (0, 0.5]")
    window = to_timedelta(message.window) if message.HasField("window") else timedelta(hours=4)
    if kind is ExperimentKind.WINNER and not timedelta(seconds=1) <= window <= timedelta(days=30):
        problems.add(f"{field}.window", "must be between 1 second and 30 days")
    return Experiment(
        kind,
        variants,
        test_fraction,
        window,
        METRIC.get(message.metric, Metric.OPENS),
        message.holdout_fraction,
        alpha,
    )


def campaign_spec(workspace: str, message: pb.Campaign, field: str = "campaign") -> CampaignSpec:
    """Read a Campaign message; every bad field is reported at once."""
    problems = Violations()
    if len(message.display_name) > MAX_NAME:
        problems.add(f"{field}.display_name", f"longer than {MAX_NAME} characters")
    include = tuple(
        segment_id(workspace, s, f"{field}.audience.include_segments[{i}]", problems)
        for i, s in enumerate(message.audience.include_segments)
    )
    exclude = tuple(
        segment_id(workspace, s, f"{field}.audience.exclude_segments[{i}]", problems)
        for i, s in enumerate(message.audience.exclude_segments)
    )
    template = (
        template_name(workspace, message.template, f"{field}.template", problems)
        if message.template
        else ""
    )
    sender = sender_from_proto(message.sender, f"{field}.sender", problems)
    when = schedule_from_proto(message.schedule, f"{field}.schedule", problems)
    if message.throttle_per_hour < 0:
        problems.add(f"{field}.throttle_per_hour", "must not be negative")
    category = CATEGORY.get(message.category, Category.MARKETING)
    experiment = experiment_from_proto(message.experiment, f"{field}.experiment", problems)
    for index, variant in enumerate(experiment.variants):
        if variant.template_version:
            template_name(
                workspace,
                variant.template_version,
                f"{field}.experiment.variants[{index}].template_version",
                problems,
            )
    window = timedelta(days=7)
    if message.HasField("attribution_window"):
        window = to_timedelta(message.attribution_window)
        if not timedelta(hours=1) <= window <= timedelta(days=90):
            problems.add(f"{field}.attribution_window", "must be between 1 hour and 90 days")
    problems.raise_if_any()
    return CampaignSpec(
        display_name=message.display_name,
        audience=Audience(tuple(dict.fromkeys(include)), tuple(dict.fromkeys(exclude))),
        template=template,
        sender=sender,
        schedule=when,
        throttle_per_hour=message.throttle_per_hour,
        category=category,
        experiment=experiment,
        attribution_window=window,
    )


def campaign_to_proto(
    record: CampaignRecord, progress: tuple[int, int] | None = None
) -> pb.Campaign:
    message = pb.Campaign.FromString(record.spec)
    message.name = resource_name(record.workspace, "campaigns", record.id)
    message.display_name = record.display_name
    message.state = STATE_PB[record.state.value]
    message.category = CATEGORY_PB[record.category]
    stamp(message.create_time, record.created_at)
    stamp(message.update_time, record.updated_at)
    stamp(message.start_time, record.start_at if record.started else None)
    stamp(message.end_time, record.end_at)
    message.audience_size = record.audience_size
    if progress is not None:
        message.progress.CopyFrom(common_pb2.Progress(done=progress[0], total=progress[1]))
    return message


def send_to_proto(record: SendRecord) -> pb.Send:
    message = pb.Send(
        name=resource_name(record.workspace, "sends", record.id),
        idempotency_key=record.idempotency_key,
        campaign=resource_name(record.workspace, "campaigns", record.campaign_id)
        if record.campaign_id
        else "",
        journey=resource_name(record.workspace, "journeys", record.journey_id)
        if record.journey_id
        else "",
        journey_step=record.step_id,
        profile_id=record.profile_id,
        state=SEND_STATE_PB[record.state],
        reason=record.reason,
        variant=record.variant,
        holdout=record.holdout,
        provider=record.provider,
        provider_message_id=record.provider_message_id,
        attempts=record.attempts,
        category=CATEGORY_PB[record.category],
    )
    stamp(message.create_time, record.created_at)
    stamp(message.send_time, record.sent_at)
    stamp(message.open_time, record.open_at)
    stamp(message.click_time, record.click_at)
    stamp(message.due_time, record.due_at)
    return message


def suppression_to_proto(record: SuppressionRecord) -> pb.Suppression:
    message = pb.Suppression(
        name=resource_name(record.workspace, "suppressions", record.email_hash),
        email_hash=record.email_hash,
        reason=REASON_PB.get(SuppressionReason(record.reason), pb.SUPPRESSION_REASON_MANUAL),
        source=record.source,
        note=record.note,
    )
    stamp(message.create_time, record.created_at)
    return message


# -- the delivery policy ---------------------------------------------------------------


def policy_from_proto(message: pb.DeliveryPolicy, known_providers: set[str]) -> DeliveryPolicy:
    problems = Violations()
    caps = []
    for index, cap in enumerate(message.frequency_caps):
        where = f"policy.frequency_caps[{index}]"
        window = to_timedelta(cap.window)
        if cap.max_sends < 1:
            problems.add(f"{where}.max_sends", "must be at least 1")
        if not timedelta(minutes=1) <= window <= timedelta(days=90):
            problems.add(f"{where}.window", "must be between 1 minute and 90 days")
        caps.append(FrequencyCap(cap.max_sends, window))
    quiet = QuietHours(message.quiet_hours.start_hour, message.quiet_hours.end_hour)
    for name in ("start_hour", "end_hour"):
        if not 0 <= getattr(quiet, name) <= 23:
            problems.add(f"policy.quiet_hours.{name}", "must be between 0 and 23")
    if message.soft_bounce_limit < 0:
        problems.add("policy.soft_bounce_limit", "must not be negative")
    sender = sender_from_proto(message.default_sender, "policy.default_sender", problems)
    provider = sender.provider or "smtp"
    if provider not in known_providers:
        known = ", ".join(sorted(known_providers)) or "none installed"
        problems.add(
            "policy.default_sender.provider", f"no email provider {provider!r} (known: {known})"
        )
    if message.provider_rate_per_second < 0:
        problems.add("policy.provider_rate_per_second", "must not be negative")
    if message.timezone and not schedules.is_zone(message.timezone):
        problems.add("policy.timezone", "is not an IANA time zone")
    problems.raise_if_any()
    return DeliveryPolicy(
        frequency_caps=tuple(caps),
        quiet_hours=quiet,
        soft_bounce_limit=message.soft_bounce_limit or 3,
        default_sender=Sender(sender.from_address, sender.from_name, sender.reply_to, provider),
        provider_rate_per_second=message.provider_rate_per_second,
        timezone=message.timezone or "UTC",
    )


def policy_to_proto(workspace: str, policy: DeliveryPolicy) -> pb.DeliveryPolicy:
    message = pb.DeliveryPolicy(
        name=f"workspaces/{workspace}/deliveryPolicy",
        quiet_hours=pb.QuietHours(
            start_hour=policy.quiet_hours.start_hour, end_hour=policy.quiet_hours.end_hour
        ),
        soft_bounce_limit=policy.soft_bounce_limit,
        default_sender=sender_to_proto(policy.default_sender),
        provider_rate_per_second=policy.provider_rate_per_second,
        timezone=policy.timezone,
    )
    for cap in policy.frequency_caps:
        item = message.frequency_caps.add(max_sends=cap.max_sends)
        item.window.FromTimedelta(cap.window)
    return message


def read_policy(spec: bytes | None) -> DeliveryPolicy:
    """The stored policy (already validated when it was written), or the default."""
    if spec is None:
        return DeliveryPolicy()
    message = pb.DeliveryPolicy.FromString(spec)
    return DeliveryPolicy(
        frequency_caps=tuple(
            FrequencyCap(c.max_sends, to_timedelta(c.window)) for c in message.frequency_caps
        ),
        quiet_hours=QuietHours(message.quiet_hours.start_hour, message.quiet_hours.end_hour),
        soft_bounce_limit=message.soft_bounce_limit or 3,
        default_sender=Sender(
            message.default_sender.from_address,
            message.default_sender.from_name,
            message.default_sender.reply_to,
            message.default_sender.provider or "smtp",
        ),
        provider_rate_per_second=message.provider_rate_per_second,
        timezone=message.timezone or "UTC",
    )
