"""Helpers shared by delivery's queries: aware times, insert-or-ignore, claims."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailwright_delivery.records import OutboxMessage
from mailwright_delivery.store.tables import outbox


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def must_aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def insert_ignore(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    conflict: Sequence[str],
) -> int:
    """Insert `rows`, skipping those that collide on `conflict`; how many went in."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        # Multi-row VALUES statements; RETURNING counts the rows actually inserted.
        inserted = 0
        for start in range(0, len(rows), 1000):
            pg = (
                postgresql.insert(table)
                .values([dict(row) for row in rows[start : start + 1000]])
                .on_conflict_do_nothing(index_elements=list(conflict))
                .returning(sa.literal(1))
            )
            inserted += len(conn.execute(pg).all())
        return inserted
    lite = _sqlite_insert_ignore(table, tuple(conflict))
    # sqlite3's executemany counts the rows it changed over the whole batch.
    return max(conn.execute(lite, [dict(row) for row in rows]).rowcount or 0, 0)


@functools.cache
def _sqlite_insert_ignore(table: sa.Table, conflict: tuple[str, ...]) -> sa.Insert:
    # Built once per table: building a statement costs more than inserting a few rows.
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(conflict))


_OUTBOX_INSERT = outbox.insert()


def add_outbox(conn: sa.Connection, messages: Sequence[OutboxMessage], now: datetime) -> None:
    if messages:
        conn.execute(
            _OUTBOX_INSERT,
            [
                {
                    "topic": m.topic,
                    "key": m.key,
                    "payload": m.payload,
                    "created_at": now,
                    "trace_parent": m.trace_parent,
                }
                for m in messages
            ],
        )


def lock_for_claim(select: sa.Select[Any], conn: sa.Connection) -> sa.Select[Any]:
    """Rows a claim picks: on PostgreSQL skip the ones another replica has locked; on
    SQLite the write transaction (BEGIN IMMEDIATE) already serialises claims."""
    if conn.dialect.name == "postgresql":
        return select.with_for_update(skip_locked=True)
    return select


def nothing_to_do(engine: sa.Engine, query: sa.Select[Any]) -> bool:
    """A read-only look before a claim: on SQLite a claim takes the write lock, and idle
    workers polling would hold it most of the time."""
    with engine.execution_options(sqlite_deferred=True).connect() as conn:
        return conn.execute(query.limit(1)).first() is None
