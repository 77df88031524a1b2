"""Resyncs of audience destinations (a segment's members walked page by page, the
members no longer in it removed) and the sync status read back by the API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailwright_delivery.audiences import Op
from mailwright_delivery.store.audience_queries import (
    AudienceQueries,
    Transition,
    group_key,
    upsert,
)
from mailwright_delivery.store.base import aware, lock_for_claim, must_aware
from mailwright_delivery.store.tables import (
    audience_failures,
    audience_members,
    audience_pending,
    audience_status,
)


@dataclass(frozen=True)
class SegmentStatus:
    segment_id: str
    synced_members: int
    pending: int
    added: int
    removed: int
    failed: int
    last_sync_at: datetime | None
    last_error: str
    resync_running: bool
    resync_done: int
    resync_total: int


@dataclass(frozen=True)
class FailureRecord:
    segment_id: str
    profile_id: str
    kind: str
    detail: str
    failed_at: datetime


@dataclass(frozen=True)
class Resync:
    """A resync of one destination and segment, as far as it has gone."""

    workspace: str
    destination_id: str
    segment_id: str
    resync_id: str
    page_token: str
    started_at: datetime


class AudienceResyncQueries(AudienceQueries):
    # -- resyncs ----------------------------------------------------------------------

    def start_resync(
        self,
        workspace: str,
        destination_id: str,
        segment_ids: Sequence[str],
        resync_id: str,
        now: datetime,
    ) -> None:
        s = audience_status
        with self.engine.begin() as conn:
            fresh = {
                "resync_id": resync_id,
                "resync_running": True,
                "resync_page_token": "",
                "resync_total": 0,
                "resync_done": 0,
                "resync_started_at": now,
                "lease_owner": None,
                "lease_until": None,
            }
            upsert(
                conn,
                s,
                [
                    {
                        "workspace": workspace,
                        "destination_id": destination_id,
                        "segment_id": segment_id,
                        **fresh,
                    }
                    for segment_id in segment_ids
                ],
                ["workspace", "destination_id", "segment_id"],
                fresh,
            )

    def claim_resync(self, owner: str, now: datetime, lease_until: datetime) -> Resync | None:
        s = audience_status
        free = sa.or_(s.c.lease_until.is_(None), s.c.lease_until <= now)
        with self.engine.begin() as conn:
            row = conn.execute(
                lock_for_claim(
                    sa.select(s).where(s.c.resync_running.is_(True), free).limit(1), conn
                )
            ).first()
            if row is None:
                return None
            conn.execute(
                s.update()
                .where(group_key(row.workspace, row.destination_id, row.segment_id, s))
                .values(lease_owner=owner, lease_until=lease_until)
            )
        return Resync(
            workspace=row.workspace,
            destination_id=row.destination_id,
            segment_id=row.segment_id,
            resync_id=row.resync_id,
            page_token=row.resync_page_token,
            started_at=must_aware(row.resync_started_at),
        )

    def running_resync_exists(self) -> bool:
        with self.engine.execution_options(sqlite_deferred=True).connect() as conn:
            row = conn.execute(
                sa.select(audience_status.c.segment_id)
                .where(audience_status.c.resync_running.is_(True))
                .limit(1)
            ).first()
        return row is not None

    def resync_page(
        self,
        resync: Resync,
        profile_ids: Sequence[str],
        next_token: str,
        total: int,
        owner: str,
        now: datetime,
    ) -> bool:
        """Queue a page of current members and remember where the next page starts.

        False when the resync was restarted or dropped meanwhile (nothing is written).
        """
        ws, dest, seg = resync.workspace, resync.destination_id, resync.segment_id
        s = audience_status
        with self.engine.begin() as conn:
            if not self._still_mine(conn, resync, owner):
                return False
            self._enqueue(
                conn,
                ws,
                [Transition(dest, seg, p, Op.ADD, resync.started_at) for p in profile_ids],
                now,
            )
            if profile_ids:
                conn.execute(
                    audience_members.update()
                    .where(
                        group_key(ws, dest, seg, audience_members),
                        audience_members.c.profile_id.in_(list(profile_ids)),
                    )
                    .values(resync_id=resync.resync_id)
                )
            conn.execute(
                s.update()
                .where(group_key(ws, dest, seg, s))
                .values(
                    resync_page_token=next_token,
                    resync_total=total,
                    resync_done=s.c.resync_done + len(profile_ids),
                )
            )
        return True

    def finish_resync(self, resync: Resync, owner: str, now: datetime) -> int:
        """Queue the removal of members synced before the resync began that it did not
        see in the segment; the resync is done. How many removals were queued."""
        ws, dest, seg = resync.workspace, resync.destination_id, resync.segment_id
        m = audience_members
        s = audience_status
        with self.engine.begin() as conn:
            if not self._still_mine(conn, resync, owner):
                return 0
            gone = [
                row[0]
                for row in conn.execute(
                    sa.select(m.c.profile_id).where(
                        group_key(ws, dest, seg, m),
                        m.c.resync_id != resync.resync_id,
                        m.c.synced_at < resync.started_at,
                    )
                ).all()
            ]
            self._enqueue(
                conn,
                ws,
                [Transition(dest, seg, p, Op.REMOVE, resync.started_at) for p in gone],
                now,
            )
            conn.execute(
                s.update()
                .where(group_key(ws, dest, seg, s))
                .values(
                    resync_running=False,
                    resync_page_token="",
                    resync_total=s.c.resync_done,
                    lease_owner=None,
                    lease_until=None,
                )
            )
        return len(gone)

    def _still_mine(self, conn: sa.Connection, resync: Resync, owner: str) -> bool:
        s = audience_status
        row = conn.execute(
            sa.select(s.c.resync_id, s.c.resync_running, s.c.lease_owner).where(
                group_key(resync.workspace, resync.destination_id, resync.segment_id, s)
            )
        ).first()
        return (
            row is not None
            and row.resync_running
            and row.resync_id == resync.resync_id
            and row.lease_owner == owner
        )

    def release_resync(self, resync: Resync, owner: str, free_at: datetime) -> None:
        """Let the next page be taken (by any replica) from `free_at` on."""
        s = audience_status
        with self.engine.begin() as conn:
            conn.execute(
                s.update()
                .where(
                    group_key(resync.workspace, resync.destination_id, resync.segment_id, s),
                    s.c.lease_owner == owner,
                )
                .values(lease_until=free_at)
            )

    # -- status -----------------------------------------------------------------------

    def audience_status(
        self, workspace: str, destination_id: str, failures_limit: int = 100
    ) -> tuple[dict[str, SegmentStatus], list[FailureRecord]]:
        s, m, p, f = audience_status, audience_members, audience_pending, audience_failures
        ours_s = sa.and_(s.c.workspace == workspace, s.c.destination_id == destination_id)
        # One snapshot: members, pending and counters as of the same commit (an outcome
        # committed between two of these reads showed a removal counted but not done).
        with self.snapshot.begin() as conn:
            members: dict[str, int] = dict(
                conn.execute(
                    sa.select(m.c.segment_id, sa.func.count())
                    .where(m.c.workspace == workspace, m.c.destination_id == destination_id)
                    .group_by(m.c.segment_id)
                ).all()
            )
            pending: dict[str, int] = dict(
                conn.execute(
                    sa.select(p.c.segment_id, sa.func.count())
                    .where(p.c.workspace == workspace, p.c.destination_id == destination_id)
                    .group_by(p.c.segment_id)
                ).all()
            )
            rows = {row.segment_id: row for row in conn.execute(sa.select(s).where(ours_s))}
            failures = conn.execute(
                sa.select(f)
                .where(f.c.workspace == workspace, f.c.destination_id == destination_id)
                .order_by(f.c.failed_at.desc(), f.c.profile_id)
                .limit(failures_limit)
            ).all()
        statuses: dict[str, SegmentStatus] = {}
        for segment_id in set(rows) | set(members) | set(pending):
            row = rows.get(segment_id)
            statuses[segment_id] = SegmentStatus(
                segment_id=segment_id,
                synced_members=int(members.get(segment_id, 0)),
                pending=int(pending.get(segment_id, 0)),
                added=int(row.added) if row is not None else 0,
                removed=int(row.removed) if row is not None else 0,
                failed=int(row.failed) if row is not None else 0,
                last_sync_at=aware(row.last_sync_at) if row is not None else None,
                last_error=row.last_error if row is not None else "",
                resync_running=bool(row.resync_running) if row is not None else False,
                resync_done=int(row.resync_done) if row is not None else 0,
                resync_total=int(row.resync_total) if row is not None else 0,
            )
        return statuses, [
            FailureRecord(r.segment_id, r.profile_id, r.kind, r.detail, must_aware(r.failed_at))
            for r in failures
        ]
