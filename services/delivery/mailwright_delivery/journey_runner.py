"""Journeys at run time: people enter on triggers, timers fire, events move waiting
people on, goals end their walk.

Every move is computed first (the step machine is pure; branch rules are evaluated on
the person's data fetched just before) and then committed at once with its sends, under
the enrolment's revision: a redelivered trigger, a timer fired by two replicas, or an
event racing a timer moves nobody twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from google.protobuf import json_format

from mailwright.common.v1 import event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import Aborted
from mailwright.rules import EmailSend, evaluate, parse
from mailwright.runtime.db import Database
from mailwright.segment.v1 import segment_pb2
from mailwright_delivery import journeys, policy
from mailwright_delivery.convert import sender_json
from mailwright_delivery.directory import Directory
from mailwright_delivery.events import send_id_for
from mailwright_delivery.journey_convert import definition
from mailwright_delivery.journeys import Definition, EventSpec, ExitReason, Outcome, Resume
from mailwright_delivery.model import PRIORITY_JOURNEY, PRIORITY_TRANSACTIONAL, Category
from mailwright_delivery.records import (
    EnrolmentRecord,
    JourneyRecord,
    NewSend,
    Progress,
    SendRecord,
)
from mailwright_delivery.settings import DeliverySettings
from mailwright_delivery.store import DeliveryStore, SendFilter

log = logging.getLogger(__name__)


class JourneyRunner:
    def __init__(
        self,
        *,
        db: Database,
        store: DeliveryStore,
        directory: Directory,
        settings: DeliverySettings,
        owner: str,
        clock: Callable[[], datetime] = policy.utcnow,
        send_now: Callable[[list[SendRecord]], None] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.directory = directory
        self.settings = settings
        self.owner = owner
        self.clock = clock
        # Given when this replica sends what a move creates at once (a trigger's email
        # should not wait for a worker's poll): the sends are then written already
        # claimed by this replica, and handed over after the commit without a claim.
        self.send_now = send_now
        self._definitions: dict[tuple[str, str, int], Definition] = {}

    async def definition(self, workspace: str, journey_id: str, version: int) -> Definition | None:
        key = (workspace, journey_id, version)
        if key not in self._definitions:
            spec = await self.db.run(self.store.journey_version, workspace, journey_id, version)
            if spec is None:
                return None
            self._definitions[key] = definition(workspace, pb.Journey.FromString(spec))
        return self._definitions[key]

    # -- entering -------------------------------------------------------------------------

    async def on_event(self, workspace: str, profile_id: str, event: event_pb2.Event) -> None:
        """An event of a person (from `profiles.changed`): triggers, goals, awaited events."""
        name = event.event
        if not name or not profile_id or event.backfill:
            return  # imported history (`backfill`) acts on nothing now
        properties: Mapping[str, object] = json_format.MessageToDict(event.properties)
        # Walks already under way first: the event that lets someone in is not also the
        # goal or the awaited event of the walk it starts.
        inside, triggered = await self.db.run(
            self.store.event_journeys, workspace, profile_id, name
        )
        for enrolment in inside:
            await self._on_event_inside(enrolment, name, properties)
        for record in triggered:
            found = await self.definition(workspace, record.id, record.version)
            trigger = found.trigger.event if found is not None else None
            if found is not None and trigger is not None and trigger.matches(name, properties):
                await self.enter(record, found, profile_id, f"event:{event.message_id}")

    async def _on_event_inside(
        self, enrolment: EnrolmentRecord, name: str, properties: Mapping[str, object]
    ) -> None:
        found = await self.definition(enrolment.workspace, enrolment.journey_id, enrolment.version)
        if found is None:
            return
        now = self.clock()
        if found.goal is not None and found.goal.matches(name, properties):
            progress = Progress(enrolment.step_id, None, exit_reason=ExitReason.GOAL.value)
        elif enrolment.waiting_event == name and EventSpec(name, enrolment.waiting_where).matches(
            name, properties
        ):
            outcome = journeys.resume(
                found,
                enrolment.step_id,
                Resume.EVENT,
                now,
                await self._evaluator(
                    enrolment.workspace,
                    enrolment.profile_id,
                    found,
                    journeys.after_wait(found, enrolment.step_id, Resume.EVENT),
                ),
            )
            progress = self._progress(
                enrolment.workspace,
                enrolment.journey_id,
                enrolment.version,
                enrolment.id,
                enrolment.profile_id,
                enrolment.revision,
                outcome,
                now,
            )
        else:
            return
        moved = await self.db.run(
            self.store.advance, enrolment.id, enrolment.revision, progress, now, None
        )
        if moved:
            self._created(progress, now)
        if not moved:
            # Its timer is firing right now, or another event moved it: look again later.
            current = await self.db.run(self.store.get_enrolment, enrolment.id)
            if (
                current is not None
                and current.state == "active"
                and current.revision == enrolment.revision
            ):
                raise Aborted(f"enrolment {enrolment.id} is busy; the event will be retried")

    async def on_membership(self, change: segment_pb2.MembershipChange) -> None:
        workspace = change.workspace
        segment = change.segment.rsplit("/", 1)[-1]
        kind = (
            "segment_entered"
            if change.transition == segment_pb2.TRANSITION_ENTERED
            else "segment_exited"
        )
        when = change.occur_time.ToJsonString() if change.HasField("occur_time") else ""
        for record in await self.db.run(self.store.triggered_journeys, workspace, kind, segment):
            found = await self.definition(workspace, record.id, record.version)
            if found is not None:
                entry = f"{kind}:{segment}:{change.profile_id}:{change.rule_version}:{when}"
                await self.enter(record, found, change.profile_id, entry)

    async def enter(
        self, record: JourneyRecord, found: Definition, profile_id: str, entry_key: str
    ) -> bool:
        workspace = record.workspace
        audience = found.audience
        if audience.include_segments or audience.exclude_segments:
            segments = set(await self.directory.memberships(workspace, profile_id))
            if audience.include_segments and not segments & set(audience.include_segments):
                return False
            if segments & set(audience.exclude_segments):
                return False
        now = self.clock()
        enrolment_id = send_id_for(workspace, f"enrol:{record.id}:{entry_key}")
        outcome = journeys.start(
            found, now, await self._evaluator(workspace, profile_id, found, found.first)
        )
        progress = self._progress(
            workspace, record.id, record.version, enrolment_id, profile_id, 0, outcome, now
        )
        entered = await self.db.run(
            self.store.enrol,
            workspace,
            enrolment_id,
            record.id,
            record.version,
            profile_id,
            entry_key,
            now,
            lambda past: journeys.may_enter(found, past, now),
            progress,
        )
        if entered:
            self._created(progress, now)
            log.info("journey %s/%s: enrolment %s entered", workspace, record.id, enrolment_id)
        return bool(entered)

    # -- timers ---------------------------------------------------------------------------

    async def tick(self, limit: int = 100) -> int:
        now = self.clock()
        due = await self.db.run(
            self.store.claim_timers, now, self.owner, now + self.settings.timer_lease, limit
        )
        for enrolment in due:
            try:
                await self._fire(enrolment)
            except Exception:
                log.exception("timer of enrolment %s failed; it fires again", enrolment.id)
                await self.db.run(self.store.release_timer, enrolment.id, self.owner)
        return len(due)

    async def _fire(self, enrolment: EnrolmentRecord) -> None:
        now = self.clock()
        found = await self.definition(enrolment.workspace, enrolment.journey_id, enrolment.version)
        if found is None:
            outcome = Outcome(exit=ExitReason.DEACTIVATED)
        else:
            target = journeys.after_wait(found, enrolment.step_id, Resume.TIMER)
            outcome = journeys.resume(
                found,
                enrolment.step_id,
                Resume.TIMER,
                now,
                await self._evaluator(enrolment.workspace, enrolment.profile_id, found, target),
            )
        progress = self._progress(
            enrolment.workspace,
            enrolment.journey_id,
            enrolment.version,
            enrolment.id,
            enrolment.profile_id,
            enrolment.revision,
            outcome,
            now,
        )
        moved = await self.db.run(
            self.store.advance, enrolment.id, enrolment.revision, progress, now, self.owner
        )
        if moved:
            self._created(progress, now)

    # -- helpers --------------------------------------------------------------------------

    def _created(self, progress: Progress, now: datetime) -> None:
        """A move was committed: hand the sends it wrote (already claimed) over."""
        if progress.sends and self.send_now is not None:
            self.send_now([send.as_claimed(now) for send in progress.sends])

    async def _evaluator(
        self, workspace: str, profile_id: str, found: Definition, step_id: str
    ) -> Callable[[str], bool]:
        rules = journeys.branches_ahead(found, step_id)
        if not rules:
            return _no_branch
        now = self.clock()
        sent = await self.db.run(
            self.store.list_sends, SendFilter(workspace, profile_id=profile_id), "", 200
        )
        emails = tuple(
            EmailSend(
                s.id,
                s.sent_at,
                (s.open_at,) if s.open_at else (),
                (s.click_at,) if s.click_at else (),
            )
            for s in sent
            if s.sent_at is not None
        )
        person = await self.directory.person(workspace, profile_id, now, emails)
        answers = {text: evaluate(parse(text), person, now) for text in rules}
        return lambda text: answers[text]

    def _progress(
        self,
        workspace: str,
        journey_id: str,
        version: int,
        enrolment_id: str,
        profile_id: str,
        revision: int,
        outcome: Outcome,
        now: datetime,
    ) -> Progress:
        sends = []
        lease_owner = self.owner if self.send_now is not None else ""
        lease_until = now + self.settings.send_lease if lease_owner else None
        for action in outcome.sends:
            key = f"journey:{journey_id}:{enrolment_id}:{revision}:{action.step_id}"
            transactional = action.send.category is Category.TRANSACTIONAL
            sends.append(
                NewSend(
                    id=send_id_for(workspace, key),
                    workspace=workspace,
                    idempotency_key=key,
                    category=action.send.category,
                    priority=PRIORITY_TRANSACTIONAL if transactional else PRIORITY_JOURNEY,
                    due_at=now,
                    profile_id=profile_id,
                    journey_id=journey_id,
                    journey_version=version,
                    step_id=action.step_id,
                    enrolment_id=enrolment_id,
                    template=action.send.template,
                    subject_variant=action.send.subject_variant,
                    sender=sender_json(action.send.sender),
                    attribution_seconds=int(self.settings.attribution_window.total_seconds()),
                    lease_owner=lease_owner,
                    lease_until=lease_until,
                )
            )
        waiting = outcome.waiting
        last = outcome.visited[-1] if outcome.visited else ""
        return Progress(
            step_id=waiting.step_id if waiting is not None else last,
            wake_at=waiting.wake_at if waiting is not None else None,
            waiting_event=waiting.event.event if waiting is not None and waiting.event else "",
            waiting_where=waiting.event.where if waiting is not None and waiting.event else "",
            exit_reason=outcome.exit.value if outcome.exit is not None else "",
            sends=tuple(sends),
        )


def _no_branch(text: str) -> bool:
    raise AssertionError(f"rule {text!r} was not fetched ahead")


def event_time(event: event_pb2.Event) -> datetime:
    if event.HasField("timestamp"):
        return event.timestamp.ToDatetime(tzinfo=UTC)
    return datetime.now(UTC)


ORDER_WINDOW = timedelta(days=90)
