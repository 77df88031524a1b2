"""Bulk writes store exactly what SQLAlchemy's own statements store (store/bulk.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from mailwright_profile.store import ProfileStore
from mailwright_profile.store import tables as t
from mailwright_profile.store.bulk import (
    BulkDelete,
    BulkInsert,
    BulkUpdate,
    _sqlite_datetime,
    delete_keys,
    pipelined,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)

EVENT_COLUMNS = [c.name for c in t.events.columns]
PROFILE_COLUMNS = [c.name for c in t.profiles.columns if c.name != "scores"]


def _events(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "workspace": "ws",
            "message_id": f"{prefix}{i}",
            "occurred_at": NOW + timedelta(seconds=i, microseconds=i),
            "profile_id": "p1",
            "home_id": "p1",
            "type": i,
            "name": "Order Completed" if i else "",
            "source": "web",
            "received_at": NOW,
            "payload": bytes([0, i, 255]),
        }
        for i in range(3)
    ]


def _profiles(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "workspace": "ws",
            "profile_id": f"{prefix}{i}",
            "root_id": f"{prefix}{i}",
            "merged_into": None,
            "version": i,
            "created_at": NOW,
            "updated_at": NOW,
            "first_seen": None if i == 0 else NOW - timedelta(days=i),
            "last_seen": NOW.astimezone(timezone(timedelta(hours=2))),
            "traits": {"name": "Zoë", "tags": [1, 2.5, None], "nested": {"a": True}},
            "trait_meta": {},
            "computed": {"orders_count": i},
            "aggregates": {},
            "consents": {},
            "refresh_at": None,
        }
        for i in range(3)
    ]


def _stored(store: ProfileStore, table: sa.Table, prefix: str) -> list[tuple[Any, ...]]:
    """Rows whose key starts with `prefix`, as SQLAlchemy reads them and as stored."""
    key = table.c.message_id if table is t.events else table.c.profile_id
    with store.db.engine.connect() as conn:
        typed = conn.execute(sa.select(table).where(key.like(f"{prefix}%"))).all()
        name = key.name
        raw = conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY {name}").all()
    kept = [tuple(row) for row in raw if str(row._mapping[name]).startswith(prefix)]

    def unprefixed(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            v[len(prefix) :] if isinstance(v, str) and v.startswith(prefix) else v for v in row
        )

    return sorted(unprefixed(tuple(row)) for row in typed) + [unprefixed(row) for row in kept]


def test_bulk_writes_store_what_sqlalchemy_stores(store: ProfileStore) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(t.events.insert(), _events("a"))
        conn.execute(t.profiles.insert(), _profiles("a"))
        conn.execute(
            t.profiles.update()
            .where(t.profiles.c.workspace == "ws", t.profiles.c.profile_id == "a1")
            .values(version=7, traits={"b": None}, refresh_at=NOW)
        )
        BulkInsert(t.events, EVENT_COLUMNS)(
            conn, [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("b")]
        )
        BulkInsert(t.profiles, PROFILE_COLUMNS)(
            conn, [tuple(row[c] for c in PROFILE_COLUMNS) for row in _profiles("b")]
        )
        update = BulkUpdate(
            t.profiles, ["workspace", "profile_id"], ["version", "traits", "refresh_at"]
        )
        update(conn, [("ws", "b1", 7, {"b": None}, NOW)])
        update(conn, [])  # nothing to write: no statement
    for table in (t.events, t.profiles):
        first, second = _stored(store, table, "a"), _stored(store, table, "b")
        assert first == second
        assert len(first) == 6


def test_delete_keys(store: ProfileStore) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(t.profiles.insert(), _profiles("c"))
        delete_keys(conn, t.profiles, "profile_id", ["c0", "c2", "missing"])
        delete_keys(conn, t.profiles, "profile_id", [])
        left = conn.execute(
            sa.select(t.profiles.c.profile_id).where(t.profiles.c.profile_id.like("c%"))
        ).scalars()
        assert list(left) == ["c1"]


def test_bulk_delete_removes_the_rows_matching_a_tuple(store: ProfileStore) -> None:
    with store.db.engine.begin() as conn:
        conn.execute(t.profiles.insert(), _profiles("d"))
        delete = BulkDelete(t.profiles, ["workspace", "profile_id"])
        delete(conn, [("ws", "d0"), ("other", "d1"), ("ws", "d2"), ("ws", "missing")])
        delete(conn, [])
        left = conn.execute(
            sa.select(t.profiles.c.profile_id).where(t.profiles.c.profile_id.like("d%"))
        ).scalars()
        assert list(left) == ["d1"]


def test_statements_sent_in_a_pipeline_run_in_order(store: ProfileStore) -> None:
    """`pipelined`: each statement sees what the ones sent before it wrote; all are
    stored once the block ends, in the transaction that goes on after it."""
    insert = BulkInsert(t.events, EVENT_COLUMNS)
    delete = BulkDelete(t.events, ["workspace", "message_id"])
    with store.db.engine.begin() as conn:
        with pipelined(conn) as send:
            send(insert, [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")])
            send(delete, [("ws", "a1")])
            send(insert, [])  # nothing to write: no statement
            send(insert, [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("b")[:1]])
        conn.execute(t.events.delete().where(t.events.c.message_id == "a2"))
    assert _history(store) == {"a0", "b0"}


def test_a_refused_statement_in_a_pipeline_fails_the_whole_transaction(
    store: ProfileStore,
) -> None:
    insert = BulkInsert(t.events, EVENT_COLUMNS)
    rows = [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")]

    def write() -> None:
        with store.db.engine.begin() as conn, pipelined(conn) as send:
            send(insert, rows[:2])
            send(insert, rows[1:])  # a1 again
            send(insert, [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("b")])

    with pytest.raises(sa.exc.IntegrityError):
        write()
    assert _history(store) == set()
    with store.db.engine.begin() as conn, pipelined(conn) as send:
        send(insert, rows)
    assert _history(store) == {"a0", "a1", "a2"}


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 1),
        timezones=st.one_of(st.none(), st.just(UTC), st.just(timezone(timedelta(hours=2)))),
    )
)
def test_sqlite_datetime_text_is_sqlalchemys(moment: datetime) -> None:
    dialect = sqlite.dialect()
    processor = t.events.c.occurred_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    assert _sqlite_datetime(moment) == processor(moment)


def _history(store: ProfileStore) -> set[str]:
    with store.db.engine.connect() as conn:
        return {row.message_id for row in conn.execute(sa.select(t.events.c.message_id))}


def test_rows_sent_are_stored_while_the_block_runs(store: ProfileStore) -> None:
    """The block runs while the rows sent are written (on PostgreSQL, in pipeline
    mode); once it ends they are there, in the same transaction as what follows."""
    bulk = BulkInsert(t.events, EVENT_COLUMNS)
    rows = [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")]
    with store.db.engine.begin() as conn:
        with pipelined(conn) as send:
            send(bulk, rows)
            made = sum(range(1000))  # work of the caller's own, no database
        bulk(conn, [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("b")])
    assert made == 499500
    assert _history(store) == {"a0", "a1", "a2", "b0", "b1", "b2"}


def test_a_failed_pipelined_write_fails_the_transaction_and_the_connection_goes_on(
    store: ProfileStore,
) -> None:
    """A row the database refuses (a duplicate key) fails the block's transaction when
    the block ends at the latest; nothing of it is stored and the next transaction on
    the same engine works."""
    bulk = BulkInsert(t.events, EVENT_COLUMNS)
    twice = [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")[:1] * 2]
    with (
        pytest.raises(sa.exc.IntegrityError),
        store.db.engine.begin() as conn,
        pipelined(conn) as send,
    ):
        send(bulk, twice)
    assert _history(store) == set()
    with store.db.engine.begin() as conn:
        bulk(conn, twice[:1])
    assert _history(store) == {"a0"}


def test_an_error_in_the_block_wins_over_the_writes_sent(store: ProfileStore) -> None:
    bulk = BulkInsert(t.events, EVENT_COLUMNS)
    rows = [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")]

    def write() -> None:
        with store.db.engine.begin() as conn, pipelined(conn) as send:
            send(bulk, rows)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        write()
    assert _history(store) == set()


def test_without_pipeline_mode_rows_are_written_before_the_block(
    store: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A libpq older than 14 has no pipeline mode: `send` then writes at once, as on
    SQLite, and the outcome is the same."""
    from mailwright_profile.store import bulk as module

    monkeypatch.setattr(module, "_pipelines", lambda: False)
    bulk = BulkInsert(t.events, EVENT_COLUMNS)
    rows = [tuple(row[c] for c in EVENT_COLUMNS) for row in _events("a")]
    with store.db.engine.begin() as conn, pipelined(conn) as send:
        send(bulk, rows)
    assert _history(store) == {"a0", "a1", "a2"}
