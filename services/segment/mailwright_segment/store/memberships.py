"""Memberships, their transition log (the outbox and the history), timers and jobs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mailwright_segment.store.projection import insert_of, is_postgres, prepared
from mailwright_segment.store.tables import (
    jobs,
    membership_log,
    memberships,
    profiles,
    segments,
    timers,
)


@dataclass(frozen=True)
class LogEntry:
    id: int
    ws: str
    segment_id: str
    profile_id: str
    entered: bool
    at: int
    rule_version: int
    cause: str
    erase: bool = False


def _entry(row: Any) -> LogEntry:
    return LogEntry(
        row.id,
        row.ws,
        row.segment_id,
        row.profile_id,
        row.transition == "entered",
        row.occurred_at,
        row.rule_version,
        row.cause,
        row.erase,
    )


# ---------------------------------------------------------------------------------------
# Current memberships


def member_flags(
    conn: sa.Connection, profile_pk: int, segment_pks: Iterable[int] | None = None
) -> dict[int, bool]:
    query = prepared(
        conn,
        f"memberships.flags.{segment_pks is None}",
        lambda _: _flags_query(every=segment_pks is None),
    )
    params: dict[str, Any] = {"key": profile_pk}
    if segment_pks is not None:
        params["segments"] = list(segment_pks)
    return {int(r.segment_pk): bool(r.member) for r in conn.execute(query, params)}


def _flags_query(*, every: bool) -> Any:
    query = sa.select(memberships.c.segment_pk, memberships.c.member).where(
        memberships.c.profile_pk == sa.bindparam("key")
    )
    if not every:
        query = query.where(memberships.c.segment_pk.in_(sa.bindparam("segments", expanding=True)))
    return query


def members_in_range(conn: sa.Connection, segment_pk: int, low: int, high: int) -> set[int]:
    rows = conn.execute(
        sa.select(memberships.c.profile_pk).where(
            memberships.c.segment_pk == segment_pk,
            memberships.c.member.is_(True),
            memberships.c.profile_pk.between(low, high),
        )
    )
    return {int(pk) for pk in rows.scalars()}


def set_member(
    conn: sa.Connection, segment_pk: int, profile_pk: int, member: bool, at: int, version: int
) -> None:
    """Record an entry (`member`) or an exit at `at` under rule `version`."""

    def build(dialect: str) -> Any:
        changed = ["member", "exited_at", "rule_version"] + (["entered_at"] if member else [])
        statement = insert_of(dialect, memberships)
        return statement.on_conflict_do_update(
            index_elements=[memberships.c.segment_pk, memberships.c.profile_pk],
            set_={name: statement.excluded[name] for name in changed},
        )

    row = {
        "segment_pk": segment_pk,
        "profile_pk": profile_pk,
        "member": member,
        "entered_at": at,
        "exited_at": None if member else at,
        "rule_version": version,
    }
    conn.execute(prepared(conn, f"memberships.set.{member}", build), row)


def log_transition(
    conn: sa.Connection,
    *,
    ws: str,
    segment_id: str,
    profile_id: str,
    entered: bool,
    at: int,
    rule_version: int,
    cause: str,
    erase: bool = False,
) -> int:
    statement = prepared(
        conn,
        "membership_log.insert",
        lambda _: membership_log.insert().returning(membership_log.c.id),
    )
    result = conn.execute(
        statement,
        {
            "ws": ws,
            "segment_id": segment_id,
            "profile_id": profile_id,
            "transition": "entered" if entered else "exited",
            "occurred_at": at,
            "rule_version": rule_version,
            "cause": cause,
            "published": False,
            "erase": erase,
        },
    )
    return int(result.scalar_one())


def list_members(
    conn: sa.Connection, segment_pk: int, after_pk: int, limit: int
) -> list[tuple[int, str, int]]:
    """(profile key, profile id, entered at) of current members, by profile key."""
    rows = conn.execute(
        sa.select(profiles.c.pk, profiles.c.profile_id, memberships.c.entered_at)
        .select_from(memberships.join(profiles, profiles.c.pk == memberships.c.profile_pk))
        .where(
            memberships.c.segment_pk == segment_pk,
            memberships.c.member.is_(True),
            memberships.c.profile_pk > after_pk,
        )
        .order_by(memberships.c.profile_pk)
        .limit(limit)
    )
    return [(int(r.pk), r.profile_id, int(r.entered_at)) for r in rows]


def profile_segments(conn: sa.Connection, ws: str, profile_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(segments.c.segment_id)
        .select_from(
            memberships.join(profiles, profiles.c.pk == memberships.c.profile_pk).join(
                segments, segments.c.pk == memberships.c.segment_pk
            )
        )
        .where(
            profiles.c.ws == ws,
            profiles.c.profile_id == profile_id,
            memberships.c.member.is_(True),
        )
        .order_by(segments.c.segment_id)
    )
    return list(rows.scalars())


# ---------------------------------------------------------------------------------------
# The log: outbox and history


def unpublished(conn: sa.Connection, ids: Sequence[int] | None, limit: int) -> list[LogEntry]:
    query = sa.select(membership_log).where(membership_log.c.published.is_(False))
    if ids is not None:
        query = query.where(membership_log.c.id.in_(list(ids)))
    rows = conn.execute(query.order_by(membership_log.c.id).limit(limit))
    return [_entry(r) for r in rows]


def mark_published(conn: sa.Connection, entries: Sequence[LogEntry]) -> None:
    erased = [e.id for e in entries if e.erase]
    kept = [e.id for e in entries if not e.erase]
    if kept:
        conn.execute(
            membership_log.update().where(membership_log.c.id.in_(kept)).values(published=True)
        )
    if erased:
        conn.execute(membership_log.delete().where(membership_log.c.id.in_(erased)))


def history(
    conn: sa.Connection,
    ws: str,
    *,
    after_id: int = 0,
    since: int | None = None,
    segment_ids: Sequence[str] = (),
    limit: int = 500,
) -> list[LogEntry]:
    """Recorded transitions of the workspace after an id (and from an instant), by id."""
    query = sa.select(membership_log).where(
        membership_log.c.ws == ws,
        membership_log.c.id > after_id,
        membership_log.c.erase.is_(False),
    )
    if since is not None:
        query = query.where(membership_log.c.occurred_at >= since)
    if segment_ids:
        query = query.where(membership_log.c.segment_id.in_(list(segment_ids)))
    rows = conn.execute(query.order_by(membership_log.c.id).limit(limit))
    return [_entry(r) for r in rows]


def last_log_id(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.max(membership_log.c.id))).scalar() or 0)


def erase_history(conn: sa.Connection, ws: str, profile_ids: Sequence[str]) -> None:
    conn.execute(
        membership_log.delete().where(
            membership_log.c.ws == ws,
            membership_log.c.profile_id.in_(list(profile_ids)),
            membership_log.c.erase.is_(False),
        )
    )


def prune_history(conn: sa.Connection, before: int) -> int:
    result = conn.execute(
        membership_log.delete().where(
            membership_log.c.occurred_at < before, membership_log.c.published.is_(True)
        )
    )
    return result.rowcount or 0


# ---------------------------------------------------------------------------------------
# Timers


def set_timers(conn: sa.Connection, due: dict[tuple[int, int], int | None]) -> None:
    """Schedule (segment key, profile key) at an instant, or unschedule with None."""
    cancelled = [{"s": s, "p": p} for (s, p), at in due.items() if at is None]
    if cancelled:
        statement = prepared(
            conn,
            "timers.delete",
            lambda _: timers.delete().where(
                timers.c.segment_pk == sa.bindparam("s"), timers.c.profile_pk == sa.bindparam("p")
            ),
        )
        conn.execute(statement, cancelled)
    rows = [
        {"segment_pk": s, "profile_pk": p, "due_at": at, "claimed_by": None, "claimed_until": None}
        for (s, p), at in due.items()
        if at is not None
    ]
    if rows:

        def build(dialect: str) -> Any:
            statement = insert_of(dialect, timers)
            return statement.on_conflict_do_update(
                index_elements=[timers.c.segment_pk, timers.c.profile_pk],
                set_={
                    "due_at": statement.excluded.due_at,
                    "claimed_by": None,
                    "claimed_until": None,
                },
            )

        conn.execute(prepared(conn, "timers.upsert", build), rows)


def claim_timers(
    conn: sa.Connection, owner: str, now: int, lease_until: int, limit: int
) -> list[tuple[int, int]]:
    """Claim due timers nobody holds (or whose holder's lease lapsed). On PostgreSQL rows
    another replica is claiming are skipped (SKIP LOCKED); SQLite serialises writers."""
    free = sa.or_(timers.c.claimed_until.is_(None), timers.c.claimed_until < now)
    query = (
        sa.select(timers.c.segment_pk, timers.c.profile_pk)
        .where(timers.c.due_at <= now, free)
        .order_by(timers.c.due_at)
        .limit(limit)
    )
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    found = [(int(r.segment_pk), int(r.profile_pk)) for r in conn.execute(query)]
    for segment_pk, profile_pk in found:
        conn.execute(
            timers.update()
            .where(timers.c.segment_pk == segment_pk, timers.c.profile_pk == profile_pk)
            .values(claimed_by=owner, claimed_until=lease_until)
        )
    return found


def timer_claimed(conn: sa.Connection, segment_pk: int, profile_pk: int, owner: str) -> bool:
    """Whether the timer is still ours (an event may have rescheduled it meanwhile)."""
    holder = conn.execute(
        sa.select(timers.c.claimed_by).where(
            timers.c.segment_pk == segment_pk, timers.c.profile_pk == profile_pk
        )
    ).scalar()
    return holder == owner


def next_due(conn: sa.Connection) -> int | None:
    value = conn.execute(
        sa.select(sa.func.min(timers.c.due_at)).where(timers.c.claimed_by.is_(None))
    ).scalar()
    return None if value is None else int(value)


def due_of(conn: sa.Connection, segment_pk: int, profile_pk: int) -> int | None:
    value = conn.execute(
        sa.select(timers.c.due_at).where(
            timers.c.segment_pk == segment_pk, timers.c.profile_pk == profile_pk
        )
    ).scalar()
    return None if value is None else int(value)


# ---------------------------------------------------------------------------------------
# Recompute jobs


@dataclass(frozen=True)
class JobRow:
    ws: str
    job_id: str
    segment_id: str
    state: str
    cause: str
    done: int
    total: int
    entered: int
    exited: int
    error: str
    created_at: int
    ended_at: int | None
    cursor: int


def _job(row: Any) -> JobRow:
    return JobRow(
        row.ws,
        row.job_id,
        row.segment_id,
        row.state,
        row.cause,
        row.done,
        row.total,
        row.entered,
        row.exited,
        row.error,
        row.created_at,
        row.ended_at,
        row.cursor,
    )


def create_job(
    conn: sa.Connection, ws: str, job_id: str, segment_id: str, cause: str, total: int, now: int
) -> JobRow:
    conn.execute(
        jobs.insert().values(
            ws=ws,
            job_id=job_id,
            segment_id=segment_id,
            state="running",
            cause=cause,
            total=total,
            created_at=now,
            cursor=0,
        )
    )
    found = get_job(conn, ws, job_id)
    assert found is not None
    return found


def get_job(conn: sa.Connection, ws: str, job_id: str) -> JobRow | None:
    row = conn.execute(sa.select(jobs).where(jobs.c.ws == ws, jobs.c.job_id == job_id)).first()
    return None if row is None else _job(row)


def claim_job(conn: sa.Connection, owner: str, now: int, lease_until: int) -> JobRow | None:
    """A running job nobody works on (or whose worker's lease lapsed), now ours."""
    free = sa.or_(jobs.c.claimed_until.is_(None), jobs.c.claimed_until < now)
    query = (
        sa.select(jobs)
        .where(jobs.c.state == "running", sa.or_(free, jobs.c.claimed_by == owner))
        .order_by(jobs.c.created_at)
        .limit(1)
    )
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    conn.execute(
        jobs.update()
        .where(jobs.c.ws == row.ws, jobs.c.job_id == row.job_id)
        .values(claimed_by=owner, claimed_until=lease_until)
    )
    return _job(row)


def advance_job(
    conn: sa.Connection,
    job: JobRow,
    *,
    cursor: int,
    done: int,
    entered: int,
    exited: int,
    lease_until: int,
) -> None:
    conn.execute(
        jobs.update()
        .where(jobs.c.ws == job.ws, jobs.c.job_id == job.job_id)
        .values(
            cursor=cursor,
            done=jobs.c.done + done,
            entered=jobs.c.entered + entered,
            exited=jobs.c.exited + exited,
            claimed_until=lease_until,
        )
    )


def finish_job(conn: sa.Connection, job: JobRow, *, error: str, now: int) -> None:
    conn.execute(
        jobs.update()
        .where(jobs.c.ws == job.ws, jobs.c.job_id == job.job_id)
        .values(
            state="failed" if error else "succeeded",
            error=error,
            ended_at=now,
            claimed_by=None,
            claimed_until=None,
        )
    )
