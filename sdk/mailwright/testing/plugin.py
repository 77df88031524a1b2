"""pytest fixtures for real backing servers: SQLite files, fresh PostgreSQL databases, Redis.

- `sqlite_url`: a SQLite file in the test's temporary directory.
- `postgres_url`: a fresh PostgreSQL database, dropped after the test.
- `database_url`: parametrised over both, so a store test runs on SQLite and PostgreSQL.
- `redis_url` and `redis_namespace`: the Redis server and a key prefix of the test's own,
  whose keys are deleted afterwards.

For connector authors (see docs/plugins.md):

- `fake_server`: start an ASGI app as a fake provider on a local port (`testing.fakes`);
- `recorded_waits`: the connector HTTP helper's waits recorded instead of slept;
- `start_mailwright` and `mailwright_platform`: services running in the test's process
  (`testing.platform`).

A server that does not answer skips the test, unless `MAILWRIGHT_TEST_REQUIRE_SERVICES=1`
(set by CI), in which case the test fails.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mailwright.testing.servers import POSTGRES_ADMIN_URL, REDIS_URL, services_required


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable: {error}"
    if services_required():
        pytest.fail(message + " (MAILWRIGHT_TEST_REQUIRE_SERVICES is set)", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    admin = _admin_engine()
    name = f"mwt_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        admin.dispose()
        _unavailable("PostgreSQL", error)
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as error:
        _unavailable("Redis", error)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    namespace = f"mwt:{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# The bus and key-value fixtures, each on memory and Redis: bus, bus_target, kv, kv_target,
# fast_consumer_options.
from mailwright.testing.bus import (  # noqa: E402, F401
    bus,
    bus_target,
    fast_consumer_options,
    kv,
    kv_target,
)

# -- the connector kit: fake provider servers, recorded waits, Mailwright in-process ------
# Imported when a test asks for them, so that loading this plugin stays cheap.


@pytest.fixture
def fake_server() -> Iterator[Callable[..., Any]]:
    """Start an ASGI app as a fake provider: `server = fake_server(app)` (a FakeServer on
    127.0.0.1, port 0); every server is stopped after the test."""
    from mailwright.testing.fakes import fake_servers

    with fake_servers() as start:
        yield start


@pytest.fixture
def recorded_waits(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The waits of `mailwright.connectors.http` (retries, Retry-After, pacing), recorded
    in a `RecordedWaits` instead of slept."""
    from mailwright.testing.fakes import record_waits

    return record_waits(monkeypatch)


@pytest_asyncio.fixture
async def start_mailwright(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start services in this process: `running = await start_mailwright(["ingest"])`."""
    from mailwright.testing.platform import mailwright_starter

    async with mailwright_starter(tmp_path) as start:
        yield start


@pytest_asyncio.fixture
async def mailwright_platform(start_mailwright: Callable[..., Any]) -> Any:
    """Ingest running in this process on a port of its own (a `RunningMailwright`)."""
    return await start_mailwright(("ingest",))
