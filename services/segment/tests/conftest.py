"""Fixtures of the segment service's tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from mailwright.runtime.db import create_engine
from mailwright_segment.store import sqlfuncs
from mailwright_segment.store.tables import metadata


def _load_helper(name: str) -> None:
    """Make a helper module of this directory importable (tests run in importlib mode)."""
    if name in sys.modules:
        return
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


_load_helper("agreement")
_load_helper("upstream")

from upstream import Upstream, running, settings_for  # noqa: E402


@dataclass
class Service:
    upstream: Upstream
    stub: Any
    token: str


@pytest.fixture
async def service(tmp_path: Path, database_url: str) -> AsyncIterator[Service]:
    """The segment service alone on an in-process platform (SQLite and PostgreSQL), with a
    fake upstream publishing on its bus and a client for workspace `acme`."""
    async with running(settings_for(tmp_path, database_url)) as upstream:
        yield _service(upstream)


@pytest.fixture
async def sqlite_service(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Service]:
    """The same, on SQLite only (for tests of input handling)."""
    async with running(settings_for(tmp_path, sqlite_url)) as upstream:
        yield _service(upstream)


@pytest.fixture
async def redis_service(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_namespace: str
) -> AsyncIterator[Service]:
    """The production shape: PostgreSQL and Redis Streams."""
    settings = settings_for(tmp_path, postgres_url, bus_url=redis_url, namespace=redis_namespace)
    async with running(settings) as upstream:
        yield _service(upstream)


def _service(upstream: Upstream) -> Service:
    runtime = upstream.platform.runtime
    assert runtime is not None
    token = runtime.authority.issue("acme", ["segments:read", "segments:write"])
    return Service(upstream, upstream.platform.clients(token).segment, token)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on a fresh database (SQLite and PostgreSQL) with the segment tables."""
    created = create_engine(database_url)
    sqlfuncs.prepare(created)
    metadata.create_all(created)
    yield created
    created.dispose()
