"""Campaigns: their rows, their lifecycle under lock, the snapshot and the finish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright.errors import AlreadyExists, FailedPrecondition, NotFound
from mailwright_delivery import lifecycle
from mailwright_delivery.model import CampaignState, Category, SendState
from mailwright_delivery.records import CampaignRecord, NewSend
from mailwright_delivery.store.base import (
    aware,
    insert_ignore,
    lock_for_claim,
    must_aware,
    nothing_to_do,
)
from mailwright_delivery.store.tables import campaigns, sends

OPEN_SEND_STATES = (SendState.QUEUED.value, SendState.SENDING.value)


def campaign_record(row: Any) -> CampaignRecord:
    return CampaignRecord(
        workspace=row.workspace,
        id=row.id,
        display_name=row.display_name,
        spec=bytes(row.spec),
        state=CampaignState(row.state),
        category=Category(row.category),
        template_version=row.template_version,
        start_at=aware(row.start_at),
        end_at=aware(row.end_at),
        audience_size=int(row.audience_size),
        snapshot_done=bool(row.snapshot_done),
        winner=row.winner,
        created_at=must_aware(row.created_at),
        updated_at=must_aware(row.updated_at),
        started=bool(row.started),
    )


def new_send_row(send: NewSend, now: datetime) -> dict[str, Any]:
    return {
        "id": send.id,
        "workspace": send.workspace,
        "idempotency_key": send.idempotency_key,
        "category": send.category.value,
        "priority": send.priority,
        "state": SendState.SENDING.value if send.lease_owner else send.state.value,
        "lease_owner": send.lease_owner or None,
        "lease_until": send.lease_until if send.lease_owner else None,
        "reason": send.reason,
        "due_at": send.due_at,
        "created_at": now,
        "updated_at": now,
        "profile_id": send.profile_id,
        "campaign_id": send.campaign_id,
        "journey_id": send.journey_id,
        "journey_version": send.journey_version,
        "step_id": send.step_id,
        "enrolment_id": send.enrolment_id,
        "email_hash": send.email_hash,
        "address": send.address,
        "template": send.template,
        "variant": send.variant,
        "subject_variant": send.subject_variant,
        "preheader_variant": send.preheader_variant,
        "holdout": send.holdout,
        "awaiting_winner": send.awaiting_winner,
        "hold": False,
        "segment": send.segment,
        "sender": send.sender,
        "context": send.context,
        "attempts": 0,
        "conversions": 0,
        "revenue": 0,
        "attribution_seconds": send.attribution_seconds,
        "trace_parent": send.trace_parent,
    }


class CampaignQueries:
    engine: sa.Engine
    reader: sa.Engine

    def create_campaign(
        self,
        workspace: str,
        campaign_id: str,
        display_name: str,
        spec: bytes,
        category: Category,
        now: datetime,
    ) -> CampaignRecord:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(campaigns.c.id).where(
                    campaigns.c.workspace == workspace, campaigns.c.id == campaign_id
                )
            ).first()
            if exists is not None:
                raise AlreadyExists(f"campaign {campaign_id!r} already exists")
            conn.execute(
                campaigns.insert().values(
                    workspace=workspace,
                    id=campaign_id,
                    display_name=display_name,
                    spec=spec,
                    state=CampaignState.DRAFT.value,
                    category=category.value,
                    template_version="",
                    started=False,
                    audience_size=0,
                    snapshot_done=False,
                    winner="",
                    created_at=now,
                    updated_at=now,
                )
            )
        record = self.get_campaign(workspace, campaign_id)
        assert record is not None
        return record

    def get_campaign(self, workspace: str, campaign_id: str) -> CampaignRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(campaigns).where(
                    campaigns.c.workspace == workspace, campaigns.c.id == campaign_id
                )
            ).first()
        return None if row is None else campaign_record(row)

    def require_campaign(self, workspace: str, campaign_id: str) -> CampaignRecord:
        record = self.get_campaign(workspace, campaign_id)
        if record is None:
            raise NotFound(f"campaign {campaign_id!r} not found")
        return record

    def list_campaigns(
        self, workspace: str, state: CampaignState | None, after: str, limit: int
    ) -> list[CampaignRecord]:
        query = sa.select(campaigns).where(campaigns.c.workspace == workspace)
        if state is not None:
            query = query.where(campaigns.c.state == state.value)
        if after:
            query = query.where(campaigns.c.id > after)
        with self.reader.connect() as conn:
            rows = conn.execute(query.order_by(campaigns.c.id).limit(limit)).all()
        return [campaign_record(row) for row in rows]

    def update_campaign(
        self,
        workspace: str,
        campaign_id: str,
        display_name: str,
        spec: bytes,
        category: Category,
        now: datetime,
    ) -> CampaignRecord:
        with self.engine.begin() as conn:
            current = self._locked(conn, workspace, campaign_id)
            lifecycle.transition(CampaignState(current.state), lifecycle.Command.UPDATE)
            conn.execute(
                campaigns.update()
                .where(campaigns.c.workspace == workspace, campaigns.c.id == campaign_id)
                .values(
                    display_name=display_name, spec=spec, category=category.value, updated_at=now
                )
            )
        return self.require_campaign(workspace, campaign_id)

    def _locked(self, conn: sa.Connection, workspace: str, campaign_id: str) -> Any:
        query = sa.select(campaigns).where(
            campaigns.c.workspace == workspace, campaigns.c.id == campaign_id
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id!r} not found")
        return row

    def schedule_campaign(
        self,
        workspace: str,
        campaign_id: str,
        spec: bytes,
        template_version: str,
        start_at: datetime,
        now: datetime,
    ) -> CampaignRecord:
        with self.engine.begin() as conn:
            current = self._locked(conn, workspace, campaign_id)
            lifecycle.transition(CampaignState(current.state), lifecycle.Command.SCHEDULE)
            conn.execute(
                campaigns.update()
                .where(campaigns.c.workspace == workspace, campaigns.c.id == campaign_id)
                .values(
                    state=CampaignState.SCHEDULED.value,
                    spec=spec,
                    template_version=template_version,
                    start_at=start_at,
                    updated_at=now,
                )
            )
        return self.require_campaign(workspace, campaign_id)

    def command_campaign(
        self, workspace: str, campaign_id: str, command: lifecycle.Command, now: datetime
    ) -> CampaignRecord:
        """Pause, resume or cancel, with the sends it holds, releases or cancels, at once."""
        with self.engine.begin() as conn:
            current = self._locked(conn, workspace, campaign_id)
            state = CampaignState(current.state)
            target = lifecycle.transition(state, command, started=bool(current.started))
            values: dict[str, Any] = {"state": target.value, "updated_at": now}
            of_campaign = sa.and_(
                sends.c.workspace == workspace,
                sends.c.campaign_id == campaign_id,
                sends.c.state.in_(OPEN_SEND_STATES),
            )
            if command is lifecycle.Command.PAUSE:
                values["paused_at"] = now
                conn.execute(sends.update().where(of_campaign).values(hold=True, updated_at=now))
            elif command is lifecycle.Command.RESUME:
                values["paused_at"] = None
                conn.execute(sends.update().where(of_campaign).values(hold=False, updated_at=now))
                paused_at = aware(current.paused_at)
                if paused_at is not None and current.started:
                    # Throttled and local-time sends keep their spacing after a pause.
                    shift = now - paused_at
                    later = conn.execute(
                        sa.select(sends.c.id, sends.c.due_at).where(
                            of_campaign, sends.c.due_at > paused_at
                        )
                    ).all()
                    if later:
                        conn.execute(
                            sends.update()
                            .where(sends.c.id == sa.bindparam("send_id"))
                            .values(due_at=sa.bindparam("new_due")),
                            [
                                {"send_id": row.id, "new_due": must_aware(row.due_at) + shift}
                                for row in later
                            ],
                        )
            elif command is lifecycle.Command.CANCEL:
                values["end_at"] = now
                conn.execute(
                    sends.update()
                    .where(of_campaign, sends.c.state == SendState.QUEUED.value)
                    .values(
                        state=SendState.CANCELLED.value, reason="campaign cancelled", updated_at=now
                    )
                )
                # Claimed but not yet handed over: the worker's confirmation will drop them.
                conn.execute(sends.update().where(of_campaign).values(hold=True, updated_at=now))
            conn.execute(
                campaigns.update()
                .where(campaigns.c.workspace == workspace, campaigns.c.id == campaign_id)
                .values(**values)
            )
        return self.require_campaign(workspace, campaign_id)

    # -- the scheduler's side ---------------------------------------------------------

    def claim_campaign_starts(
        self, now: datetime, owner: str, lease_until: datetime, limit: int = 10
    ) -> list[CampaignRecord]:
        """Scheduled campaigns whose start has come (moved to sending), and sending ones
        whose snapshot a dead replica left unfinished; leased to `owner`."""
        due = sa.or_(
            sa.and_(
                campaigns.c.state == CampaignState.SCHEDULED.value,
                campaigns.c.start_at <= now,
            ),
            sa.and_(
                campaigns.c.state == CampaignState.SENDING.value,
                campaigns.c.snapshot_done.is_(False),
                sa.or_(campaigns.c.lease_until.is_(None), campaigns.c.lease_until < now),
            ),
        )
        if nothing_to_do(self.engine, sa.select(campaigns.c.id).where(due)):
            return []
        with self.engine.begin() as conn:
            picked = conn.execute(
                lock_for_claim(
                    sa.select(campaigns.c.workspace, campaigns.c.id).where(due).limit(limit), conn
                )
            ).all()
            for row in picked:
                conn.execute(
                    campaigns.update()
                    .where(
                        campaigns.c.workspace == row.workspace,
                        campaigns.c.id == row.id,
                        due,
                    )
                    .values(
                        state=CampaignState.SENDING.value,
                        started=True,
                        lease_owner=owner,
                        lease_until=lease_until,
                        updated_at=now,
                    )
                )
            claimed = [
                conn.execute(
                    sa.select(campaigns).where(
                        campaigns.c.workspace == row.workspace,
                        campaigns.c.id == row.id,
                        campaigns.c.lease_owner == owner,
                    )
                ).one()
                for row in picked
            ]
        return [campaign_record(row) for row in claimed]

    def extend_campaign_lease(
        self, workspace: str, campaign_id: str, owner: str, lease_until: datetime
    ) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                campaigns.update()
                .where(
                    campaigns.c.workspace == workspace,
                    campaigns.c.id == campaign_id,
                    campaigns.c.lease_owner == owner,
                )
                .values(lease_until=lease_until)
            )
            return bool(result.rowcount)

    def add_snapshot_sends(
        self, workspace: str, campaign_id: str, owner: str, batch: Sequence[NewSend], now: datetime
    ) -> int:
        """Put a page of the audience in the outbox (a replayed page adds nothing)."""
        with self.engine.begin() as conn:
            current = self._locked(conn, workspace, campaign_id)
            if current.lease_owner != owner:
                raise FailedPrecondition("the snapshot lease moved to another replica")
            if CampaignState(current.state) is CampaignState.CANCELLED:
                raise FailedPrecondition("the campaign was cancelled during its snapshot")
            hold = CampaignState(current.state) is not CampaignState.SENDING
            rows = [new_send_row(send, now) | {"hold": hold} for send in batch]
            return insert_ignore(conn, sends, rows, ("workspace", "idempotency_key"))

    def finish_snapshot(
        self, workspace: str, campaign_id: str, owner: str, template_version: str, now: datetime
    ) -> int:
        with self.engine.begin() as conn:
            size = conn.execute(
                sa.select(sa.func.count())
                .select_from(sends)
                .where(sends.c.workspace == workspace, sends.c.campaign_id == campaign_id)
            ).scalar_one()
            conn.execute(
                campaigns.update()
                .where(
                    campaigns.c.workspace == workspace,
                    campaigns.c.id == campaign_id,
                    campaigns.c.lease_owner == owner,
                )
                .values(
                    snapshot_done=True,
                    audience_size=size,
                    template_version=template_version,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            return int(size)

    def fail_campaign(self, workspace: str, campaign_id: str, reason: str, now: datetime) -> None:
        """A campaign that cannot start (its audience vanished, say) is cancelled."""
        with self.engine.begin() as conn:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.workspace == workspace, campaigns.c.id == campaign_id)
                .values(
                    state=CampaignState.CANCELLED.value,
                    end_at=now,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            conn.execute(
                sends.update()
                .where(
                    sends.c.workspace == workspace,
                    sends.c.campaign_id == campaign_id,
                    sends.c.state == SendState.QUEUED.value,
                )
                .values(state=SendState.CANCELLED.value, reason=reason[:500], updated_at=now)
            )

    def finish_campaigns(self, now: datetime) -> list[tuple[str, str]]:
        """Sending campaigns with a finished snapshot and nothing left open become sent."""
        open_sends = (
            sa.select(sends.c.id)
            .where(
                sends.c.workspace == campaigns.c.workspace,
                sends.c.campaign_id == campaigns.c.id,
                sends.c.state.in_(OPEN_SEND_STATES),
            )
            .exists()
        )
        finished = sa.and_(
            campaigns.c.state == CampaignState.SENDING.value,
            campaigns.c.snapshot_done.is_(True),
            ~open_sends,
        )
        if nothing_to_do(self.engine, sa.select(campaigns.c.id).where(finished)):
            return []
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.select(campaigns.c.workspace, campaigns.c.id).where(
                    campaigns.c.state == CampaignState.SENDING.value,
                    campaigns.c.snapshot_done.is_(True),
                    ~open_sends,
                )
            ).all()
            for row in done:
                conn.execute(
                    campaigns.update()
                    .where(
                        campaigns.c.workspace == row.workspace,
                        campaigns.c.id == row.id,
                        campaigns.c.state == CampaignState.SENDING.value,
                    )
                    .values(state=CampaignState.SENT.value, end_at=now, updated_at=now)
                )
        return [(row.workspace, row.id) for row in done]

    def scheduler_idle(self) -> bool:
        """Nothing for the campaign scheduler to look at: no campaign scheduled or
        sending, and no send of a cancelled campaign left to sweep. One read, so an idle
        scheduler's tick costs one read rather than one per step."""
        with self.reader.connect() as conn:
            running = conn.execute(
                sa.select(campaigns.c.id)
                .where(
                    campaigns.c.state.in_(
                        (CampaignState.SCHEDULED.value, CampaignState.SENDING.value)
                    )
                )
                .limit(1)
            ).first()
            if running is not None:
                return False
            return (
                conn.execute(sa.select(sends.c.id).where(_left_cancelled()).limit(1)).first()
                is None
            )

    def sweep_cancelled(self, now: datetime) -> int:
        """Sends of cancelled campaigns that were in a worker's hands at the cancel (and
        given back since) are cancelled too."""
        left = _left_cancelled()
        if nothing_to_do(self.engine, sa.select(sends.c.id).where(left)):
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(
                sends.update()
                .where(left)
                .values(
                    state=SendState.CANCELLED.value, reason="campaign cancelled", updated_at=now
                )
            )
        return int(result.rowcount or 0)

    def campaign_progress(self, workspace: str, campaign_id: str) -> tuple[int, int]:
        """(finished sends, all sends) of a campaign."""
        with self.reader.connect() as conn:
            total, open_count = conn.execute(
                sa.select(
                    sa.func.count(),
                    sa.func.count().filter(sends.c.state.in_(OPEN_SEND_STATES)),
                ).where(sends.c.workspace == workspace, sends.c.campaign_id == campaign_id)
            ).one()
        return int(total) - int(open_count), int(total)


def _left_cancelled() -> sa.ColumnElement[bool]:
    """Sends of a cancelled campaign still queued on hold (given back since the cancel)."""
    cancelled = (
        sa.select(campaigns.c.id)
        .where(
            campaigns.c.workspace == sends.c.workspace,
            campaigns.c.id == sends.c.campaign_id,
            campaigns.c.state == CampaignState.CANCELLED.value,
        )
        .exists()
    )
    return sa.and_(sends.c.state == SendState.QUEUED.value, sends.c.hold.is_(True), cancelled)
