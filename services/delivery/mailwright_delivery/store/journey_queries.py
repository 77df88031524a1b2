"""Journeys, their versions, enrolments and the durable timers that move them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright.errors import AlreadyExists, NotFound
from mailwright_delivery.journeys import PastEntry
from mailwright_delivery.records import EnrolmentRecord, JourneyRecord, NewSend, Progress
from mailwright_delivery.store.base import (
    aware,
    insert_ignore,
    lock_for_claim,
    must_aware,
    nothing_to_do,
)
from mailwright_delivery.store.campaign_queries import new_send_row
from mailwright_delivery.store.tables import enrolments, journey_versions, journeys, sends

ACTIVE = "active"
EXITED = "exited"


def _journey(row: Any, spec: bytes) -> JourneyRecord:
    return JourneyRecord(
        row.workspace,
        row.id,
        row.display_name,
        row.state,
        row.version,
        spec,
        must_aware(row.created_at),
        must_aware(row.updated_at),
    )


def _enrolment(row: Any) -> EnrolmentRecord:
    return EnrolmentRecord(
        id=row.id,
        workspace=row.workspace,
        journey_id=row.journey_id,
        version=row.version,
        profile_id=row.profile_id,
        state=row.state,
        step_id=row.step_id,
        wake_at=aware(row.wake_at),
        waiting_event=row.waiting_event,
        waiting_where=row.waiting_where,
        revision=row.revision,
        entered_at=must_aware(row.entered_at),
    )


def _progress_values(progress: Progress, now: datetime) -> dict[str, Any]:
    exited = bool(progress.exit_reason)
    return {
        "state": EXITED if exited else ACTIVE,
        "step_id": progress.step_id,
        "wake_at": None if exited else progress.wake_at,
        "waiting_event": "" if exited else progress.waiting_event,
        "waiting_where": "" if exited else progress.waiting_where,
        "exit_reason": progress.exit_reason,
        "lease_owner": None,
        "lease_until": None,
        "updated_at": now,
    }


class JourneyQueries:
    engine: sa.Engine
    reader: sa.Engine
    snapshot: sa.Engine

    def create_journey(
        self,
        workspace: str,
        journey_id: str,
        display_name: str,
        spec: bytes,
        trigger: tuple[str, str],
        goal_event: str,
        now: datetime,
    ) -> JourneyRecord:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(journeys.c.id).where(
                    journeys.c.workspace == workspace, journeys.c.id == journey_id
                )
            ).first()
            if exists is not None:
                raise AlreadyExists(f"journey {journey_id!r} already exists")
            conn.execute(
                journeys.insert().values(
                    workspace=workspace,
                    id=journey_id,
                    display_name=display_name,
                    state="draft",
                    version=1,
                    trigger_kind=trigger[0],
                    trigger_key=trigger[1],
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                journey_versions.insert().values(
                    workspace=workspace,
                    journey_id=journey_id,
                    version=1,
                    spec=spec,
                    goal_event=goal_event,
                    created_at=now,
                )
            )
        return self.require_journey(workspace, journey_id)

    def update_journey(
        self,
        workspace: str,
        journey_id: str,
        display_name: str,
        spec: bytes,
        trigger: tuple[str, str],
        goal_event: str,
        now: datetime,
    ) -> JourneyRecord:
        """A new version; people inside finish on the version they entered."""
        with self.engine.begin() as conn:
            query = sa.select(journeys).where(
                journeys.c.workspace == workspace, journeys.c.id == journey_id
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                raise NotFound(f"journey {journey_id!r} not found")
            version = row.version + 1
            conn.execute(
                journey_versions.insert().values(
                    workspace=workspace,
                    journey_id=journey_id,
                    version=version,
                    spec=spec,
                    goal_event=goal_event,
                    created_at=now,
                )
            )
            conn.execute(
                journeys.update()
                .where(journeys.c.workspace == workspace, journeys.c.id == journey_id)
                .values(
                    version=version,
                    display_name=display_name,
                    trigger_kind=trigger[0],
                    trigger_key=trigger[1],
                    updated_at=now,
                )
            )
        return self.require_journey(workspace, journey_id)

    def get_journey(self, workspace: str, journey_id: str) -> JourneyRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                _with_current_spec().where(
                    journeys.c.workspace == workspace, journeys.c.id == journey_id
                )
            ).first()
        return None if row is None else _journey(row, bytes(row.spec))

    def require_journey(self, workspace: str, journey_id: str) -> JourneyRecord:
        record = self.get_journey(workspace, journey_id)
        if record is None:
            raise NotFound(f"journey {journey_id!r} not found")
        return record

    def journey_version(self, workspace: str, journey_id: str, version: int) -> bytes | None:
        with self.reader.connect() as conn:
            value = conn.execute(
                sa.select(journey_versions.c.spec).where(
                    journey_versions.c.workspace == workspace,
                    journey_versions.c.journey_id == journey_id,
                    journey_versions.c.version == version,
                )
            ).scalar_one_or_none()
        return None if value is None else bytes(value)

    def list_journeys(self, workspace: str, after: str, limit: int) -> list[JourneyRecord]:
        with self.reader.connect() as conn:
            ids = conn.execute(
                sa.select(journeys.c.id)
                .where(journeys.c.workspace == workspace, journeys.c.id > after)
                .order_by(journeys.c.id)
                .limit(limit)
            ).scalars()
            found = list(ids)
        return [self.require_journey(workspace, journey_id) for journey_id in found]

    def set_journey_state(
        self, workspace: str, journey_id: str, state: str, now: datetime
    ) -> JourneyRecord:
        with self.engine.begin() as conn:
            updated = conn.execute(
                journeys.update()
                .where(journeys.c.workspace == workspace, journeys.c.id == journey_id)
                .values(state=state, updated_at=now)
            ).rowcount
        if not updated:
            raise NotFound(f"journey {journey_id!r} not found")
        return self.require_journey(workspace, journey_id)

    def triggered_journeys(self, workspace: str, kind: str, key: str) -> list[JourneyRecord]:
        """Active journeys this trigger starts, each with its current version."""
        with self.reader.connect() as conn:
            return self._triggered(conn, workspace, kind, key)

    @staticmethod
    def _triggered(conn: sa.Connection, workspace: str, kind: str, key: str) -> list[JourneyRecord]:
        rows = conn.execute(
            _TRIGGERED, {"b_workspace": workspace, "b_kind": kind, "b_key": key}
        ).all()
        return [_journey(row, bytes(row.spec)) for row in rows]

    # -- enrolments -------------------------------------------------------------------

    def enrol(
        self,
        workspace: str,
        enrolment_id: str,
        journey_id: str,
        version: int,
        profile_id: str,
        entry_key: str,
        now: datetime,
        may_enter: Callable[[list[PastEntry]], bool],
        progress: Progress,
    ) -> bool:
        """Let a person in, with the first walk's sends; False when the trigger was seen
        before or the re-entry policy says no."""
        with self.engine.begin() as conn:
            journey = {"b_workspace": workspace, "b_journey": journey_id}
            seen = conn.execute(_SEEN_ENTRY, {**journey, "b_entry": entry_key}).first()
            if seen is not None:
                return False
            past = [
                PastEntry(must_aware(row.entered_at), row.state == ACTIVE)
                for row in conn.execute(_PAST_ENTRIES, {**journey, "b_profile": profile_id})
            ]
            if not may_enter(past):
                return False
            inserted = insert_ignore(
                conn,
                enrolments,
                [
                    {
                        "id": enrolment_id,
                        "workspace": workspace,
                        "journey_id": journey_id,
                        "version": version,
                        "profile_id": profile_id,
                        "entry_key": entry_key[:300],
                        "revision": 0,
                        "entered_at": now,
                        **_progress_values(progress, now),
                    }
                ],
                ("workspace", "journey_id", "entry_key"),
            )
            if not inserted:
                return False
            self._add_sends(conn, progress.sends, now)
        return True

    @staticmethod
    def _add_sends(conn: sa.Connection, batch: Sequence[NewSend], now: datetime) -> None:
        insert_ignore(
            conn,
            sends,
            [new_send_row(send, now) for send in batch],
            ("workspace", "idempotency_key"),
        )

    def claim_timers(
        self, now: datetime, owner: str, lease_until: datetime, limit: int
    ) -> list[EnrolmentRecord]:
        """Enrolments whose timer is due, leased to `owner` (one replica fires each)."""
        due = sa.and_(
            enrolments.c.state == ACTIVE,
            enrolments.c.wake_at <= now,
            sa.or_(enrolments.c.lease_until.is_(None), enrolments.c.lease_until < now),
        )
        if nothing_to_do(self.engine, sa.select(enrolments.c.id).where(due)):
            return []
        with self.engine.begin() as conn:
            ids = [
                row.id
                for row in conn.execute(
                    lock_for_claim(
                        sa.select(enrolments.c.id)
                        .where(due)
                        .order_by(enrolments.c.wake_at)
                        .limit(limit),
                        conn,
                    )
                )
            ]
            if not ids:
                return []
            conn.execute(
                enrolments.update()
                .where(enrolments.c.id.in_(ids), due)
                .values(lease_owner=owner, lease_until=lease_until)
            )
            rows = conn.execute(
                sa.select(enrolments).where(
                    enrolments.c.id.in_(ids), enrolments.c.lease_owner == owner
                )
            ).all()
        return [_enrolment(row) for row in rows]

    def advance(
        self,
        enrolment_id: str,
        revision: int,
        progress: Progress,
        now: datetime,
        owner: str | None = None,
    ) -> bool:
        """Move an enrolment on, with its sends, if nobody moved it since `revision`.

        `owner` is the timer lease holder; event-driven moves (no owner) only go ahead
        while no live lease is held, so an event and a timer never both move a person.
        """
        guard = [enrolments.c.id == enrolment_id, enrolments.c.revision == revision]
        if owner is not None:
            guard.append(enrolments.c.lease_owner == owner)
        else:
            guard.append(sa.or_(enrolments.c.lease_until.is_(None), enrolments.c.lease_until < now))
        with self.engine.begin() as conn:
            result = conn.execute(
                enrolments.update()
                .where(*guard)
                .values(revision=revision + 1, **_progress_values(progress, now))
            )
            if not result.rowcount:
                return False
            if progress.exit_reason == "goal":
                # The goal is reached: what this walk still had queued must not go.
                conn.execute(
                    sends.update()
                    .where(sends.c.enrolment_id == enrolment_id, sends.c.state == "queued")
                    .values(state="cancelled", reason="journey goal reached", updated_at=now)
                )
            self._add_sends(conn, progress.sends, now)
        return True

    def release_timer(self, enrolment_id: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                enrolments.update()
                .where(enrolments.c.id == enrolment_id, enrolments.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def merge_profiles(
        self, workspace: str, kept: str, absorbed: Sequence[str], now: datetime
    ) -> int:
        """People merged into `kept` continue as `kept`: their walks move over (a walk of
        a journey `kept` is already in ends, reason "merged"), and so do their queued
        sends. How many walks moved."""
        moved = 0
        with self.engine.begin() as conn:
            active_of_kept = set(
                conn.execute(
                    sa.select(enrolments.c.journey_id).where(
                        enrolments.c.workspace == workspace,
                        enrolments.c.profile_id == kept,
                        enrolments.c.state == ACTIVE,
                    )
                ).scalars()
            )
            for row in conn.execute(
                sa.select(enrolments.c.id, enrolments.c.journey_id).where(
                    enrolments.c.workspace == workspace,
                    enrolments.c.profile_id.in_(list(absorbed)),
                    enrolments.c.state == ACTIVE,
                )
            ).all():
                if row.journey_id in active_of_kept:
                    values: dict[str, Any] = {
                        "state": EXITED,
                        "exit_reason": "merged",
                        "wake_at": None,
                    }
                else:
                    values = {"profile_id": kept}
                    active_of_kept.add(row.journey_id)
                    moved += 1
                conn.execute(
                    enrolments.update()
                    .where(enrolments.c.id == row.id)
                    .values(revision=enrolments.c.revision + 1, updated_at=now, **values)
                )
            conn.execute(
                sends.update()
                .where(
                    sends.c.workspace == workspace,
                    sends.c.profile_id.in_(list(absorbed)),
                    sends.c.state == "queued",
                )
                .values(profile_id=kept, updated_at=now)
            )
        return moved

    def active_enrolments(self, workspace: str, profile_id: str) -> list[EnrolmentRecord]:
        with self.reader.connect() as conn:
            return self._active_enrolments(conn, workspace, profile_id)

    @staticmethod
    def _active_enrolments(
        conn: sa.Connection, workspace: str, profile_id: str
    ) -> list[EnrolmentRecord]:
        rows = conn.execute(
            _ACTIVE_ENROLMENTS, {"b_workspace": workspace, "b_profile": profile_id}
        ).all()
        return [_enrolment(row) for row in rows]

    def event_journeys(
        self, workspace: str, profile_id: str, event: str
    ) -> tuple[list[EnrolmentRecord], list[JourneyRecord]]:
        """What an event of a person may move, in one read: their walks under way, and
        the active journeys the event triggers."""
        with self.reader.connect() as conn:
            return (
                self._active_enrolments(conn, workspace, profile_id),
                self._triggered(conn, workspace, "event", event),
            )

    def get_enrolment(self, enrolment_id: str) -> EnrolmentRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(enrolments).where(enrolments.c.id == enrolment_id)).first()
        return None if row is None else _enrolment(row)

    def journey_counts(self, workspace: str, journey_id: str) -> dict[str, Any]:
        mine = sa.and_(enrolments.c.workspace == workspace, enrolments.c.journey_id == journey_id)
        # One snapshot: an enrolment entering or exiting between two of the counts would
        # show entered, exited and waiting that do not add up.
        with self.snapshot.begin() as conn:
            entered = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
            exited = conn.execute(
                sa.select(sa.func.count()).where(mine, enrolments.c.state == EXITED)
            ).scalar_one()
            goals = conn.execute(
                sa.select(sa.func.count()).where(mine, enrolments.c.exit_reason == "goal")
            ).scalar_one()
            waiting = conn.execute(
                sa.select(enrolments.c.step_id, sa.func.count())
                .where(mine, enrolments.c.state == ACTIVE)
                .group_by(enrolments.c.step_id)
            ).all()
        return {
            "entered": int(entered),
            "exited": int(exited),
            "goals": int(goals),
            "waiting": {row[0]: int(row[1]) for row in waiting},
        }


def _with_current_spec() -> sa.Select[Any]:
    """Journeys with the spec of their current version."""
    return sa.select(journeys, journey_versions.c.spec).join(
        journey_versions,
        sa.and_(
            journey_versions.c.workspace == journeys.c.workspace,
            journey_versions.c.journey_id == journeys.c.id,
            journey_versions.c.version == journeys.c.version,
        ),
    )


# Built once: every event of a person runs them (building a statement costs more than
# running these).
_ACTIVE_ENROLMENTS = sa.select(enrolments).where(
    enrolments.c.workspace == sa.bindparam("b_workspace"),
    enrolments.c.profile_id == sa.bindparam("b_profile"),
    enrolments.c.state == ACTIVE,
)
_TRIGGERED = _with_current_spec().where(
    journeys.c.workspace == sa.bindparam("b_workspace"),
    journeys.c.state == "active",
    journeys.c.trigger_kind == sa.bindparam("b_kind"),
    journeys.c.trigger_key == sa.bindparam("b_key"),
)
_SEEN_ENTRY = sa.select(enrolments.c.id).where(
    enrolments.c.workspace == sa.bindparam("b_workspace"),
    enrolments.c.journey_id == sa.bindparam("b_journey"),
    enrolments.c.entry_key == sa.bindparam("b_entry"),
)
_PAST_ENTRIES = sa.select(enrolments.c.entered_at, enrolments.c.state).where(
    enrolments.c.workspace == sa.bindparam("b_workspace"),
    enrolments.c.journey_id == sa.bindparam("b_journey"),
    enrolments.c.profile_id == sa.bindparam("b_profile"),
)
