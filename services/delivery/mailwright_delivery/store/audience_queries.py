"""The audience sync queue: the pending transitions (one row per member, the latest
transition winning), changes leased and acknowledged, the members the provider was told
about, per-member failures and totals."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailwright.connectors import AudienceMember, MemberFailure
from mailwright_delivery.audiences import Claim, DestinationState, Op
from mailwright_delivery.store.audience_destination_queries import AudienceDestinationQueries
from mailwright_delivery.store.base import lock_for_claim
from mailwright_delivery.store.tables import (
    audience_destinations,
    audience_failures,
    audience_members,
    audience_pending,
    audience_status,
)


@dataclass(frozen=True)
class Transition:
    destination_id: str
    segment_id: str
    profile_id: str
    op: Op
    occur_at: datetime


@dataclass(frozen=True)
class Acknowledged:
    """What the provider took from a change: members added (as sent), removed, refused."""

    added: Sequence[AudienceMember]
    removed: Sequence[str]
    failures: Sequence[MemberFailure]


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Any,
    where: Any = None,
) -> None:
    """Insert `rows`, or on a key collision set `update` where `where` holds; either may
    be a function of the statement's `excluded` row (the values that collided)."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement: Any = dialect.insert(table)
    values = update(statement.excluded) if callable(update) else update
    condition = where(statement.excluded) if callable(where) else where
    # One statement executed for many rows: compiled once (a multi-row VALUES would be
    # compiled anew for every batch, which costs more than the database's work).
    conn.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=values, where=condition),
        [dict(row) for row in rows],
    )


def group_key(workspace: str, destination_id: str, segment_id: str, table: sa.Table) -> Any:
    return sa.and_(
        table.c.workspace == workspace,
        table.c.destination_id == destination_id,
        table.c.segment_id == segment_id,
    )


