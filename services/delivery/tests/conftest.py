"""Fixtures of the delivery tests: a migrated store on SQLite and PostgreSQL, a local
SMTP sink, and clients of the `platform` a test module starts."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import mailwright_delivery
from mailwright.runtime.clients import Clients
from mailwright.runtime.db import Database
from mailwright.runtime.server import Platform
from mailwright_delivery.store import DeliveryStore
from mailwright_smtp.sink import SmtpSink

MIGRATIONS = Path(mailwright_delivery.__file__).resolve().parent / "migrations"

# The helpers beside the tests (fake neighbours, the harness) import by their own names.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def store(database_url: str) -> Iterator[DeliveryStore]:
    db = Database(database_url, service="delivery", migrations=MIGRATIONS)
    db.migrate()
    try:
        yield DeliveryStore(db.engine)
    finally:
        db.close()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[SmtpSink]:
    """A local SMTP sink writing to `tmp_path/outbox` (test_pipeline.py has its own, which
    also gives the scripted writer)."""
    from delivery_harness import start_sink  # beside the tests: importable once on the path

    started, _ = await start_sink(tmp_path / "outbox")
    yield started
    await started.stop()


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[Clients]:
    made = platform.clients()
    yield made
    await made.close()
