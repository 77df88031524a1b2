"""Storage: SQLAlchemy engines and Alembic migrations, one database per service.

Each service owns its tables (DESIGN.md §2). Embedded, every service has its own SQLite
file under the data directory (WAL, foreign keys, a busy timeout); in production each
points at PostgreSQL, in its own database or sharing one (table names are prefixed by
service, and each service keeps its own Alembic version table).

Stores are plain synchronous SQLAlchemy Core: easy to read and to test. Async code calls
them through `Database.run`, which runs the function on a small thread pool so the event
loop never blocks on the database.

JSON columns are written with orjson, several times faster than the standard library on
the documents that stores rewrite often (a profile's traits and aggregates); what orjson
refuses (keys that are not strings, integers beyond 64 bits) is written by the standard
library as before. JSON has no NaN nor infinities: orjson writes them as null, where
the standard library wrote a non-standard token (which PostgreSQL refused). Reading stays
with the standard library, which keeps integers beyond 64 bits exact.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from mailwright.errors import Unavailable

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def create_engine(url: str, *, pool_size: int = 8) -> sa.Engine:
    """An engine for `url`, tuned for the backend (SQLite pragmas, PostgreSQL pool)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            json_serializer=json_text,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        # Take transaction control from pysqlite. Transactions take the write lock at BEGIN
        # (IMMEDIATE), so a read-then-write transaction can never deadlock on the lock
        # upgrade; hot read paths use `Database.reader`, whose BEGIN is deferred.
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        future=True,
        json_serializer=json_text,
    )


def json_text(value: Any) -> str:
    """A JSON column's text (see the module docstring)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    deferred = conn.get_execution_options().get("sqlite_deferred", False)
    conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def is_busy(error: BaseException) -> bool:
    """SQLite's write lock stayed taken past the busy timeout: another transaction of the
    same database is long (a segment's first fill over a large history, a big batch on a
    loaded machine). Nothing was written; the work can simply be tried again."""
    return isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error.orig)


def is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def snapshot_reads(engine: sa.Engine) -> sa.Engine:
    """The engine for reads that must agree with each other (counts of several tables
    shown side by side): each transaction reads one snapshot. PostgreSQL's default, READ
    COMMITTED, takes a new snapshot per statement, so a commit landing between two
    statements shows half of it; REPEATABLE READ keeps the first. On SQLite a deferred
    transaction in WAL mode reads one snapshot already, and takes no write lock."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine.execution_options(sqlite_deferred=True)


class Database:
    """A service's database: its engine, its migrations, and a thread pool to call it."""

    def __init__(
        self,
        url: str,
        *,
        service: str,
        migrations: Path | None = None,
        workers: int = 4,
    ) -> None:
        self.url = url
        self.service = service
        self.migrations = migrations
        self.engine = create_engine(url, pool_size=workers + 2)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"db-{service}")

    @property
    def reader(self) -> sa.Engine:
        """The engine for read-only work: on SQLite its transactions do not lock writers."""
        return self.engine.execution_options(sqlite_deferred=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def check_connection(self) -> None:
        """Fail fast with a clear message when the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as error:
            safe = make_url(self.url).render_as_string(hide_password=True)
            raise Unavailable(
                f"database of {self.service} unreachable at {safe}: {error.orig}"
            ) from error

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic `upgrade head`).

        Several processes may migrate one database at once (replicas starting together,
        the migration Job). On PostgreSQL a transaction-scoped advisory lock per service
        makes them take turns, and the later ones find the schema at head; on SQLite the
        write lock taken at BEGIN does the same.
        """
        if self.migrations is None:
            return
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": migration_lock_key(self.service)},
                )
            config = alembic_config(self.migrations, self.service, conn)
            command.upgrade(config, "head")

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": version_table(self.service)}
            )
            return context.get_current_revision()

    def head_revision(self) -> str | None:
        if self.migrations is None:
            return None
        script = ScriptDirectory.from_config(alembic_config(self.migrations, self.service))
        return script.get_current_head()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a synchronous store function on the pool, keeping the caller's context."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


def migration_lock_key(service: str) -> int:
    """The PostgreSQL advisory lock key that serialises one service's migrations."""
    digest = hashlib.sha256(f"mailwright.migrate.{service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def alembic_config(
    migrations: Path, service: str, connection: sa.Connection | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.attributes["service"] = service
    config.attributes["version_table"] = version_table(service)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def run_migrations(metadata: sa.MetaData) -> None:
    """Body of a service's Alembic `env.py`: online migrations on the given connection.

    A service's `migrations/env.py` is two lines:

        from mailwright.runtime.db import run_migrations
        from mailwright_profile.store import metadata
        run_migrations(metadata)
    """
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through mailwright.runtime.db.Database.migrate")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
