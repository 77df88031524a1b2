"""Fixtures of the profile service's tests: a migrated store on SQLite or PostgreSQL, a
clock, and a way to apply events as the consumer does."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from mailwright.common.v1 import event_pb2
from mailwright.runtime.db import Database
from mailwright_profile import convert
from mailwright_profile.app import MIGRATIONS
from mailwright_profile.events import read_event
from mailwright_profile.simulate import Clock
from mailwright_profile.store import BatchResult, ProfileStore


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_store(url: str) -> ProfileStore:
    db = Database(url, service="profile", migrations=MIGRATIONS)
    db.migrate()
    return ProfileStore(db, convert.encode_changed, convert.encode_deleted, convert.email_hashes)


@pytest.fixture
def store(database_url: str) -> Iterator[ProfileStore]:
    """A migrated store, on SQLite and on PostgreSQL."""
    made = make_store(database_url)
    yield made
    made.db.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[ProfileStore]:
    made = make_store(sqlite_url)
    yield made
    made.db.close()


@pytest.fixture
def another_sqlite_store(tmp_path: Path) -> Iterator[ProfileStore]:
    """A second SQLite store beside `sqlite_store`, for what must not differ between two."""
    made = make_store(f"sqlite:///{tmp_path / 'another.db'}")
    yield made
    made.db.close()


@pytest.fixture
def apply(store: ProfileStore, clock: Clock) -> Callable[..., BatchResult]:
    """apply(*events) applies events in one batch, as the consumer does."""

    def run(*events: event_pb2.Event, batch: Sequence[event_pb2.Event] = ()) -> BatchResult:
        chosen = list(events) or list(batch)
        return store.apply_batch([read_event(e) for e in chosen], clock())

    return run
