"""Suppressions, the delivery policy, feedback on sends, orders and erasure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mailwright_delivery.model import SendState, SuppressionReason
from mailwright_delivery.records import OutboxMessage, SendRecord, SuppressionRecord
from mailwright_delivery.store.base import add_outbox, insert_ignore, must_aware
from mailwright_delivery.store.send_queries import send_record
from mailwright_delivery.store.tables import (
    enrolments,
    feedback_log,
    policies,
    sends,
    soft_bounces,
    suppressions,
)


class Feedback(StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    OPENED = "opened"
    CLICKED = "clicked"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class FeedbackResult:
    applied: bool
    send: SendRecord | None = None
    suppressed: SuppressionReason | None = None


# Built once: every batch of sends reads it (building a statement costs more than running
# this one).
_SUPPRESSED = sa.select(suppressions.c.email_hash, suppressions.c.reason).where(
    suppressions.c.workspace == sa.bindparam("b_workspace"),
    suppressions.c.email_hash.in_(sa.bindparam("b_hashes", expanding=True)),
)


def _suppression(row: Any) -> SuppressionRecord:
    return SuppressionRecord(
        row.workspace, row.email_hash, row.reason, row.source, row.note, must_aware(row.created_at)
    )


class FeedbackQueries:
    engine: sa.Engine
    reader: sa.Engine

    # -- suppressions -----------------------------------------------------------------

    def add_suppression(
        self,
        workspace: str,
        digest: str,
        reason: SuppressionReason,
        source: str,
        note: str,
        now: datetime,
    ) -> SuppressionRecord:
        """Suppress an address hash; an existing entry keeps its first reason."""
        with self.engine.begin() as conn:
            self._suppress(conn, workspace, digest, reason, source, now, note)
            row = conn.execute(
                sa.select(suppressions).where(
                    suppressions.c.workspace == workspace, suppressions.c.email_hash == digest
                )
            ).one()
        return _suppression(row)

    @staticmethod
    def _suppress(
        conn: sa.Connection,
        workspace: str,
        digest: str,
        reason: SuppressionReason,
        source: str,
        now: datetime,
        note: str = "",
    ) -> None:
        insert_ignore(
            conn,
            suppressions,
            [
                {
                    "workspace": workspace,
                    "email_hash": digest,
                    "reason": reason.value,
                    "source": source[:200],
                    "note": note[:500],
                    "created_at": now,
                }
            ],
            ("workspace", "email_hash"),
        )

    def suppressed(self, workspace: str, digests: Sequence[str]) -> dict[str, SuppressionReason]:
        wanted = [d for d in set(digests) if d]
        if not wanted:
            return {}
        with self.reader.connect() as conn:
            rows = conn.execute(_SUPPRESSED, {"b_workspace": workspace, "b_hashes": wanted}).all()
        return {row.email_hash: SuppressionReason(row.reason) for row in rows}

    def get_suppression(self, workspace: str, digest: str) -> SuppressionRecord | None:
        with self.reader.connect() as conn:
            row = conn.execute(
                sa.select(suppressions).where(
                    suppressions.c.workspace == workspace, suppressions.c.email_hash == digest
                )
            ).first()
        return None if row is None else _suppression(row)

    def list_suppressions(
        self, workspace: str, reason: SuppressionReason | None, after: str, limit: int
    ) -> list[SuppressionRecord]:
        query = sa.select(suppressions).where(suppressions.c.workspace == workspace)
        if reason is not None:
            query = query.where(suppressions.c.reason == reason.value)
        if after:
            query = query.where(suppressions.c.email_hash > after)
        with self.reader.connect() as conn:
            rows = conn.execute(query.order_by(suppressions.c.email_hash).limit(limit)).all()
        return [_suppression(row) for row in rows]

    def remove_suppression(self, workspace: str, digest: str) -> bool:
        with self.engine.begin() as conn:
            removed = conn.execute(
                suppressions.delete().where(
                    suppressions.c.workspace == workspace, suppressions.c.email_hash == digest
                )
            ).rowcount
            conn.execute(
                soft_bounces.delete().where(
                    soft_bounces.c.workspace == workspace, soft_bounces.c.email_hash == digest
                )
            )
        return bool(removed)

    # -- policy -----------------------------------------------------------------------

    def get_policy(self, workspace: str) -> bytes | None:
        with self.reader.connect() as conn:
            value = conn.execute(
                sa.select(policies.c.spec).where(policies.c.workspace == workspace)
            ).scalar_one_or_none()
        return None if value is None else bytes(value)

    def put_policy(self, workspace: str, spec: bytes, now: datetime) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(
                policies.update()
                .where(policies.c.workspace == workspace)
                .values(spec=spec, updated_at=now)
            ).rowcount
            if not updated:
                insert_ignore(
                    conn,
                    policies,
                    [{"workspace": workspace, "spec": spec, "updated_at": now}],
                    ("workspace",),
                )

    # -- feedback ---------------------------------------------------------------------

    def apply_feedback(
        self,
        workspace: str,
        dedup_key: str,
        send_id: str,
        kind: Feedback,
        at: datetime,
        now: datetime,
        *,
        machine: bool = False,
        hard: bool = True,
        soft_bounce_limit: int = 3,
        reason: str = "",
    ) -> FeedbackResult:
        """Apply one piece of feedback to a send, once (`dedup_key` is remembered), with
        the suppression it calls for in the same transaction."""
        with self.engine.begin() as conn:
            first = insert_ignore(
                conn,
                feedback_log,
                [{"workspace": workspace, "key": dedup_key[:300], "created_at": now}],
                ("workspace", "key"),
            )
            if not first:
                return FeedbackResult(False)
            row = conn.execute(
                sa.select(sends).where(sends.c.workspace == workspace, sends.c.id == send_id)
            ).first()
            if row is None:
                return FeedbackResult(True)
            where = sa.and_(sends.c.workspace == workspace, sends.c.id == send_id)
            values: dict[str, Any] = {}
            suppressed: SuppressionReason | None = None
            delivered_states = (SendState.SENT.value, SendState.DEFERRED.value)
            if kind is Feedback.DELIVERED:
                if row.delivered_at is None:
                    values["delivered_at"] = at
                if row.state in delivered_states:
                    values["state"] = SendState.DELIVERED.value
            elif kind is Feedback.DEFERRED:
                values["deferred_at"] = at
                if row.state == SendState.SENT.value:
                    values["state"] = SendState.DEFERRED.value
            elif kind is Feedback.OPENED:
                column = "machine_open_at" if machine else "open_at"
                if getattr(row, column) is None:
                    values[column] = at
            elif kind is Feedback.CLICKED:
                if machine:
                    pass  # a link scanner: recorded by nobody, counted nowhere
                else:
                    if row.click_at is None:
                        values["click_at"] = at
                    if row.open_at is None:
                        values["open_at"] = at  # a click proves an open (images off)
            elif kind is Feedback.BOUNCED:
                if row.bounced_at is None:
                    values["bounced_at"] = at
                values["bounce_type"] = "hard" if hard else "soft"
                values["reason"] = reason[:500]
                if hard:
                    values["state"] = SendState.BOUNCED.value
                    suppressed = SuppressionReason.HARD_BOUNCE
                elif row.email_hash and self._count_soft(
                    conn, workspace, row.email_hash, now, soft_bounce_limit
                ):
                    suppressed = SuppressionReason.SOFT_BOUNCES
            elif kind is Feedback.COMPLAINED:
                if row.complained_at is None:
                    values["complained_at"] = at
                suppressed = SuppressionReason.COMPLAINT
            elif kind is Feedback.UNSUBSCRIBED:
                if row.unsubscribed_at is None:
                    values["unsubscribed_at"] = at
                suppressed = SuppressionReason.UNSUBSCRIBED
            if values:
                conn.execute(sends.update().where(where).values(updated_at=now, **values))
            if suppressed is not None and row.email_hash:
                self._suppress(conn, workspace, row.email_hash, suppressed, "feedback", now)
            fresh = conn.execute(sa.select(sends).where(where)).one()
        return FeedbackResult(True, send_record(fresh), suppressed)

    @staticmethod
    def _count_soft(
        conn: sa.Connection, workspace: str, digest: str, now: datetime, limit: int
    ) -> bool:
        """Count a soft bounce of the address; True once it reaches `limit`."""
        key = sa.and_(soft_bounces.c.workspace == workspace, soft_bounces.c.email_hash == digest)
        updated = conn.execute(
            soft_bounces.update().where(key).values(count=soft_bounces.c.count + 1, updated_at=now)
        ).rowcount
        if not updated:
            insert_ignore(
                conn,
                soft_bounces,
                [{"workspace": workspace, "email_hash": digest, "count": 1, "updated_at": now}],
                ("workspace", "email_hash"),
            )
        count = conn.execute(sa.select(soft_bounces.c.count).where(key)).scalar_one()
        return limit > 0 and int(count) >= limit

    def soft_bounce(
        self, workspace: str, dedup_key: str, digest: str, limit: int, now: datetime
    ) -> bool:
        """Count a synchronous soft bounce of an address once; True when that suppressed
        it (the limit was reached)."""
        with self.engine.begin() as conn:
            first = insert_ignore(
                conn,
                feedback_log,
                [{"workspace": workspace, "key": dedup_key[:300], "created_at": now}],
                ("workspace", "key"),
            )
            if not first or not digest or not self._count_soft(conn, workspace, digest, now, limit):
                return False
            self._suppress(conn, workspace, digest, SuppressionReason.SOFT_BOUNCES, "delivery", now)
            return True

    def seen(self, workspace: str, dedup_key: str, now: datetime) -> bool:
        """Remember `dedup_key`; True when it had been seen before."""
        with self.engine.begin() as conn:
            return not insert_ignore(
                conn,
                feedback_log,
                [{"workspace": workspace, "key": dedup_key[:300], "created_at": now}],
                ("workspace", "key"),
            )

    def prune_feedback_log(self, before: datetime) -> int:
        """Forget applied feedback older than `before` (the bus keeps nothing that old)."""
        with self.engine.begin() as conn:
            removed = conn.execute(
                feedback_log.delete().where(feedback_log.c.created_at < before)
            ).rowcount
        return int(removed or 0)

    def publish_later(self, messages: Sequence[OutboxMessage], now: datetime) -> None:
        with self.engine.begin() as conn:
            add_outbox(conn, messages, now)

    # -- orders -----------------------------------------------------------------------

    def record_order(
        self,
        workspace: str,
        dedup_key: str,
        profile_id: str,
        at: datetime,
        revenue: Decimal,
        currency: str,
        now: datetime,
        longest_window: timedelta = timedelta(days=90),
    ) -> str | None:
        """Attribute an order: to the person's last clicked send within its window (last
        touch), and as a conversion, for lift, to every send due within its window before
        the order. Returns the send credited, if any."""
        with self.engine.begin() as conn:
            first = insert_ignore(
                conn,
                feedback_log,
                [{"workspace": workspace, "key": dedup_key[:300], "created_at": now}],
                ("workspace", "key"),
            )
            if not first:
                return None
            mine = sa.and_(sends.c.workspace == workspace, sends.c.profile_id == profile_id)
            since = at - longest_window
            clicked = conn.execute(
                sa.select(sends.c.id, sends.c.click_at, sends.c.attribution_seconds)
                .where(mine, sends.c.click_at.is_not(None), sends.c.click_at > since)
                .order_by(sends.c.click_at.desc())
            ).all()
            credited = None
            for row in clicked:
                click = must_aware(row.click_at)
                if click <= at and at - click <= timedelta(seconds=row.attribution_seconds):
                    credited = row.id
                    break
            if credited is not None:
                conn.execute(
                    sends.update()
                    .where(sends.c.id == credited)
                    .values(
                        conversions=sends.c.conversions + 1,
                        revenue=sends.c.revenue + revenue,
                        revenue_currency=currency[:3],
                    )
                )
            recent = conn.execute(
                sa.select(sends.c.id, sends.c.due_at, sends.c.attribution_seconds).where(
                    mine, sends.c.converted_at.is_(None), sends.c.due_at > since
                )
            ).all()
            converted = [
                row.id
                for row in recent
                if must_aware(row.due_at) <= at
                and at - must_aware(row.due_at) <= timedelta(seconds=row.attribution_seconds)
            ]
            if converted:
                conn.execute(
                    sends.update().where(sends.c.id.in_(converted)).values(converted_at=at)
                )
        return credited

    # -- erasure ----------------------------------------------------------------------

    def erase_profiles(
        self, workspace: str, profile_ids: Sequence[str], digests: Sequence[str], now: datetime
    ) -> int:
        """Forget people: their sends lose every link to them (the counts stay, as
        anonymous facts), their enrolments go, and only a hashed suppression remains."""
        ids = [p for p in profile_ids if p]
        hashes = [d for d in digests if d]
        with self.engine.begin() as conn:
            theirs = sa.or_(
                sends.c.profile_id.in_(ids) if ids else sa.false(),
                sends.c.email_hash.in_(hashes) if hashes else sa.false(),
            )
            # Queued sends to an erased person must never go.
            conn.execute(
                sends.update()
                .where(
                    sends.c.workspace == workspace,
                    theirs,
                    sends.c.state.in_((SendState.QUEUED.value, SendState.SENDING.value)),
                )
                .values(state=SendState.CANCELLED.value, reason="person erased")
            )
            erased = conn.execute(
                sends.update()
                .where(sends.c.workspace == workspace, theirs)
                .values(
                    profile_id="",
                    email_hash="",
                    address="",
                    context="",
                    # A campaign's key names the profile (`campaign:<id>:<profile>`); the
                    # send's id is already unique and names no one.
                    idempotency_key=sa.literal("erased:") + sends.c.id,
                    updated_at=now,
                )
            ).rowcount
            if ids:
                conn.execute(
                    enrolments.delete().where(
                        enrolments.c.workspace == workspace, enrolments.c.profile_id.in_(ids)
                    )
                )
            for digest in hashes:
                self._suppress(conn, workspace, digest, SuppressionReason.ERASED, "erasure", now)
                conn.execute(
                    soft_bounces.delete().where(
                        soft_bounces.c.workspace == workspace, soft_bounces.c.email_hash == digest
                    )
                )
        return int(erased or 0)
