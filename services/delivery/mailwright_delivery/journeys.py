"""Journeys: definitions, their checks, entry rules and the step machine.

A person enters on a trigger, then walks the steps: waits (a duration, until a time,
until an event with a timeout), branches on a rule, sends, exits. Reaching the goal ends
the walk early. `advance` is pure: given where the person stands and what happened (a
timer fired, an event arrived), it returns what to do — sends to create, the next wait —
and the runner commits all of it at once, under the lease of the enrolment's timer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from mailwright.errors import Violations
from mailwright.names import RESOURCE_ID
from mailwright.rules import RuleError, filters_match, parse, parse_filters
from mailwright_delivery.model import Audience, Category, Sender

MAX_STEPS = 100
MAX_WAIT = timedelta(days=366)


class ReentryPolicy(StrEnum):
    NEVER = "never"
    AFTER_EXIT = "after_exit"
    AFTER_DELAY = "after_delay"


class TriggerKind(StrEnum):
    EVENT = "event"
    SEGMENT_ENTERED = "segment_entered"
    SEGMENT_EXITED = "segment_exited"


@dataclass(frozen=True)
class EventSpec:
    event: str
    where: str = ""

    def matches(self, name: str, properties: Mapping[str, object]) -> bool:
        if name != self.event:
            return False
        if not self.where:
            return True
        return filters_match(properties, parse_filters(self.where))


@dataclass(frozen=True)
class Trigger:
    kind: TriggerKind
    event: EventSpec | None = None
    segment: str = ""


@dataclass(frozen=True)
class Wait:
    duration: timedelta | None = None
    until: datetime | None = None
    event: EventSpec | None = None
    timeout: timedelta | None = None
    timeout_step: str = ""


@dataclass(frozen=True)
class Branch:
    rule_text: str
    then_step: str = ""
    else_step: str = ""


@dataclass(frozen=True)
class SendEmail:
    template: str
    sender: Sender = field(default_factory=Sender)
    subject_variant: str = ""
    category: Category = Category.MARKETING


@dataclass(frozen=True)
class Exit:
    pass


StepKind = Wait | Branch | SendEmail | Exit


@dataclass(frozen=True)
class Step:
    id: str
    kind: StepKind
    next: str = ""


@dataclass(frozen=True)
class Definition:
    trigger: Trigger
    steps: tuple[Step, ...]
    goal: EventSpec | None = None
    reentry: ReentryPolicy = ReentryPolicy.AFTER_EXIT
    reentry_after: timedelta = timedelta(0)
    audience: Audience = field(default_factory=Audience)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    @property
    def first(self) -> str:
        return self.steps[0].id if self.steps else ""


def validate(definition: Definition, field_prefix: str = "journey") -> None:
    """Every problem of a definition at once, each naming its field."""
    problems = Violations()
    trigger = definition.trigger
    if trigger.kind is TriggerKind.EVENT:
        if trigger.event is None or not trigger.event.event:
            problems.add(f"{field_prefix}.trigger.event.event", "must name an event")
        else:
            _check_where(trigger.event, f"{field_prefix}.trigger.event.where", problems)
    elif not trigger.segment:
        problems.add(f"{field_prefix}.trigger", f"{trigger.kind.value} must name a segment")
    if not definition.steps:
        problems.add(f"{field_prefix}.steps", "a journey needs at least one step")
    if len(definition.steps) > MAX_STEPS:
        problems.add(f"{field_prefix}.steps", f"at most {MAX_STEPS} steps")
    ids = [step.id for step in definition.steps]
    known = set(ids)
    for index, step in enumerate(definition.steps):
        where = f"{field_prefix}.steps[{index}]"
        if not step.id or not RESOURCE_ID.match(step.id):
            problems.add(f"{where}.id", "must be a short id of letters, digits, - and _")
        elif ids.count(step.id) > 1:
            problems.add(f"{where}.id", f"{step.id!r} is used by another step")
        targets = [("next", step.next)]
        if isinstance(step.kind, Branch):
            targets += [("branch.then_step", step.kind.then_step)]
            targets += [("branch.else_step", step.kind.else_step)]
            try:
                parse(step.kind.rule_text)
            except RuleError as error:
                problems.add(f"{where}.branch.rule_text", str(error))
        elif isinstance(step.kind, Wait):
            _check_wait(step.kind, f"{where}.wait", problems)
            targets += [("wait.timeout_step", step.kind.timeout_step)]
        elif isinstance(step.kind, SendEmail) and not step.kind.template:
            problems.add(f"{where}.send.template", "must name a template or template version")
        for name, target in targets:
            if target and target not in known:
                problems.add(f"{where}.{name}", f"no step {target!r}")
    if definition.goal is not None:
        if not definition.goal.event:
            problems.add(f"{field_prefix}.goal.event", "must name an event")
        _check_where(definition.goal, f"{field_prefix}.goal.where", problems)
    if definition.reentry is ReentryPolicy.AFTER_DELAY and definition.reentry_after <= timedelta(0):
        problems.add(f"{field_prefix}.reentry_after", "must be positive for after_delay")
    if not problems and _loops_without_wait(definition):
        problems.add(f"{field_prefix}.steps", "a loop of steps without a wait would never end")
    problems.raise_if_any()


def _check_where(spec: EventSpec, field: str, problems: Violations) -> None:
    if spec.where:
        try:
            parse_filters(spec.where)
        except RuleError as error:
            problems.add(field, str(error))


def _check_wait(wait: Wait, field: str, problems: Violations) -> None:
    given = [x for x in (wait.duration, wait.until, wait.event) if x is not None]
    if len(given) != 1:
        problems.add(field, "give exactly one of duration, time or event")
        return
    if wait.duration is not None and not timedelta(0) < wait.duration <= MAX_WAIT:
        problems.add(f"{field}.duration", "must be positive and at most 366 days")
    if wait.event is not None:
        if not wait.event.event:
            problems.add(f"{field}.event.event", "must name an event")
        _check_where(wait.event, f"{field}.event.where", problems)
        if wait.timeout is None or not timedelta(0) < wait.timeout <= MAX_WAIT:
            problems.add(f"{field}.timeout", "waiting for an event needs a timeout (≤ 366 days)")


def _successors(step: Step) -> list[str]:
    if isinstance(step.kind, Branch):
        return [t for t in (step.kind.then_step, step.kind.else_step) if t]
    if isinstance(step.kind, Exit):
        return []
    return [step.next] if step.next else []


def _loops_without_wait(definition: Definition) -> bool:
    steps = {step.id: step for step in definition.steps}
    state: dict[str, int] = {}

    def visit(step_id: str) -> bool:
        state[step_id] = 1
        for target in _successors(steps[step_id]):
            if isinstance(steps[target].kind, Wait):
                continue
            if state.get(target) == 1 or (state.get(target) is None and visit(target)):
                return True
        state[step_id] = 2
        return False

    return any(
        state.get(step.id) is None and not isinstance(step.kind, Wait) and visit(step.id)
        for step in definition.steps
    )


# -- entry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PastEntry:
    entered_at: datetime
    active: bool


def may_enter(definition: Definition, past: list[PastEntry], now: datetime) -> bool:
    """Whether a person may enter again, given their earlier entries."""
    if not past:
        return True
    if any(entry.active for entry in past):
        return False
    if definition.reentry is ReentryPolicy.NEVER:
        return False
    if definition.reentry is ReentryPolicy.AFTER_DELAY:
        latest = max(entry.entered_at for entry in past)
        return now - latest >= definition.reentry_after
    return True


# -- the step machine ----------------------------------------------------------------


class ExitReason(StrEnum):
    COMPLETED = "completed"
    EXIT_STEP = "exit_step"
    GOAL = "goal"
    LOOP = "loop"
    DEACTIVATED = "deactivated"
    ERASED = "erased"


@dataclass(frozen=True)
class SendAction:
    step_id: str
    send: SendEmail


@dataclass(frozen=True)
class Waiting:
    step_id: str
    wake_at: datetime
    event: EventSpec | None = None


@dataclass(frozen=True)
class Outcome:
    """What advancing produced: sends (in order) and either a wait or an exit."""

    sends: tuple[SendAction, ...] = ()
    waiting: Waiting | None = None
    exit: ExitReason | None = None
    visited: tuple[str, ...] = field(default=())


class Resume(StrEnum):
    """Why a waiting person moves on."""

    TIMER = "timer"
    EVENT = "event"


def start(definition: Definition, now: datetime, evaluate: Callable[[str], bool]) -> Outcome:
    """The walk of a person who just entered."""
    return _walk(definition, definition.first, now, evaluate)


def resume(
    definition: Definition,
    waiting_step: str,
    why: Resume,
    now: datetime,
    evaluate: Callable[[str], bool],
) -> Outcome:
    """The walk on from a wait step: its timer fired, or the awaited event arrived."""
    step = definition.step(waiting_step)
    if not isinstance(step.kind, Wait):
        raise ValueError(f"step {waiting_step!r} is not a wait")
    target = step.next
    if why is Resume.TIMER and step.kind.event is not None:
        target = step.kind.timeout_step or step.next
    return _walk(definition, target, now, evaluate)


def _walk(
    definition: Definition, step_id: str, now: datetime, evaluate: Callable[[str], bool]
) -> Outcome:
    sends: list[SendAction] = []
    visited: list[str] = []
    current = step_id
    while current:
        if len(visited) >= MAX_STEPS:
            return Outcome(tuple(sends), exit=ExitReason.LOOP, visited=tuple(visited))
        step = definition.step(current)
        visited.append(current)
        kind = step.kind
        if isinstance(kind, SendEmail):
            sends.append(SendAction(step.id, kind))
            current = step.next
        elif isinstance(kind, Branch):
            current = kind.then_step if evaluate(kind.rule_text) else kind.else_step
        elif isinstance(kind, Exit):
            return Outcome(tuple(sends), exit=ExitReason.EXIT_STEP, visited=tuple(visited))
        elif kind.duration is not None:
            return Outcome(
                tuple(sends), waiting=Waiting(step.id, now + kind.duration), visited=tuple(visited)
            )
        elif kind.until is not None:
            if kind.until <= now:
                current = step.next
                continue
            return Outcome(
                tuple(sends), waiting=Waiting(step.id, kind.until), visited=tuple(visited)
            )
        else:
            timeout = kind.timeout or MAX_WAIT
            return Outcome(
                tuple(sends),
                waiting=Waiting(step.id, now + timeout, kind.event),
                visited=tuple(visited),
            )
    return Outcome(tuple(sends), exit=ExitReason.COMPLETED, visited=tuple(visited))


def branches_ahead(definition: Definition, step_id: str) -> list[str]:
    """Rule texts a walk from `step_id` may evaluate before its next wait (to fetch the
    person's data once, only when needed)."""
    found: list[str] = []
    seen: set[str] = set()
    pending = [step_id] if step_id else []
    while pending:
        current = pending.pop()
        if current in seen or not current:
            continue
        seen.add(current)
        step = definition.step(current)
        if isinstance(step.kind, Wait):
            continue
        if isinstance(step.kind, Branch):
            found.append(step.kind.rule_text)
        pending.extend(_successors(step))
    return found


def after_wait(definition: Definition, waiting_step: str, why: Resume) -> str:
    step = definition.step(waiting_step)
    assert isinstance(step.kind, Wait)
    if why is Resume.TIMER and step.kind.event is not None:
        return step.kind.timeout_step or step.next
    return step.next
