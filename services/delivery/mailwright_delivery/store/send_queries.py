"""The outbox of sends: claims with leases, outcomes, retries, parking, listing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright_delivery.model import Category, SendState
from mailwright_delivery.records import NewSend, OutboxMessage, SendRecord
from mailwright_delivery.store.base import (
    add_outbox,
    aware,
    insert_ignore,
    lock_for_claim,
    must_aware,
    nothing_to_do,
)
from mailwright_delivery.store.campaign_queries import new_send_row
from mailwright_delivery.store.tables import sends, suppressions

FINAL_STATES = (
    SendState.SENT.value,
    SendState.DELIVERED.value,
    SendState.DEFERRED.value,
    SendState.BOUNCED.value,
    SendState.SKIPPED.value,
    SendState.PARKED.value,
    SendState.CANCELLED.value,
)


# The statements of the hot path (every chunk of every send goes through them), built
# once with bind parameters: building a statement costs several times its execution.
_IDS = "b_ids"
_CONFIRMED = sa.select(sends.c.id).where(
    sends.c.id.in_(sa.bindparam(_IDS, expanding=True)),
    sends.c.state == SendState.SENDING.value,
    sends.c.lease_owner == sa.bindparam("b_owner"),
    sends.c.hold.is_(False),
)
_COUNT_ATTEMPT = (
    sends.update()
    .where(sends.c.id.in_(sa.bindparam(_IDS, expanding=True)))
    .values(
        attempts=sends.c.attempts + 1,
        lease_until=sa.bindparam("b_until"),
        updated_at=sa.bindparam("b_now"),
    )
)
_REQUEUE_DROPPED = (
    sends.update()
    .where(
        sends.c.id.in_(sa.bindparam(_IDS, expanding=True)),
        sends.c.state == SendState.SENDING.value,
        sends.c.lease_owner == sa.bindparam("b_owner"),
    )
    .values(state=SendState.QUEUED.value, lease_owner=None, lease_until=None)
)
_REQUEUE_WITH_REASON = (
    sends.update()
    .where(
        sends.c.id == sa.bindparam("b_id"),
        sends.c.state == SendState.SENDING.value,
        sends.c.lease_owner == sa.bindparam("b_owner"),
    )
    .values(
        state=SendState.QUEUED.value,
        reason=sa.bindparam("b_reason"),
        due_at=sa.bindparam("b_due"),
        lease_owner=None,
        lease_until=None,
        updated_at=sa.bindparam("b_now"),
    )
)
_STILL_OPEN = sa.select(sends.c.id).where(
    sends.c.id.in_(sa.bindparam(_IDS, expanding=True)),
    sends.c.state.in_((SendState.QUEUED.value, SendState.SENDING.value)),
)
_STILL_OPEN_FOR_UPDATE = _STILL_OPEN.with_for_update()
_DIGEST: Any = sa.bindparam("b_hash")
_MARK_SENT = (
    sends.update()
    .where(sends.c.id == sa.bindparam("b_id"))
    .values(
        state=SendState.SENT.value,
        reason="",
        provider=sa.bindparam("b_provider"),
        provider_message_id=sa.bindparam("b_message"),
        sent_at=sa.bindparam("b_now"),
        lease_owner=None,
        lease_until=None,
        address="",
        updated_at=sa.bindparam("b_now"),
        email_hash=sa.case((_DIGEST == "", sends.c.email_hash), else_=_DIGEST),
    )
)


def send_record(row: Any) -> SendRecord:
    return SendRecord(
        id=row.id,
        workspace=row.workspace,
        idempotency_key=row.idempotency_key,
        category=Category(row.category),
        priority=row.priority,
        state=SendState(row.state),
        reason=row.reason,
        due_at=must_aware(row.due_at),
        created_at=must_aware(row.created_at),
        profile_id=row.profile_id,
        campaign_id=row.campaign_id,
        journey_id=row.journey_id,
        journey_version=row.journey_version,
        step_id=row.step_id,
        enrolment_id=row.enrolment_id,
        email_hash=row.email_hash,
        address=row.address,
        template=row.template,
        variant=row.variant,
        subject_variant=row.subject_variant,
        preheader_variant=row.preheader_variant,
        holdout=bool(row.holdout),
        awaiting_winner=bool(row.awaiting_winner),
        hold=bool(row.hold),
        segment=row.segment,
        sender=row.sender,
        context=row.context,
        provider=row.provider,
        provider_message_id=row.provider_message_id,
        attempts=row.attempts,
        sent_at=aware(row.sent_at),
        delivered_at=aware(row.delivered_at),
        open_at=aware(row.open_at),
        click_at=aware(row.click_at),
        bounced_at=aware(row.bounced_at),
        trace_parent=row.trace_parent,
    )


@dataclass(frozen=True)
class Accepted:
    """A send the provider accepted, with the events that report it."""

    send_id: str
    provider: str
    provider_message_id: str
    digest: str = ""
    events: tuple[OutboxMessage, ...] = ()


@dataclass(frozen=True)
class SendFilter:
    workspace: str
    profile_id: str = ""
    campaign_id: str = ""
    journey_id: str = ""
    state: SendState | None = None


class SendQueries:
    engine: sa.Engine
    reader: sa.Engine

    def insert_send(self, send: NewSend, now: datetime) -> tuple[SendRecord, bool]:
        """Put one send in the outbox; (the send under its key, whether it is new)."""
        with self.engine.begin() as conn:
            inserted = insert_ignore(
                conn, sends, [new_send_row(send, now)], ("workspace", "idempotency_key")
            )
            row = conn.execute(
                sa.select(sends).where(
                    sends.c.workspace == send.workspace,
                    sends.c.idempotency_key == send.idempotency_key,
                )
            ).one()
        return send_record(row), bool(inserted)

    def claim_sends(
        self,
        now: datetime,
        owner: str,
        lease_until: datetime,
        limit: int,
        only: Sequence[str] = (),
    ) -> list[SendRecord]:
        """Take up to `limit` due sends for `owner` until `lease_until`.

        Due: queued, not held, not waiting for an experiment's winner, due by now — or
        claimed by a replica whose lease ran out (it died mid-send). Higher priority
        first, then the earliest due. Two replicas never hold one send: PostgreSQL skips
        rows another claim has locked; SQLite runs the claim in one write transaction.
        """
        due = sa.and_(
            sa.or_(
                sends.c.state == SendState.QUEUED.value,
                sa.and_(sends.c.state == SendState.SENDING.value, sends.c.lease_until < now),
            ),
            sends.c.hold.is_(False),
            sends.c.awaiting_winner.is_(False),
            sends.c.due_at <= now,
        )
        if only:
            due = sa.and_(due, sends.c.id.in_(list(only)))
        if not only and nothing_to_do(self.engine, sa.select(sends.c.id).where(due)):
            return []
        with self.engine.begin() as conn:
            candidates: list[sa.Row[Any]] = []
            for query in _claim_queries(conn, now, only):
                candidates += conn.execute(lock_for_claim(query.limit(limit), conn)).all()
            if not candidates:
                return []
            candidates.sort(key=lambda row: (-row.priority, must_aware(row.due_at)))
            ids = [row.id for row in candidates[:limit]]
            # By id alone: the rows are this transaction's (locked on PostgreSQL; SQLite's
            # write transaction excludes every other writer), and re-testing `due` here
            # led SQLite to scan the due sends instead of looking up the ids.
            conn.execute(
                sends.update()
                .where(sends.c.id.in_(ids))
                .values(
                    state=SendState.SENDING.value,
                    lease_owner=owner,
                    lease_until=lease_until,
                    updated_at=now,
                )
            )
            rows = conn.execute(
                sa.select(sends).where(sends.c.id.in_(ids), sends.c.lease_owner == owner)
            ).all()
        return [send_record(row) for row in rows]

    def confirm_sends(
        self, ids: Sequence[str], owner: str, now: datetime, lease_until: datetime
    ) -> set[str]:
        """Just before the hand-over: the sends still ours and not held (a pause or a
        cancel since the claim drops them), with the attempt counted."""
        if not ids:
            return set()
        with self.engine.begin() as conn:
            kept = set(conn.execute(_CONFIRMED, {"b_ids": list(ids), "b_owner": owner}).scalars())
            if kept:
                conn.execute(
                    _COUNT_ATTEMPT, {"b_ids": list(kept), "b_until": lease_until, "b_now": now}
                )
            dropped = set(ids) - kept
            if dropped:
                conn.execute(_REQUEUE_DROPPED, {"b_ids": list(dropped), "b_owner": owner})
        return kept

    def set_variant(self, send_id: str, owner: str, variant: str, subject_variant: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sends.update()
                .where(sends.c.id == send_id, sends.c.lease_owner == owner, sends.c.variant == "")
                .values(variant=variant, subject_variant=subject_variant)
            )

    def mark_sent(
        self,
        send_id: str,
        provider: str,
        provider_message_id: str,
        now: datetime,
        events: Sequence[OutboxMessage],
        digest: str = "",
    ) -> bool:
        """The provider accepted: record it with the events to publish, at once.

        Not guarded by the lease: the provider's acceptance is a fact, even if this
        replica's lease ran out meanwhile (a replica that took the send over then finds
        it sent at its confirmation and drops it).
        """
        accepted = Accepted(send_id, provider, provider_message_id, digest, tuple(events))
        return bool(self.mark_sent_many([accepted], now))

    def mark_sent_many(self, accepted: Sequence[Accepted], now: datetime) -> int:
        """`mark_sent` for a chunk of sends in one transaction; how many were recorded."""
        if not accepted:
            return 0
        with self.engine.begin() as conn:
            still_open = set(
                conn.execute(
                    _STILL_OPEN_FOR_UPDATE if conn.dialect.name == "postgresql" else _STILL_OPEN,
                    {"b_ids": [a.send_id for a in accepted]},
                ).scalars()
            )
            todo = [a for a in accepted if a.send_id in still_open]
            if not todo:
                return 0
            conn.execute(
                _MARK_SENT,
                [
                    {
                        "b_id": a.send_id,
                        "b_provider": a.provider,
                        "b_message": a.provider_message_id[:300],
                        "b_hash": a.digest,
                        "b_now": now,
                    }
                    for a in todo
                ],
            )
            add_outbox(conn, [event for a in todo for event in a.events], now)
        return len(todo)

    def mark_retry(
        self, send_id: str, owner: str, due_at: datetime, reason: str, now: datetime
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sends.update()
                .where(
                    sends.c.id == send_id,
                    sends.c.state == SendState.SENDING.value,
                    sends.c.lease_owner == owner,
                )
                .values(
                    state=SendState.QUEUED.value,
                    reason=reason[:500],
                    due_at=due_at,
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )

    def release_sends(
        self, ids: Sequence[str], owner: str, due_at: datetime | None, now: datetime
    ) -> None:
        """Give claimed sends back to the queue, due again at `due_at` when given."""
        if not ids:
            return
        values: dict[str, Any] = {
            "state": SendState.QUEUED.value,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if due_at is not None:
            values["due_at"] = due_at
        with self.engine.begin() as conn:
            conn.execute(
                sends.update()
                .where(
                    sends.c.id.in_(list(ids)),
                    sends.c.state == SendState.SENDING.value,
                    sends.c.lease_owner == owner,
                )
                .values(**values)
            )

    def requeue_sends(
        self, due: Sequence[tuple[str, datetime]], owner: str, reason: str, now: datetime
    ) -> None:
        """Give claimed sends back to the queue, each due again at its own time, saying
        why (`reason` shows in ListSends while they wait: quiet hours, no address yet)."""
        if not due:
            return
        with self.engine.begin() as conn:
            conn.execute(
                _REQUEUE_WITH_REASON,
                [
                    {
                        "b_id": send_id,
                        "b_owner": owner,
                        "b_reason": reason[:500],
                        "b_due": at,
                        "b_now": now,
                    }
                    for send_id, at in due
                ],
            )

    def wake_waiting(
        self, workspace: str, profile_ids: Sequence[str], reason: str, now: datetime
    ) -> int:
        """The queued sends of these people that wait for `reason` (their address) are
        due now; how many. Called when a change may have ended the wait."""
        if not profile_ids:
            return 0
        with self.engine.begin() as conn:
            result = conn.execute(
                sends.update()
                .where(
                    sends.c.workspace == workspace,
                    sends.c.profile_id.in_(list(profile_ids)),
                    sends.c.state == SendState.QUEUED.value,
                    sends.c.reason == reason,
                    sends.c.due_at > now,
                )
                .values(due_at=now, updated_at=now)
            )
            return int(result.rowcount or 0)

    def mark_final(
        self,
        send_id: str,
        state: SendState,
        reason: str,
        now: datetime,
        events: Sequence[OutboxMessage] = (),
        suppress: tuple[str, str, str] | None = None,
        provider: str = "",
        owner: str | None = None,
    ) -> bool:
        """Skip, park, bounce or cancel a send, with its events and the suppression it
        causes (workspace, email hash, reason), in one transaction."""
        values: dict[str, Any] = {
            "state": state.value,
            "reason": reason[:500],
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
        }
        if provider:
            values["provider"] = provider
        if state is SendState.BOUNCED:
            values["bounced_at"] = now
            values["bounce_type"] = "hard"
        if state is not SendState.PARKED:
            values["address"] = ""
        open_state: Any = sends.c.state.in_((SendState.QUEUED.value, SendState.SENDING.value))
        if owner is not None:
            # A worker settles only what it still holds (its lease may have moved on).
            open_state = sa.or_(
                sends.c.state == SendState.QUEUED.value,
                sa.and_(sends.c.state == SendState.SENDING.value, sends.c.lease_owner == owner),
            )
        with self.engine.begin() as conn:
            result = conn.execute(
                sends.update().where(sends.c.id == send_id, open_state).values(**values)
            )
            if not result.rowcount:
                return False
            add_outbox(conn, events, now)
            if suppress is not None:
                workspace, digest, why = suppress
                insert_ignore(
                    conn,
                    suppressions,
                    [
                        {
                            "workspace": workspace,
                            "email_hash": digest,
                            "reason": why,
                            "source": "delivery",
                            "note": "",
                            "created_at": now,
                        }
                    ],
                    ("workspace", "email_hash"),
                )
            return True

    def get_send(self, workspace: str, send_id: str) -> SendRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(sends).where(sends.c.workspace == workspace, sends.c.id == send_id)
            ).first()
        return None if row is None else send_record(row)

    def send_by_provider_message_id(self, workspace: str, message_id: str) -> str | None:
        """The send a provider's message id (a bounce quoting the Message-ID) names."""
        if not message_id:
            return None
        with self.reader.connect() as conn:
            value = conn.execute(
                sa.select(sends.c.id).where(
                    sends.c.workspace == workspace,
                    sends.c.provider_message_id == message_id.strip("<>")[:300],
                )
            ).scalar_one_or_none()
        return None if value is None else str(value)

    def list_sends(self, where: SendFilter, after: str, limit: int) -> list[SendRecord]:
        query = sa.select(sends).where(sends.c.workspace == where.workspace)
        if where.profile_id:
            query = query.where(sends.c.profile_id == where.profile_id)
        if where.campaign_id:
            query = query.where(sends.c.campaign_id == where.campaign_id)
        if where.journey_id:
            query = query.where(sends.c.journey_id == where.journey_id)
        if where.state is SendState.QUEUED:
            query = query.where(
                sends.c.state.in_((SendState.QUEUED.value, SendState.SENDING.value))
            )
        elif where.state is not None:
            query = query.where(sends.c.state == where.state.value)
        if after:
            query = query.where(sends.c.id > after)
        with self.reader.connect() as conn:
            rows = conn.execute(query.order_by(sends.c.id).limit(limit)).all()
        return [send_record(row) for row in rows]

    def retry_parked(
        self, workspace: str, ids: Sequence[str], campaign_id: str, now: datetime
    ) -> int:
        """Parked sends back to the queue: the ones named, or every one of a campaign."""
        query = sends.update().where(
            sends.c.workspace == workspace, sends.c.state == SendState.PARKED.value
        )
        if ids:
            query = query.where(sends.c.id.in_(list(ids)))
        if campaign_id:
            query = query.where(sends.c.campaign_id == campaign_id)
        with self.engine.begin() as conn:
            result = conn.execute(
                query.values(
                    state=SendState.QUEUED.value,
                    reason="retried by command",
                    attempts=0,
                    due_at=now,
                    updated_at=now,
                )
            )
            return int(result.rowcount or 0)

    def count_by_state(self, workspace: str) -> dict[str, int]:
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(sends.c.state, sa.func.count())
                .where(sends.c.workspace == workspace)
                .group_by(sends.c.state)
            ).all()
        return {row[0]: int(row[1]) for row in rows}


