"""Journey messages ↔ journey definitions."""

from __future__ import annotations

from datetime import timedelta

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import Violations
from mailwright.names import resource_name
from mailwright_delivery.convert import (
    CATEGORY,
    segment_id,
    sender_from_proto,
    stamp,
    template_name,
    to_datetime,
    to_timedelta,
)
from mailwright_delivery.journeys import (
    Branch,
    Definition,
    EventSpec,
    Exit,
    ReentryPolicy,
    SendEmail,
    Step,
    StepKind,
    Trigger,
    TriggerKind,
    Wait,
    validate,
)
from mailwright_delivery.model import Audience, Category
from mailwright_delivery.records import JourneyRecord

REENTRY = {
    pb.REENTRY_POLICY_UNSPECIFIED: ReentryPolicy.AFTER_EXIT,
    pb.REENTRY_POLICY_NEVER: ReentryPolicy.NEVER,
    pb.REENTRY_POLICY_AFTER_EXIT: ReentryPolicy.AFTER_EXIT,
    pb.REENTRY_POLICY_AFTER_DELAY: ReentryPolicy.AFTER_DELAY,
}
JOURNEY_STATE_PB = {
    "draft": pb.JOURNEY_STATE_DRAFT,
    "active": pb.JOURNEY_STATE_ACTIVE,
    "inactive": pb.JOURNEY_STATE_INACTIVE,
}


def _event(message: pb.EventTrigger) -> EventSpec:
    return EventSpec(message.event, message.where)


def _step(workspace: str, message: pb.JourneyStep, field: str, problems: Violations) -> Step:
    which = message.WhichOneof("kind")
    kind: StepKind
    if which == "wait":
        wait = message.wait
        until = wait.WhichOneof("until")
        kind = Wait(
            duration=to_timedelta(wait.duration) if until == "duration" else None,
            until=to_datetime(wait.time) if until == "time" else None,
            event=_event(wait.event) if until == "event" else None,
            timeout=to_timedelta(wait.timeout) if wait.HasField("timeout") else None,
            timeout_step=wait.timeout_step,
        )
    elif which == "branch":
        kind = Branch(message.branch.rule_text, message.branch.then_step, message.branch.else_step)
    elif which == "send":
        send = message.send
        kind = SendEmail(
            template_name(workspace, send.template, f"{field}.send.template", problems),
            sender_from_proto(send.sender, f"{field}.send.sender", problems),
            send.subject_variant,
            CATEGORY.get(send.category, Category.MARKETING),
        )
    elif which == "exit":
        kind = Exit()
    else:
        problems.add(field, "a step must be a wait, a branch, a send or an exit")
        kind = Exit()
    return Step(message.id, kind, message.next)


def definition(workspace: str, message: pb.Journey, field: str = "journey") -> Definition:
    """Read and check a Journey message; every bad field is reported at once."""
    problems = Violations()
    which = message.trigger.WhichOneof("kind")
    if which == "event":
        trigger = Trigger(TriggerKind.EVENT, _event(message.trigger.event))
    elif which in ("segment_entered", "segment_exited"):
        segment = segment_id(
            workspace, getattr(message.trigger, which), f"{field}.trigger.{which}", problems
        )
        trigger = Trigger(TriggerKind(which), segment=segment)
    else:
        problems.add(f"{field}.trigger", "give an event or a segment to enter or exit")
        trigger = Trigger(TriggerKind.EVENT, EventSpec(""))
    steps = tuple(
        _step(workspace, step, f"{field}.steps[{index}]", problems)
        for index, step in enumerate(message.steps)
    )
    goal = _event(message.goal) if message.HasField("goal") and message.goal.event else None
    audience = Audience(
        tuple(
            segment_id(workspace, s, f"{field}.audience.include_segments[{i}]", problems)
            for i, s in enumerate(message.audience.include_segments)
        ),
        tuple(
            segment_id(workspace, s, f"{field}.audience.exclude_segments[{i}]", problems)
            for i, s in enumerate(message.audience.exclude_segments)
        ),
    )
    reentry_after = (
        to_timedelta(message.reentry_after) if message.HasField("reentry_after") else timedelta(0)
    )
    problems.raise_if_any()
    result = Definition(
        trigger,
        steps,
        goal,
        REENTRY.get(message.reentry, ReentryPolicy.AFTER_EXIT),
        reentry_after,
        audience,
    )
    validate(result, field)
    return result


def trigger_key(trigger: Trigger) -> tuple[str, str]:
    """What the store indexes a journey's trigger by."""
    if trigger.kind is TriggerKind.EVENT:
        assert trigger.event is not None
        return (trigger.kind.value, trigger.event.event)
    return (trigger.kind.value, trigger.segment)


def journey_to_proto(record: JourneyRecord) -> pb.Journey:
    message = pb.Journey.FromString(record.spec)
    message.name = resource_name(record.workspace, "journeys", record.id)
    message.display_name = record.display_name
    message.state = JOURNEY_STATE_PB.get(record.state, pb.JOURNEY_STATE_DRAFT)
    message.version = record.version
    stamp(message.create_time, record.created_at)
    stamp(message.update_time, record.updated_at)
    return message
