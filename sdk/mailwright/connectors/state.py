"""Where incremental syncs keep their cursors, so a sync resumes where it stopped.

One row per (workspace, connector, stream): the opaque cursor of the last batch whose
events ingest accepted. `mailwright connectors sync` keeps it in the `connectors` database
of the deployment (`Settings.database_url_for("connectors")`: a SQLite file under the data
directory by default, or PostgreSQL), in the table `connectors_cursors`:

    store = CursorStore.open(settings.database_url_for("connectors"))
    key = CursorKey("acme", "shopify", "orders")
    cursor = await store.load(key)          # None: never synced
    await store.save(key, batch.cursor)     # after the batch's events were accepted
    store.close()

The table is created on open (it is the SDK's only table, with no history to migrate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mailwright.runtime.db import Database

metadata = sa.MetaData()

cursors = sa.Table(
    "connectors_cursors",
    metadata,
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("connector", sa.String(40), primary_key=True),
    sa.Column("stream", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

MAX_CURSOR_BYTES = 64 * 1024


@dataclass(frozen=True)
class CursorKey:
    """Which sync a cursor belongs to."""

    workspace: str
    connector: str
    stream: str

    def __post_init__(self) -> None:
        limits = {"workspace": 64, "connector": 40, "stream": 64}
        for name, limit in limits.items():
            value = getattr(self, name)
            if not value or len(value) > limit:
                raise ValueError(f"{name} must be 1 to {limit} characters")


@dataclass(frozen=True)
class StoredCursor:
    key: CursorKey
    cursor: str | None
    updated_at: datetime


class CursorStore:
    """Cursors of incremental syncs in a SQL database (SQLite or PostgreSQL)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        metadata.create_all(database.engine, checkfirst=True)

    @classmethod
    def open(cls, url: str) -> CursorStore:
        """A store in the database at `url` (a SQLAlchemy URL); creates its table."""
        return cls(Database(url, service="connectors", workers=2))

    async def load(self, key: CursorKey) -> str | None:
        """The cursor saved for `key`, or None when the stream was never synced."""
        return await self.database.run(self._load, key)

    async def save(self, key: CursorKey, cursor: str | None) -> None:
        """Remember `cursor` for `key` (None forgets where it was: the next sync is full)."""
        if cursor is not None and len(cursor.encode()) > MAX_CURSOR_BYTES:
            raise ValueError(f"cursor of {key.connector}/{key.stream} is larger than 64 KiB")
        await self.database.run(self._save, key, cursor)

    async def clear(self, key: CursorKey) -> bool:
        """Forget `key`'s cursor; True when there was one."""
        return await self.database.run(self._clear, key)

    async def entries(self, workspace: str | None = None) -> list[StoredCursor]:
        """Every stored cursor (of one workspace), by workspace, connector and stream."""
        return await self.database.run(self._entries, workspace)

    def close(self) -> None:
        self.database.close()

    # -- synchronous bodies, run on the database's thread pool -------------------------

    def _where(self, key: CursorKey) -> sa.ColumnElement[bool]:
        return sa.and_(
            cursors.c.workspace == key.workspace,
            cursors.c.connector == key.connector,
            cursors.c.stream == key.stream,
        )

    def _load(self, key: CursorKey) -> str | None:
        with self.database.reader.connect() as conn:
            value = conn.execute(sa.select(cursors.c.cursor).where(self._where(key))).scalar()
        return value if isinstance(value, str) else None

    def _save(self, key: CursorKey, cursor: str | None) -> None:
        values = {
            "workspace": key.workspace,
            "connector": key.connector,
            "stream": key.stream,
            "cursor": cursor,
            "updated_at": datetime.now(UTC),
        }
        dialect = self.database.dialect
        insert = postgresql.insert(cursors) if dialect == "postgresql" else sqlite.insert(cursors)
        statement = insert.values(**values).on_conflict_do_update(
            index_elements=[cursors.c.workspace, cursors.c.connector, cursors.c.stream],
            set_={"cursor": cursor, "updated_at": values["updated_at"]},
        )
        with self.database.engine.begin() as conn:
            conn.execute(statement)

    def _clear(self, key: CursorKey) -> bool:
        with self.database.engine.begin() as conn:
            return conn.execute(sa.delete(cursors).where(self._where(key))).rowcount > 0

    def _entries(self, workspace: str | None) -> list[StoredCursor]:
        query = sa.select(cursors).order_by(
            cursors.c.workspace, cursors.c.connector, cursors.c.stream
        )
        if workspace is not None:
            query = query.where(cursors.c.workspace == workspace)
        with self.database.reader.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredCursor(
                CursorKey(row.workspace, row.connector, row.stream),
                row.cursor,
                _utc(row.updated_at),
            )
            for row in rows
        ]


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
