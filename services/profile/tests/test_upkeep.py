"""Schema and upkeep: migrations, monthly partitions, time-driven refresh, the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.db import Database, alembic_config
from mailwright_profile.app import MIGRATIONS
from mailwright_profile.identity import Identity
from mailwright_profile.outbox import Outbox
from mailwright_profile.simulate import Clock, page, track
from mailwright_profile.store import ProfileStore

NOW = Clock().now


Apply = Callable[..., Any]


def test_the_first_schema_upgrades_with_its_data(database_url: str) -> None:
    db = Database(database_url, service="profile", migrations=MIGRATIONS)
    with db.engine.begin() as conn:
        command.upgrade(alembic_config(MIGRATIONS, "profile", conn), "b5e76b5cb93c")
    with db.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO profile_profiles (workspace, profile_id, version, created_at, "
                "updated_at) VALUES ('acme', 'p1', 3, :t, :t)"
            ),
            {"t": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO profile_identities VALUES "
                "('acme', 'user_id', 'u1', 'p1', 'http', :t, 'm1')"
            ),
            {"t": NOW},
        )
        conn.execute(
            sa.text(
                "INSERT INTO profile_traits VALUES ('acme', 'p1', 'plan', '\"pro\"', :t, 'http')"
            ),
            {"t": NOW},
        )
        conn.execute(
            sa.text("INSERT INTO profile_events VALUES ('acme', 'm1', 'p1', 2, '', :t, :p)"),
            {"t": NOW, "p": b"\x0a\x04acme"},
        )
    db.migrate()
    store = ProfileStore(db, *_encoders())
    view = store.lookup("acme", Identity("user_id", "u1"))
    assert view is not None
    assert (view.profile_id, view.traits) == ("p1", {"plan": "pro"})
    assert [r.message_id for r in store.list_events("acme", "p1", [], None, None, None, 9)] == [
        "m1"
    ]
    with db.engine.begin() as conn:
        command.downgrade(alembic_config(MIGRATIONS, "profile", conn), "b5e76b5cb93c")
    with db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT key, source FROM profile_traits")).all()
    assert [tuple(r) for r in rows] == [("plan", "http")]
    db.close()


def _encoders() -> tuple[Any, ...]:
    from mailwright_profile import convert

    return convert.encode_changed, convert.encode_deleted, convert.email_hashes


@pytest.fixture
def pg_store(postgres_url: str) -> Any:
    from mailwright_profile import convert

    db = Database(postgres_url, service="profile", migrations=MIGRATIONS)
    db.migrate()
    store = ProfileStore(db, convert.encode_changed, convert.encode_deleted, convert.email_hashes)
    yield store
    db.close()


def test_monthly_partitions_are_created_ahead_and_take_their_rows_from_the_default(
    pg_store: ProfileStore, clock: Clock
) -> None:
    from mailwright_profile.events import read_event

    assert pg_store.partitions() == ["profile_events_default"]
    july = datetime(2025, 7, 15, tzinfo=UTC)
    pg_store.apply_batch(
        [read_event(page(anonymous_id="a1", message_id="early", at=july))], clock()
    )
    created = pg_store.ensure_partitions(date(2025, 6, 1), date(2025, 8, 1))
    assert created == ["profile_events_202506", "profile_events_202507", "profile_events_202508"]
    with pg_store.db.engine.connect() as conn:
        moved = (
            conn.execute(sa.text("SELECT message_id FROM profile_events_202507")).scalars().all()
        )
        left = conn.execute(sa.text("SELECT count(*) FROM profile_events_default")).scalar_one()
    assert (moved, left) == (["early"], 0)
    assert pg_store.ensure_partitions(date(2025, 6, 1), date(2025, 8, 1)) == []
    pg_store.apply_batch(
        [read_event(page(anonymous_id="a1", message_id="later", at=july))], clock()
    )
    profile = pg_store.lookup("acme", Identity("anonymous_id", "a1"))
    assert profile is not None
    rows = pg_store.list_events("acme", profile.profile_id, [], None, None, None, 9)
    assert sorted(r.message_id for r in rows) == ["early", "later"]


def test_windowed_traits_are_refreshed_when_a_day_leaves_the_window(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(track("Product Viewed", anonymous_id="a1", at=NOW, properties={"product_id": "sku-1"}))
    assert store.refresh_due(clock(), 100) == (0, [])
    clock.advance(days=7)
    count, outgoing = store.refresh_due(clock(), 100)
    (message,) = outgoing
    changed = profile_pb2.ProfileChanged.FromString(message.payload)
    assert count == 1
    assert changed.computed_traits["product_views_7d"] == 0
    assert changed.version == 2
    assert store.refresh_due(clock(), 100)[0] == 0


class Bus:
    """Records what is published; fails while `down` is set."""

    def __init__(self) -> None:
        self.down = False
        self.keys: list[str] = []

    async def publish_many(self, messages: list[Any]) -> list[str]:
        if self.down:
            raise ConnectionError("bus down")
        self.keys += [m.key for m in messages]
        return [str(len(self.keys))] * len(messages)


def test_the_outbox_publishes_what_failed_once_the_bus_is_back(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    bus = Bus()
    outbox = Outbox(bus, store, clock, grace=timedelta(0))  # type: ignore[arg-type]
    bus.down = True
    written = (
        apply(page(anonymous_id="a1", at=NOW)).outgoing
        + apply(page(anonymous_id="a2", at=NOW)).outgoing
    )
    asyncio.run(outbox.publish(written))
    assert bus.keys == []
    bus.down = False
    asyncio.run(outbox.relay_once())
    assert bus.keys == [o.key for o in written]
    assert store.pending_outbox(clock() + timedelta(days=1), [], 10) == []
