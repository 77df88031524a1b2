"""Keeping the store in shape: monthly partitions, time-driven re-evaluation of computed
traits, the outbox, pruning, and the rows the audit reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mailwright_profile.profile_state import Change
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.apply import ChangeEncoder
from mailwright_profile.store.outbox import CHANGED_TOPIC, Outgoing, write_outbox

log = logging.getLogger(__name__)

EVENTS_TABLE = "profile_events"
DEFAULT_PARTITION = "profile_events_default"


# -- partitions (PostgreSQL) -------------------------------------------------------------


def month_start(moment: date) -> date:
    return moment.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(month: date) -> str:
    return f"{EVENTS_TABLE}_{month:%Y%m}"


def is_partitioned(conn: sa.Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    row = conn.execute(
        sa.text(
            "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"name": EVENTS_TABLE},
    ).first()
    return row is not None


def partitions(conn: sa.Connection) -> list[str]:
    """The monthly partitions of the event history (PostgreSQL), oldest first."""
    if not is_partitioned(conn):
        return []
    rows = conn.execute(
        sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :name ORDER BY c.relname"
        ),
        {"name": EVENTS_TABLE},
    )
    return [row.relname for row in rows]


def ensure_partitions(conn: sa.Connection, first: date, last: date) -> list[str]:
    """Create the monthly partitions from `first`'s month to `last`'s, moving rows of
    those months out of the default partition; returns the partitions created."""
    if not is_partitioned(conn):
        return []
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('mailwright-profile-partitions'))"))
    existing = set(partitions(conn))
    created = []
    month = month_start(first)
    while month <= last:
        name = partition_name(month)
        if name not in existing:
            _create_partition(conn, name, month, next_month(month))
            created.append(name)
        month = next_month(month)
    return created


def _create_partition(conn: sa.Connection, name: str, low: date, high: date) -> None:
    bounds = {
        "low": datetime.combine(low, datetime.min.time(), UTC),
        "high": datetime.combine(high, datetime.min.time(), UTC),
    }
    literal_low = f"'{bounds['low'].isoformat()}'"
    literal_high = f"'{bounds['high'].isoformat()}'"
    stray = conn.execute(
        sa.text(
            f"SELECT 1 FROM {DEFAULT_PARTITION} WHERE occurred_at >= :low AND occurred_at < :high "
            "LIMIT 1"
        ),
        bounds,
    ).first()
    if stray is None:
        conn.execute(
            sa.text(
                f"CREATE TABLE {name} PARTITION OF {EVENTS_TABLE} "
                f"FOR VALUES FROM ({literal_low}) TO ({literal_high})"
            )
        )
    else:
        # Rows of that month arrived before its partition: move them into it.
        conn.execute(sa.text(f"CREATE TABLE {name} (LIKE {EVENTS_TABLE} INCLUDING DEFAULTS)"))
        conn.execute(
            sa.text(
                f"INSERT INTO {name} SELECT * FROM {DEFAULT_PARTITION} "
                "WHERE occurred_at >= :low AND occurred_at < :high"
            ),
            bounds,
        )
        conn.execute(
            sa.text(
                f"DELETE FROM {DEFAULT_PARTITION} WHERE occurred_at >= :low AND occurred_at < :high"
            ),
            bounds,
        )
        conn.execute(
            sa.text(
                f"ALTER TABLE {EVENTS_TABLE} ATTACH PARTITION {name} "
                f"FOR VALUES FROM ({literal_low}) TO ({literal_high})"
            )
        )
    log.info("created event partition %s", name)


# -- time-driven re-evaluation ---------------------------------------------------------


def refresh_due(
    conn: sa.Connection, now: datetime, limit: int, encode: ChangeEncoder
) -> tuple[int, list[Outgoing]]:
    """Re-evaluate live profiles whose windowed computed traits are due to change;
    announce those that did. Returns (profiles re-evaluated, messages)."""
    p = t.profiles
    rows = conn.execute(
        sa.select(p)
        .where(p.c.refresh_at <= now, p.c.merged_into.is_(None))
        .order_by(p.c.refresh_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    messages = []
    for row in rows:
        state = r.state_from_row(row)
        computed, removed = state.refresh_computed(now)
        values: dict[str, Any] = {"computed": state.computed, "refresh_at": state.refresh_at(now)}
        if computed or removed:
            state.version += 1
            values.update(version=state.version, updated_at=now)
            payload = encode(state, Change(), computed, removed, now)
            key = f"{state.workspace}:{state.profile_id}"
            messages.append((state.workspace, state.profile_id, CHANGED_TOPIC, key, payload))
        conn.execute(
            p.update()
            .where(p.c.workspace == row.workspace, p.c.profile_id == row.profile_id)
            .values(**values)
        )
    return len(rows), write_outbox(conn, messages, now)


# -- outbox and pruning ----------------------------------------------------------------


def pending_outbox(
    conn: sa.Connection, before: datetime, skip: Sequence[str], limit: int
) -> list[Outgoing]:
    """Messages written before `before` and still unpublished, oldest first."""
    query = (
        sa.select(t.outbox.c.id, t.outbox.c.topic, t.outbox.c.key, t.outbox.c.payload)
        .where(t.outbox.c.created_at < before)
        .order_by(t.outbox.c.id)
        .limit(limit + len(skip))
    )
    skipped = set(skip)
    found = [
        Outgoing(str(row.id), row.topic, row.key, bytes(row.payload))
        for row in conn.execute(query)
        if str(row.id) not in skipped
    ]
    return found[:limit]


def prune(conn: sa.Connection, now: datetime, erased_events_for: timedelta) -> int:
    result = conn.execute(
        t.erased_events.delete().where(t.erased_events.c.erased_at < now - erased_events_for)
    )
    return result.rowcount or 0


# -- the audit ---------------------------------------------------------------------------


def workspaces(conn: sa.Connection) -> list[str]:
    rows = conn.execute(
        sa.select(t.profiles.c.workspace).distinct().order_by(t.profiles.c.workspace)
    )
    return [row.workspace for row in rows]


def events_per_source(conn: sa.Connection, workspace: str) -> dict[str, tuple[int, int]]:
    """source → (events, profiles)."""
    e = t.events
    rows = conn.execute(
        sa.select(e.c.source, sa.func.count(), sa.func.count(sa.distinct(e.c.profile_id)))
        .where(e.c.workspace == workspace)
        .group_by(e.c.source)
    )
    return {row[0]: (int(row[1]), int(row[2])) for row in rows}


def audit_profiles(conn: sa.Connection, workspace: str, chunk: int = 2000) -> Iterator[Any]:
    """Live profiles (traits, trait writes, times), in chunks by id."""
    p = t.profiles
    after = ""
    while True:
        rows = conn.execute(
            sa.select(p.c.profile_id, p.c.traits, p.c.trait_meta, p.c.created_at, p.c.last_seen)
            .where(p.c.workspace == workspace, p.c.merged_into.is_(None), p.c.profile_id > after)
            .order_by(p.c.profile_id)
            .limit(chunk)
        ).all()
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1].profile_id


def conflict_rows(conn: sa.Connection, workspace: str) -> list[Any]:
    k = t.conflicts
    return list(
        conn.execute(
            sa.select(k).where(k.c.workspace == workspace).order_by(k.c.key, k.c.profile_id)
        )
    )


def open_candidates(conn: sa.Connection, workspace: str) -> int:
    c = t.merge_candidates
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(c).where(c.c.workspace == workspace)
        ).scalar_one()
    )