class AudienceQueries(AudienceDestinationQueries):
    engine: sa.Engine
    reader: sa.Engine
    snapshot: sa.Engine

    # -- the queue of transitions -----------------------------------------------------

    def enqueue(self, workspace: str, transitions: Sequence[Transition], now: datetime) -> None:
        """Record transitions to sync; per member the latest (by occur time) wins."""
        with self.engine.begin() as conn:
            self._enqueue(conn, workspace, transitions, now)

    def _enqueue(
        self,
        conn: sa.Connection,
        workspace: str,
        transitions: Iterable[Transition],
        now: datetime,
    ) -> None:
        latest: dict[tuple[str, str, str], Transition] = {}
        for t in transitions:
            key = (t.destination_id, t.segment_id, t.profile_id)
            if key not in latest or latest[key].occur_at <= t.occur_at:
                latest[key] = t
        rows = [
            {
                "workspace": workspace,
                "destination_id": t.destination_id,
                "segment_id": t.segment_id,
                "profile_id": t.profile_id,
                "op": t.op.value,
                "occur_at": t.occur_at,
                "due_at": now,
                "attempts": 0,
            }
            for t in latest.values()
        ]
        table = audience_pending
        upsert(
            conn,
            table,
            rows,
            ["workspace", "destination_id", "segment_id", "profile_id"],
            lambda new: {"op": new.op, "occur_at": new.occur_at},
            lambda new: new.occur_at >= table.c.occur_at,
        )

    def due_groups(self, now: datetime, limit: int) -> list[tuple[str, str, str]]:
        """Destination and segment pairs with transitions ready to sync (active ones)."""
        ready = sa.or_(
            sa.and_(audience_pending.c.change_id.is_(None), audience_pending.c.due_at <= now),
            sa.and_(
                audience_pending.c.change_id.is_not(None), audience_pending.c.lease_until < now
            ),
        )
        query = (
            sa.select(
                audience_pending.c.workspace,
                audience_pending.c.destination_id,
                audience_pending.c.segment_id,
            )
            .join(
                audience_destinations,
                sa.and_(
                    audience_destinations.c.workspace == audience_pending.c.workspace,
                    audience_destinations.c.id == audience_pending.c.destination_id,
                ),
            )
            .where(ready, audience_destinations.c.state == DestinationState.ACTIVE.value)
            .distinct()
            .limit(limit)
        )
        with self.engine.execution_options(sqlite_deferred=True).connect() as conn:
            rows = conn.execute(query).all()
        return [(row[0], row[1], row[2]) for row in rows]

    def claim_change(
        self,
        workspace: str,
        destination_id: str,
        segment_id: str,
        change_id: str,
        size: int,
        now: datetime,
        lease_until: datetime,
    ) -> Claim | None:
        """Lease up to `size` pending rows of a destination and segment as one change.

        A change whose lease ran out (its worker died mid-sync) is taken again whole,
        under its own id, before anything new: only that change is sent twice.
        """
        p = audience_pending
        here = group_key(workspace, destination_id, segment_id, p)
        with self.engine.begin() as conn:
            expired = conn.execute(
                sa.select(p.c.change_id)
                .where(here, p.c.change_id.is_not(None), p.c.lease_until < now)
                .limit(1)
            ).first()
            if expired is not None:
                change_id = expired[0]
                rows = conn.execute(
                    lock_for_claim(
                        sa.select(p.c.profile_id, p.c.op, p.c.attempts).where(
                            here, p.c.change_id == change_id
                        ),
                        conn,
                    )
                ).all()
            else:
                rows = conn.execute(
                    lock_for_claim(
                        sa.select(p.c.profile_id, p.c.op, p.c.attempts)
                        .where(here, p.c.change_id.is_(None), p.c.due_at <= now)
                        .order_by(p.c.occur_at, p.c.profile_id)
                        .limit(size),
                        conn,
                    )
                ).all()
            if not rows:
                return None
            ids = [row.profile_id for row in rows]
            conn.execute(
                p.update()
                .where(here, p.c.profile_id.in_(ids))
                .values(change_id=change_id, sent_op=p.c.op, lease_until=lease_until)
            )
        return Claim(
            workspace=workspace,
            destination_id=destination_id,
            segment_id=segment_id,
            change_id=change_id,
            ops={row.profile_id: Op(row.op) for row in rows},
            attempts=max(row.attempts for row in rows),
        )

    def synced_members(
        self, workspace: str, destination_id: str, segment_id: str, profile_ids: Sequence[str]
    ) -> dict[str, AudienceMember]:
        """What the provider was told about these members (address, provider ids)."""
        if not profile_ids:
            return {}
        m = audience_members
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.profile_id, m.c.email, m.c.external_ids).where(
                    group_key(workspace, destination_id, segment_id, m),
                    m.c.profile_id.in_(list(profile_ids)),
                )
            ).all()
        return {
            row.profile_id: AudienceMember(
                row.profile_id, row.email or None, json.loads(row.external_ids or "{}")
            )
            for row in rows
        }

    def address_holders(
        self, workspace: str, destination_id: str, segment_id: str, emails: Sequence[str]
    ) -> dict[str, str]:
        """Address → a synced member of the segment known by it."""
        wanted = sorted({e for e in emails if e})
        if not wanted:
            return {}
        m = audience_members
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(m.c.email, m.c.profile_id).where(
                    group_key(workspace, destination_id, segment_id, m), m.c.email.in_(wanted)
                )
            ).all()
        return {row.email: row.profile_id for row in rows}

    def acknowledge(
        self, claim: Claim, outcome: Acknowledged, now: datetime, resync_id: str = ""
    ) -> None:
        """The provider took the change: members recorded, rows done. A row whose member
        moved again while the change was in flight stays, for the next change."""
        ws, dest, seg = claim.workspace, claim.destination_id, claim.segment_id
        with self.engine.begin() as conn:
            if outcome.added:
                upsert(
                    conn,
                    audience_members,
                    [
                        {
                            "workspace": ws,
                            "destination_id": dest,
                            "segment_id": seg,
                            "profile_id": member.profile_id,
                            "email": (member.email or "").lower(),
                            "external_ids": json.dumps(dict(member.external_ids)),
                            "synced_at": now,
                            "resync_id": resync_id,
                        }
                        for member in outcome.added
                    ],
                    ["workspace", "destination_id", "segment_id", "profile_id"],
                    lambda new: {
                        "email": new.email,
                        "external_ids": new.external_ids,
                        "synced_at": new.synced_at,
                    },
                )
            if outcome.removed:
                conn.execute(
                    audience_members.delete().where(
                        group_key(ws, dest, seg, audience_members),
                        audience_members.c.profile_id.in_(list(outcome.removed)),
                    )
                )
            settled = [m.profile_id for m in outcome.added] + list(outcome.removed)
            if settled:
                conn.execute(
                    audience_failures.delete().where(
                        group_key(ws, dest, seg, audience_failures),
                        audience_failures.c.profile_id.in_(settled),
                    )
                )
            if outcome.failures:
                upsert(
                    conn,
                    audience_failures,
                    [
                        {
                            "workspace": ws,
                            "destination_id": dest,
                            "segment_id": seg,
                            "profile_id": f.profile_id,
                            "kind": str(f.kind.value),
                            "detail": f.detail[:600],
                            "failed_at": now,
                        }
                        for f in outcome.failures
                    ],
                    ["workspace", "destination_id", "segment_id", "profile_id"],
                    lambda new: {
                        "kind": new.kind,
                        "detail": new.detail,
                        "failed_at": new.failed_at,
                    },
                )
            p = audience_pending
            mine = sa.and_(group_key(ws, dest, seg, p), p.c.change_id == claim.change_id)
            conn.execute(p.delete().where(mine, p.c.op == p.c.sent_op))
            conn.execute(
                p.update()
                .where(mine)
                .values(change_id=None, sent_op=None, lease_until=None, attempts=0, due_at=now)
            )
            self._count(
                conn,
                claim,
                now,
                added=len(outcome.added),
                removed=len(outcome.removed),
                failed=len(outcome.failures),
            )

    def retry_later(self, claim: Claim, due_at: datetime, error: str, now: datetime) -> None:
        """The change failed as a whole: its rows wait until `due_at` (attempts counted)."""
        p = audience_pending
        with self.engine.begin() as conn:
            conn.execute(
                p.update()
                .where(
                    group_key(claim.workspace, claim.destination_id, claim.segment_id, p),
                    p.c.change_id == claim.change_id,
                )
                .values(
                    change_id=None,
                    sent_op=None,
                    lease_until=None,
                    attempts=p.c.attempts + 1,
                    due_at=due_at,
                )
            )
            self._count(conn, claim, now, error=error[:600])

    def _count(
        self,
        conn: sa.Connection,
        claim: Claim,
        now: datetime,
        *,
        added: int = 0,
        removed: int = 0,
        failed: int = 0,
        error: str = "",
    ) -> None:
        s = audience_status
        values: dict[str, Any] = {"last_error": error}
        if not error:
            values["last_sync_at"] = now
        upsert(
            conn,
            s,
            [
                {
                    "workspace": claim.workspace,
                    "destination_id": claim.destination_id,
                    "segment_id": claim.segment_id,
                    "added": added,
                    "removed": removed,
                    "failed": failed,
                    **values,
                }
            ],
            ["workspace", "destination_id", "segment_id"],
            {
                "added": s.c.added + added,
                "removed": s.c.removed + removed,
                "failed": s.c.failed + failed,
                **values,
            },
        )

    def make_due(self, workspace: str, destination_id: str, now: datetime) -> None:
        """Waiting rows of the destination are tried at once (after an operator fix)."""
        p = audience_pending
        with self.engine.begin() as conn:
            conn.execute(
                p.update()
                .where(
                    p.c.workspace == workspace,
                    p.c.destination_id == destination_id,
                    p.c.change_id.is_(None),
                )
                .values(due_at=now)
            )
