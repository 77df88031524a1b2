"""The statements the consumer runs for every change, straight on the driver's cursor.

Applying one change takes a dozen small statements (the person's row, traits, events,
hits, day buckets, email facts). Through SQLAlchemy each of them builds an execution
context, runs every parameter through its column type, renders expanding `IN` lists anew
and wraps a result: catching up on the demo's history, that cost several times the
database's own work (py-spy: 8 of the 11.6 s in `MembershipEngine.apply_many` were in
`Connection.execute`, 1.2 s in the driver).

So these statements are plain SQL that SQLite and PostgreSQL read alike, written with `?`
placeholders (`%s` for psycopg), run on the connection's own DBAPI connection inside its
transaction, with the values converted as the columns' types convert them
(`Number`: a double on SQLite, a `Decimal` on PostgreSQL; the other columns take the
values as they are). Identifiers are quoted, so that column names such as "key" or
"position" read the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

import sqlalchemy as sa

Row = Sequence[Any]


def marks(count: int) -> str:
    """`?, ?, …`: `count` placeholders."""
    return ", ".join("?" * count)


def rows_of(width: int, count: int) -> str:
    """`(?, ?), (?, ?), …`: `count` rows of `width` placeholders (a multi-row VALUES)."""
    one = f"({marks(width)})"
    return ", ".join([one] * count)


@cache
def _for_driver(dialect: str, text: str) -> str:
    return text.replace("?", "%s") if dialect == "postgresql" else text


def _cursor(conn: sa.Connection, text: str) -> tuple[Any, str]:
    return conn.connection.dbapi_connection.cursor(), _for_driver(conn.dialect.name, text)  # type: ignore[union-attr]


def execute(conn: sa.Connection, text: str, params: Row = ()) -> list[tuple[Any, ...]]:
    """Run one statement; its rows (none for a statement without RETURNING or SELECT)."""
    cursor, sql = _cursor(conn, text)
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []
    finally:
        cursor.close()


def execute_many(conn: sa.Connection, text: str, rows: Sequence[Row]) -> None:
    """Run one statement for each row of parameters (no result)."""
    if not rows:
        return
    cursor, sql = _cursor(conn, text)
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def number_of(conn: sa.Connection) -> Callable[[Decimal | None], Any]:
    """How a `Number` column takes a value on this connection's database."""
    return _to_double if conn.dialect.name == "sqlite" else _as_is


def _to_double(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _as_is(value: Decimal | None) -> Decimal | None:
    return value


def decimal_of(value: Any) -> Decimal | None:
    """A `Number` column's value as read back (SQLite's double by its repr)."""
    if value is None:
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)
