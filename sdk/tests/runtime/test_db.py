"""A SQLite write lock held past the busy timeout is told apart from other errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mailwright.runtime.db import create_engine, is_busy, snapshot_reads


def test_a_lock_held_past_the_busy_timeout_is_busy_and_other_errors_are_not(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'busy.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    holder = engine.connect()
    holder.begin()  # BEGIN IMMEDIATE: the write lock
    try:
        waiter = engine.connect()
        # Outside a transaction: a statement through SQLAlchemy would begin one.
        waiter.connection.driver_connection.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
        with pytest.raises(sa.exc.OperationalError) as locked:
            waiter.begin()
        assert is_busy(locked.value)
        waiter.close()
    finally:
        holder.rollback()
        holder.close()
    with engine.connect() as conn, pytest.raises(sa.exc.OperationalError) as wrong:
        conn.exec_driver_sql("SELECT nothing FROM nowhere")
    assert not is_busy(wrong.value)
    engine.dispose()


def test_snapshot_reads_see_one_commit_for_the_whole_transaction(database_url: str) -> None:
    """A commit landing between two reads of a snapshot transaction is not seen by the
    second (on PostgreSQL's default READ COMMITTED it would be)."""
    engine = create_engine(database_url)
    table = sa.Table("snapshot_probe", sa.MetaData(), sa.Column("n", sa.Integer))
    try:
        table.create(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"n": 1}])
        count = sa.select(sa.func.count()).select_from(table)
        with snapshot_reads(engine).begin() as reading:
            before = reading.execute(count).scalar_one()
            with engine.begin() as writing:
                writing.execute(table.insert(), [{"n": 2}])
            after = reading.execute(count).scalar_one()
        assert (before, after) == (1, 1)
        with engine.connect() as conn:
            assert conn.execute(count).scalar_one() == 2
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()
