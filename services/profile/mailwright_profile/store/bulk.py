"""Many rows written with one statement, past SQLAlchemy's per-row parameter handling.

A batch of events writes thousands of rows (the history, identities, profiles, the
outbox). SQLAlchemy's `executemany` builds a dictionary of parameters for every row and
runs each value through its type's processor, which costs more than the database's own
work on those rows. Here the rows are plain tuples in a fixed column order, converted as
SQLAlchemy converts them — its type processors, the engine's JSON serializer, and for
SQLite's datetimes an equivalent of its format made in C — but only for the columns that
need it, so the stored values are the same and read back the same (`test_bulk.py`
compares them on both databases):

- SQLite: one `executemany` of a constant statement (sqlite3 keeps it prepared);
- PostgreSQL: one statement for all the rows, which reads them from `unnest` of one
  array parameter per column, sent in binary (`INSERT … SELECT … FROM unnest(…)`,
  `UPDATE … FROM unnest(…)`, `DELETE … USING unnest(…)`): a single round trip
  whatever the number of rows, and no statement text that grows with them.

`pipelined` sends bulk statements one after another without waiting for each, while
the caller goes on with other work: on PostgreSQL (with libpq
14 or newer, which psycopg's binary wheels bring) they go out in psycopg's pipeline
mode, each pushed to the server at once (libpq keeps what it queues in its own buffer
until flushed), so the server stores the rows on its own core while this process
computes the next; the statements' outcome, an error included, comes when the block
ends. The block must not use the connection otherwise (SQLAlchemy's statements read a
result at once, which pipeline mode defers). On SQLite each statement simply runs when
sent.
"""

from __future__ import annotations

import functools
import json
import select
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from mailwright_profile.traits import fields_text

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "Bulk",
    "BulkDelete",
    "BulkInsert",
    "BulkUpdate",
    "Send",
    "delete_keys",
    "pipelined",
    "pipelines",
]

_Processor = Callable[[Any], Any]


@functools.cache
def _pipelines() -> bool:
    """Whether psycopg can use pipeline mode here (libpq 14 or newer; the binary wheels
    bring their own): without it rows are written before the block, as on SQLite."""
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _processors(
    table: sa.Table, columns: Sequence[str], dialect: sa.Dialect
) -> list[tuple[int, _Processor]]:
    """(position, processor) of the columns whose values the driver cannot take as is."""
    found: list[tuple[int, _Processor]] = []
    for index, name in enumerate(columns):
        column_type = table.c[name].type
        if isinstance(column_type, sa.LargeBinary):
            continue  # bytes go through unchanged (the processor only wraps them)
        if isinstance(column_type, sa.DateTime):
            if dialect.name == "sqlite":
                found.append((index, _sqlite_datetime))
            continue  # psycopg adapts datetimes itself
        if isinstance(column_type, sa.JSON):
            # the engine's serializer, as SQLAlchemy's JSON type uses it: JSON text
            found.append((index, getattr(dialect, "_json_serializer", None) or json.dumps))
            continue
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            found.append((index, processor))
    return found


_SQLITE_DATETIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def _sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite text of a datetime ("2025-06-01 12:00:00.000000": its own
    fields, whatever its zone; SQLAlchemy formats a dictionary of them)."""
    return fields_text(_SQLITE_DATETIME, value)


def _array_type(table: sa.Table, name: str, dialect: sa.Dialect) -> str:
    column_type = table.c[name].type.dialect_impl(dialect)
    if isinstance(column_type, sa.String | sa.JSON):
        return "text"  # any length: the column checks it; JSON is cast row by row
    return column_type.compile(dialect=dialect).lower()


def _convert(
    rows: Sequence[Sequence[Any]], processors: list[tuple[int, _Processor]], width: int
) -> list[list[Any]]:
    """The rows' columns (a list per column), each converted by its processor."""
    columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
    for index, processor in processors:
        columns[index] = _converted(columns[index], processor)
    return columns