def _claim_queries(
    conn: sa.Connection, now: datetime, only: Sequence[str]
) -> tuple[sa.Select[Any], sa.Select[Any]]:
    """The due queued sends and the sends whose lease ran out, each in claim order
    (highest priority, then earliest due). Picked apart and each cut at the claim's size:
    one query with an OR between the states would read every due send and sort them all.
    The queued ones come from ix_delivery_sends_claim; on SQLite, which without
    statistics would rather range over ix_delivery_sends_due and sort, a unary `+` keeps
    the due-time term off the index (SQLite's documented way to steer its planner)."""
    due_at: sa.ColumnElement[Any] = sends.c.due_at
    if conn.dialect.name == "sqlite":
        due_at = sa.literal_column(f"+{sends.name}.due_at", type_=sends.c.due_at.type)
    ready = [sends.c.hold.is_(False), sends.c.awaiting_winner.is_(False)]
    if only:
        ready.append(sends.c.id.in_(list(only)))
    order = (sends.c.priority.desc(), sends.c.due_at)
    columns = (sends.c.id, sends.c.priority, sends.c.due_at)
    queued = sa.select(*columns).where(
        sends.c.state == SendState.QUEUED.value, due_at <= now, *ready
    )
    lapsed = sa.select(*columns).where(
        sends.c.state == SendState.SENDING.value,
        sends.c.lease_until < now,
        sends.c.due_at <= now,
        *ready,
    )
    return queued.order_by(*order), lapsed.order_by(*order)
