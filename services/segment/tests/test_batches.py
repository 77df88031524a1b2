"""Changes applied in batches: a partition's messages in one transaction, the same as one
by one — the same person twice, a poisoned message failing alone, a redelivered batch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from upstream import changed, event, running, settings_for

from mailwright.runtime.bus import Outgoing
from mailwright.runtime.bus.model import partition_for
from mailwright.segment.v1 import segment_pb2
from mailwright_segment.app import SegmentApp
from mailwright_segment.catalog import RuleInput, SegmentCatalog
from mailwright_segment.engine import MembershipEngine
from mailwright_segment.facts import EventFact, ProfileChange
from mailwright_segment.store import memberships as membership_store
from mailwright_segment.values import to_micros

NOW = to_micros(datetime(2024, 5, 1, 12, tzinfo=UTC))
MINUTE = 60_000_000
RULES = {
    "two-orders": 'event "Order Completed" count >= 2',
    "french": 'trait country = "FR"',
}


def _engine(engine: sa.Engine, workspaces: tuple[str, ...] = ("acme",)) -> MembershipEngine:
    membership = MembershipEngine(engine, clock=lambda: NOW)
    catalog = SegmentCatalog(membership, retention=timedelta(days=400))
    for ws in workspaces:
        for segment_id, rule in RULES.items():
            catalog.create(ws, segment_id, "", "", (), RuleInput(text=rule))
    return membership


def _history(engine: sa.Engine, ws: str = "acme") -> list[tuple[str, str, bool, str]]:
    with engine.connect() as conn:
        return [
            (e.segment_id, e.profile_id, e.entered, e.cause)
            for e in membership_store.history(conn, ws)
        ]


def _order(
    profile_id: str, message_id: str, *, version: int, country: str, ws: str = "acme"
) -> ProfileChange:
    return ProfileChange(
        ws,
        profile_id,
        version,
        traits={"country": country},
        events=(EventFact(message_id, "Order Completed", NOW - MINUTE),),
    )


def test_a_batch_with_the_same_person_twice_is_applied_as_one_by_one(engine: sa.Engine) -> None:
    membership = _engine(engine, ("acme", "beta"))
    script = [("p1", "o1", 1, "FR"), ("p2", "o2", 1, "DE"), ("p1", "o3", 2, "DE")]
    outcome = membership.apply_many([_order(p, m, version=v, country=c) for p, m, v, c in script])
    for p, m, v, c in script:  # the same changes, one transaction each, in "beta"
        membership.apply(_order(p, m, version=v, country=c, ws="beta"))
    history = _history(engine)
    assert history == _history(engine, "beta")
    assert sorted(history) == [
        ("french", "p1", False, "event"),
        ("french", "p1", True, "event"),
        ("two-orders", "p1", True, "event"),
    ]
    assert len(outcome.log_ids) == 3
    with engine.connect() as conn:
        members = conn.execute(
            sa.text(
                "SELECT s.segment_id, p.profile_id FROM segment_memberships m "
                "JOIN segment_segments s ON s.pk = m.segment_pk "
                "JOIN segment_profiles p ON p.pk = m.profile_pk "
                "WHERE s.ws = 'acme' AND m.member"
            )
        ).all()
    assert [tuple(r) for r in members] == [("two-orders", "p1")]


def test_a_redelivered_batch_logs_no_transition_twice(engine: sa.Engine) -> None:
    membership = _engine(engine)
    changes = [
        _order("p1", "o1", version=1, country="FR"),
        _order("p1", "o2", version=1, country="FR"),
    ]
    first = membership.apply_many(changes)
    assert len(first.log_ids) == 2
    again = membership.apply_many(changes)
    assert again.log_ids == []
    assert sorted(_history(engine)) == [
        ("french", "p1", True, "event"),
        ("two-orders", "p1", True, "event"),
    ]


FAST = {"retry_backoff": 0.05, "max_deliveries": 2}


def _same_partition(key: str, partitions: int, count: int) -> list[str]:
    """`count` profile ids whose messages land in the partition of `key`."""
    wanted = partition_for(key, partitions)
    found = []
    for i in range(10_000):
        if partition_for(f"acme:p{i}", partitions) == wanted:
            found.append(f"p{i}")
            if len(found) == count:
                return found
    raise AssertionError("no profile ids share the partition")


async def _create(upstream, segment_id: str, rule: str) -> None:  # type: ignore[no-untyped-def]
    runtime = upstream.platform.runtime
    token = runtime.authority.issue("acme", ["segments:read", "segments:write"])
    clients = upstream.platform.clients(token)
    try:
        await clients.segment.CreateSegment(
            segment_pb2.CreateSegmentRequest(
                parent="workspaces/acme",
                segment_id=segment_id,
                segment=segment_pb2.Segment(rule_text=rule),
            )
        )
    finally:
        await clients.close()


async def test_a_poisoned_change_goes_to_the_dead_letters_and_the_rest_of_its_batch_applies(
    tmp_path: Path, sqlite_url: str
) -> None:
    settings = settings_for(tmp_path, sqlite_url, services={"segment": FAST})
    async with running(settings) as upstream:
        (app,) = [a for a in upstream.platform.apps if isinstance(a, SegmentApp)]
        # The database itself refuses the poisoned person: a real failure inside the
        # batch's transaction, after the changes before it were applied in it.
        with app.db.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON segment_profiles "
                "WHEN NEW.profile_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        await _create(upstream, "buyers", 'event "Order Completed"')
        before, after = _same_partition("acme:poison", upstream.bus.partitions, 2)
        batch = [
            changed("acme", profile, version=1, events=[event("Order Completed")])
            for profile in (before, "poison", after)
        ]
        await upstream.bus.publish_many(
            Outgoing("profiles.changed", f"acme:{m.profile_id}", m.SerializeToString())
            for m in batch
        )
        await upstream.wait_for(2, segment_id="buyers")
        for _ in range(200):
            dead = await upstream.bus.dead_letters("profiles.changed")
            if dead:
                break
            await asyncio.sleep(0.05)
        assert [(d.key, d.group, d.delivery_count) for d in dead] == [("acme:poison", "segment", 2)]
        assert "poisoned" in dead[0].error
        assert sorted(upstream.transitions("buyers")) == [
            ("buyers", before, "entered"),
            ("buyers", after, "entered"),
        ]


async def test_a_redelivered_batch_publishes_no_transition_twice(
    tmp_path: Path, sqlite_url: str
) -> None:
    async with running(settings_for(tmp_path, sqlite_url)) as upstream:
        await _create(upstream, "two-orders", 'event "Order Completed" count >= 2')
        p1, p2 = _same_partition("acme:p0", upstream.bus.partitions, 2)
        batch = [
            changed("acme", p1, version=1, events=[event("Order Completed", message_id="a")]),
            changed("acme", p2, version=1, events=[event("Order Completed", message_id="b")]),
            changed("acme", p1, version=2, events=[event("Order Completed", message_id="c")]),
        ]
        outgoing = [
            Outgoing("profiles.changed", f"acme:{m.profile_id}", m.SerializeToString())
            for m in batch
        ]
        await upstream.bus.publish_many(outgoing)
        await upstream.wait_for(1, segment_id="two-orders")
        await upstream.bus.publish_many(outgoing)  # the whole batch delivered again
        await upstream.change(
            changed("acme", p2, version=2, events=[event("Order Completed", message_id="d")])
        )
        await upstream.wait_for(2, segment_id="two-orders")
        await asyncio.sleep(0.3)
        assert upstream.transitions("two-orders") == [
            ("two-orders", p1, "entered"),
            ("two-orders", p2, "entered"),
        ]


def test_changes_that_repeat_some_events_count_each_event_once(engine: sa.Engine) -> None:
    membership = _engine(engine)

    def orders(version: int, *ids: str) -> ProfileChange:
        facts = tuple(EventFact(i, "Order Completed", NOW - MINUTE) for i in ids)
        return ProfileChange("acme", "p1", version, events=facts)

    membership.apply_many([orders(1, "o1"), orders(2, "o1", "o2")])
    assert membership.apply_many([orders(3, "o2", "o1")]).log_ids == []
    assert _history(engine) == [("two-orders", "p1", True, "event")]
    with engine.connect() as conn:
        held = conn.execute(sa.text("SELECT count(*) FROM segment_events")).scalar_one()
        counted = conn.execute(sa.text('SELECT sum("count") FROM segment_buckets')).scalar_one()
    assert (held, counted) == (2, 2)


async def test_a_history_longer_than_a_batch_is_caught_up_as_it_was_published(
    tmp_path: Path, database_url: str
) -> None:
    """A backlog of one partition several batches long (`read_batch` 256), published
    before any segment exists, as when a service catches up on a history: every change is
    applied, and segments created afterwards find exactly the people the history makes
    members (events counted once, revenue summed exactly, the last trait kept)."""
    async with running(settings_for(tmp_path, database_url)) as upstream:
        people = _same_partition("acme:p0", upstream.bus.partitions, 20)
        history = [
            changed(
                "acme",
                person,
                version=n + 1,
                traits={"country": "DE" if n + 1 < 20 + i or i % 2 else "FR"},
                events=[event("Order Completed", properties={"revenue": "1.10"})],
            )
            for n in range(40)
            for i, person in enumerate(people)
            if n < 20 + i  # person i orders 20 + i times: 590 changes in all
        ]
        await upstream.bus.publish_many(
            Outgoing("profiles.changed", f"acme:{m.profile_id}", m.SerializeToString())
            for m in history
        )
        (app,) = [a for a in upstream.platform.apps if isinstance(a, SegmentApp)]

        def stored() -> int:
            with app.db.engine.connect() as conn:
                return int(conn.execute(sa.text("SELECT count(*) FROM segment_events")).scalar())

        for _ in range(600):
            if await app.db.run(stored) == len(history):
                break
            await asyncio.sleep(0.05)
        assert await app.db.run(stored) == len(history)
        await _create(upstream, "thirty", 'event "Order Completed" count >= 30')
        await _create(
            upstream,
            "french-spenders",
            'sum(revenue) of event "Order Completed" >= 33 and trait country = "FR"',
        )
        await upstream.wait_for(10, segment_id="thirty")
        await upstream.wait_for(5, segment_id="french-spenders")
        await asyncio.sleep(0.3)
        assert {p for _, p, _ in upstream.transitions("thirty")} == set(people[10:])
        assert {p for _, p, _ in upstream.transitions("french-spenders")} == set(people[10::2])