def _converted(values: list[Any], processor: _Processor) -> list[Any]:
    out: list[Any] = []
    last: Any = None
    done: Any = None
    for value in values:
        if value is None:
            out.append(None)
        elif value is last:  # a batch repeats some values (its time): convert them once
            out.append(done)
        else:
            last, done = value, processor(value)
            out.append(done)
    return out


class Bulk(ABC):
    """Rows as tuples in `_order()`, written by one statement built once per dialect."""

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        self._prepared: dict[str, tuple[str, list[tuple[int, _Processor]]]] = {}

    def _statement(self, dialect: sa.Dialect) -> tuple[str, list[tuple[int, _Processor]]]:
        held = self._prepared.get(dialect.name)
        if held is None:
            held = (self._sql(dialect), _processors(self.table, self._order(), dialect))
            self._prepared[dialect.name] = held
        return held

    def _order(self) -> Sequence[str]:
        return self.columns

    @abstractmethod
    def _sql(self, dialect: sa.Dialect) -> str:
        """The statement taking the rows' values in `_order()`."""

    def _quote(self, dialect: sa.Dialect, name: str) -> str:
        return str(dialect.identifier_preparer.quote(name))

    def _unnest(self, dialect: sa.Dialect, names: Sequence[str]) -> str:
        """`unnest(…) AS v(v0, v1, …)` of one array parameter per column, in binary
        format (no quoting of the values); JSON goes as text arrays, cast row by row
        (`_value`): a jsonb array of whole profile documents is slower to build."""
        arrays = ", ".join(f"%b::{_array_type(self.table, n, dialect)}[]" for n in names)
        aliases = ", ".join(f"v{i}" for i in range(len(names)))
        return f"unnest({arrays}) AS v({aliases})"

    def _value(self, dialect: sa.Dialect, names: Sequence[str], name: str) -> str:
        """The unnested value of column `name` (see `_unnest`)."""
        value = f"v.v{list(names).index(name)}"
        column_type = self.table.c[name].type
        if isinstance(column_type, sa.JSON):
            kind = column_type.dialect_impl(dialect).compile(dialect=dialect).lower()
            return f"{value}::{kind}"
        return value

    def __call__(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        sql, _ = self._statement(conn.dialect)
        columns = self._columns(conn.dialect, rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(sql, tuple(columns))
        else:
            conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

    def _columns(self, dialect: sa.Dialect, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        _, processors = self._statement(dialect)
        return _convert(rows, processors, len(self._order()))


def pipelines(conn: sa.Connection) -> bool:
    """Whether `pipelined` sends statements without waiting on this connection."""
    return conn.dialect.name == "postgresql" and _pipelines()


Send = Callable[[Bulk, Sequence[Sequence[Any]]], None]


@contextmanager
def pipelined(conn: sa.Connection) -> Iterator[Send]:
    """Bulk statements written one after another without waiting for each: the block
    gets `send(bulk, rows)`, which on PostgreSQL (pipeline mode, see the module
    docstring) pushes the statement to the server and returns at once, so that the
    server stores the rows while the block goes on; the outcome of every statement sent,
    an error included, comes when the block ends. The block must not use the connection
    otherwise. Elsewhere (SQLite, a libpq without pipeline mode) `send` writes at once.
    """
    if not pipelines(conn):
        yield lambda bulk, rows: bulk(conn, rows)
        return
    driver = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    errors = conn.dialect.loaded_dbapi.Error
    sent: list[str] = []
    try:
        with driver.pipeline(), driver.cursor() as cursor:
            pgconn = driver.pgconn

            def send(bulk: Bulk, rows: Sequence[Sequence[Any]]) -> None:
                if not rows:
                    return
                sql, _ = bulk._statement(conn.dialect)
                cursor.execute(sql, tuple(bulk._columns(conn.dialect, rows)))
                sent.append(sql)
                while pgconn.flush() == 1:  # 1: more to send once the socket takes it
                    select.select([], [pgconn.socket], [])

            yield send
    except errors as error:  # raised here, past SQLAlchemy: wrapped as it wraps them
        statement = sent[-1] if len(sent) == 1 else "; ".join(sent)
        raise sa.exc.DBAPIError.instance(statement, None, error, errors) from error


class BulkInsert(Bulk):
    """`INSERT` of rows given as tuples in `columns` order."""

    def _sql(self, dialect: sa.Dialect) -> str:
        table = self._quote(dialect, self.table.name)
        names = ", ".join(self._quote(dialect, c) for c in self.columns)
        if dialect.name == "postgresql":
            values = ", ".join(self._value(dialect, self.columns, c) for c in self.columns)
            source = self._unnest(dialect, self.columns)
            return f"INSERT INTO {table} ({names}) SELECT {values} FROM {source}"
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {table} ({names}) VALUES ({marks})"


class BulkUpdate(Bulk):
    """`UPDATE` of the rows named by `keys`, setting `columns`; rows are given as tuples
    of the keys' values then the columns' values."""

    def __init__(self, table: sa.Table, keys: Sequence[str], columns: Sequence[str]) -> None:
        super().__init__(table, columns)
        self.keys = tuple(keys)

    def _order(self) -> Sequence[str]:
        return (*self.keys, *self.columns)

    def _sql(self, dialect: sa.Dialect) -> str:
        table = self._quote(dialect, self.table.name)

        def q(name: str) -> str:
            return self._quote(dialect, name)

        if dialect.name == "postgresql":
            order = self._order()
            sets = ", ".join(f"{q(c)} = {self._value(dialect, order, c)}" for c in self.columns)
            where = " AND ".join(
                f"{table}.{q(k)} = {self._value(dialect, order, k)}" for k in self.keys
            )
            source = self._unnest(dialect, order)
            return f"UPDATE {table} SET {sets} FROM {source} WHERE {where}"
        # numbered parameters (?1 is the first key) take the row in `_order()` as it is
        position = {name: i for i, name in enumerate(self._order(), start=1)}
        sets = ", ".join(f"{q(c)} = ?{position[c]}" for c in self.columns)
        where = " AND ".join(f"{q(k)} = ?{position[k]}" for k in self.keys)
        return f"UPDATE {table} SET {sets} WHERE {where}"


class BulkDelete(Bulk):
    """`DELETE` of the rows whose `columns` equal one of the given tuples of values."""

    def _sql(self, dialect: sa.Dialect) -> str:
        table = self._quote(dialect, self.table.name)
        if dialect.name == "postgresql":
            where = " AND ".join(
                f"{table}.{self._quote(dialect, c)} = {self._value(dialect, self.columns, c)}"
                for c in self.columns
            )
            return f"DELETE FROM {table} USING {self._unnest(dialect, self.columns)} WHERE {where}"
        where = " AND ".join(f"{self._quote(dialect, c)} = ?" for c in self.columns)
        return f"DELETE FROM {table} WHERE {where}"


def delete_keys(conn: sa.Connection, table: sa.Table, column: str, values: Sequence[Any]) -> None:
    """Delete the rows whose `column` is one of `values` (one statement on PostgreSQL, a
    prepared statement run for each value on SQLite)."""
    if not values:
        return
    dialect = conn.dialect
    name = dialect.identifier_preparer.quote(table.name)
    key = dialect.identifier_preparer.quote(column)
    if dialect.name == "postgresql":
        kind = _array_type(table, column, dialect)
        conn.exec_driver_sql(f"DELETE FROM {name} WHERE {key} = ANY(%b::{kind}[])", (list(values),))
    else:
        conn.exec_driver_sql(f"DELETE FROM {name} WHERE {key} = ?", [(v,) for v in values])
