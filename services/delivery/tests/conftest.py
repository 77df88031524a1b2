"""Fixtures of the delivery tests: a migrated store on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import mailwright_delivery
from mailwright.runtime.db import Database
from mailwright_delivery.store import DeliveryStore

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
