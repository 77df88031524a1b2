"""A SQLite write lock held past the busy timeout is told apart from other errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from mailwright.runtime.db import create_engine, is_busy


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
