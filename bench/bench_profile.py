"""The profile service's event consumer against a bare bulk upsert of the same rows.

- value: events applied per second by the consumer — the service's own subscription on
  the in-memory bus with the service's default settings (`ProfileSettings`: events read
  per partition, events per transaction, garbage-collector threshold), its group
  commit, identity resolution, trait and computed-trait projections, history, and one
  `profiles.changed` per changed profile through the outbox — from subscribing until
  every event is stored;
- baseline: a bare SQLAlchemy Core `INSERT … ON CONFLICT DO UPDATE` of the rows the
  consumer left (the history, the profiles, the identities), executemany in batches of
  1,000, one transaction per batch, into an empty copy of the same tables; reported as
  events per second (events ÷ time to upsert all those rows).

The baseline writes each profile row once, in its final state, while any consumer that
applies events as they come must write a profile again in every transaction that touches
it (here some 4,100 profile writes against 1,333: the consumer's transactions take a
round of the bus's reads, `max_batch` — 10,000 — events at a time). For
information, the same run also times that bare upsert split as the direct batch apply
splits the work: per `max_batch` events of the stream, their history rows, the
identities they linked and the (final) rows of the profiles they touched, one
transaction each.

Events come from `mailwright_profile.simulate.event_stream` (a shop's mix: product
views, pages, cart adds, orders, identifies stitching anonymous browsing, email sends
and opens). The same run also reports, for information, the store's batch apply called
directly with `max_batch` events per transaction, without the bus.

SQLite runs in a temporary directory; PostgreSQL on MAILWRIGHT_BENCH_POSTGRES_URL
(default: the test server), in fresh schemas dropped afterwards (`postgres_schemas`).
Each figure is the median ratio of three rounds of 20,000 events (--quick: one round of
3,000 events over 200 people), since the machine may be shared; each timed part starts
from a collected heap (`gc.collect()`), as a service's consumer runs long after its
start-up garbage is gone.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from bench.common import Result
from bench.scratch import postgres_schemas
from mailwright.runtime.bus import ConsumerOptions, Outgoing, connect
from mailwright.runtime.db import Database, create_engine
from mailwright.testing.servers import POSTGRES_ADMIN_URL
from mailwright_profile import convert
from mailwright_profile.app import MIGRATIONS, ProfileSettings
from mailwright_profile.consumer import EVENT_TOPICS, EventConsumer
from mailwright_profile.events import read_event
from mailwright_profile.outbox import Outbox
from mailwright_profile.simulate import event_stream
from mailwright_profile.store import ProfileStore
from mailwright_profile.store import tables as t

POSTGRES_URL = os.environ.get("MAILWRIGHT_BENCH_POSTGRES_URL", POSTGRES_ADMIN_URL)
UPSERT_BATCH = 1000
SETTINGS = ProfileSettings()  # the service's defaults: what it runs with
DIRECT_BATCH = SETTINGS.max_batch
PARTITIONS = 8


@dataclass(frozen=True)
class Round:
    consumer: float  # events/s
    baseline: float  # events/s
    direct: float  # events/s
    per_batch: float  # events/s of the baseline split per DIRECT_BATCH events (information)


def _events(count: int) -> list[Any]:
    return list(event_stream(count, people=max(count // 15, 10), seed=11))


def _store(url: str) -> ProfileStore:
    db = Database(url, service="profile", migrations=MIGRATIONS)
    db.migrate()
    return ProfileStore(db, convert.encode_changed, convert.encode_deleted, convert.email_hashes)


async def _consume(url: str, events: list[Any]) -> float:
    """Events/s of the consumer: publish everything, then subscribe and time the drain."""
    store = _store(url)
    bus = await connect(
        "memory://", namespace=f"bench-{uuid.uuid4().hex[:8]}", partitions=PARTITIONS
    )
    try:
        for start in range(0, len(events), 5000):
            await bus.publish_many(
                [
                    Outgoing(
                        f"events.{e.family}",
                        f"{e.workspace}:{e.user_id or e.anonymous_id}",
                        e.SerializeToString(),
                    )
                    for e in events[start : start + 5000]
                ]
            )
        clock = lambda: datetime.now(UTC)  # noqa: E731
        outbox = Outbox(bus, store, clock)
        consumer = EventConsumer(
            store, outbox, clock, SETTINGS.max_batch, gc_threshold=SETTINGS.gc_threshold
        )
        await consumer.start()
        subscription = bus.subscribe_batches(
            list(EVENT_TOPICS),
            "profile",
            consumer.handle_many,
            options=ConsumerOptions(
                block=0.05, batch_size=SETTINGS.read_batch, read_ahead=SETTINGS.read_ahead
            ),
        )
        started = time.perf_counter()
        await subscription.start()
        await _applied(consumer, len(events))
        elapsed = time.perf_counter() - started
        await subscription.stop()
        await consumer.stop()
        return len(events) / elapsed
    finally:
        await bus.close()
        store.db.close()


async def _applied(consumer: EventConsumer, count: int) -> None:
    """Wait until the consumer has applied `count` events (checked every few ms)."""
    done = asyncio.Event()

    def check() -> None:
        if consumer.applied >= count:
            done.set()
        else:
            asyncio.get_running_loop().call_later(0.005, check)

    check()
    await done.wait()


def _direct(url: str, events: list[Any]) -> float:
    """Events/s of the store's batch apply called with `DIRECT_BATCH` events per
    transaction."""
    store = _store(url)
    try:
        incoming = [read_event(e) for e in events]
        started = time.perf_counter()
        for start in range(0, len(incoming), DIRECT_BATCH):
            store.apply_batch(incoming[start : start + DIRECT_BATCH], datetime.now(UTC))
        return len(events) / (time.perf_counter() - started)
    finally:
        store.db.close()


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [dict(row._mapping) for row in conn.execute(sa.select(table))]
                for table in (t.events, t.profiles, t.identities)
            }
    finally:
        engine.dispose()


def _upsert_statement(engine: sa.Engine, table: sa.Table) -> Any:
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def _upsert(url: str, rows: dict[str, list[dict[str, Any]]], events: int) -> float:
    """Events/s of a bare bulk upsert of the rows the consumer left, into the same
    (migrated, empty) tables."""
    _store(url).db.close()
    engine = create_engine(url)
    tables = (t.events, t.profiles, t.identities)
    try:
        started = time.perf_counter()
        for table in tables:
            statement = _upsert_statement(engine, table)
            batch = rows[table.name]
            for start in range(0, len(batch), UPSERT_BATCH):
                with engine.begin() as conn:
                    conn.execute(statement, batch[start : start + UPSERT_BATCH])
        return events / (time.perf_counter() - started)
    finally:
        engine.dispose()


def _upsert_per_batch(url: str, rows: dict[str, list[dict[str, Any]]], events: list[Any]) -> float:
    """Events/s of the same bare upsert split per `DIRECT_BATCH` events of the stream:
    each transaction upserts those events' history rows, the identities they linked and
    the rows of the profiles they touched (a profile again in every transaction that
    touches it); profiles touched by none (merged away before any event) come last."""
    _store(url).db.close()
    position = {e.message_id: i // DIRECT_BATCH for i, e in enumerate(events)}
    chunks = (len(events) + DIRECT_BATCH - 1) // DIRECT_BATCH
    history: list[list[dict[str, Any]]] = [[] for _ in range(chunks + 1)]
    linked: list[list[dict[str, Any]]] = [[] for _ in range(chunks + 1)]
    touched: list[dict[str, None]] = [{} for _ in range(chunks + 1)]
    for row in rows[t.events.name]:
        chunk = position[row["message_id"]]
        history[chunk].append(row)
        touched[chunk][row["profile_id"]] = None
    for row in rows[t.identities.name]:
        linked[position.get(row["message_id"], chunks)].append(row)
    profiles = {row["profile_id"]: row for row in rows[t.profiles.name]}
    used = {p for chunk in touched for p in chunk}
    touched[chunks] = {p: None for p in profiles if p not in used}
    engine = create_engine(url)
    try:
        statements = {
            table: _upsert_statement(engine, table)
            for table in (t.events, t.profiles, t.identities)
        }
        started = time.perf_counter()
        for chunk in range(chunks + 1):
            with engine.begin() as conn:
                for table, batch in (
                    (t.events, history[chunk]),
                    (t.profiles, [profiles[p] for p in touched[chunk]]),
                    (t.identities, linked[chunk]),
                ):
                    if batch:
                        conn.execute(statements[table], batch)
        return len(events) / (time.perf_counter() - started)
    finally:
        engine.dispose()


@contextmanager
def _sqlite_urls() -> Iterator[list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        yield [
            f"sqlite:///{Path(tmp) / name}.db"
            for name in ("consumer", "baseline", "direct", "per_batch")
        ]


@contextmanager
def _postgres_urls() -> Iterator[list[str]]:
    with postgres_schemas(POSTGRES_URL, 4) as urls:
        yield urls


def _round(urls: list[str], events: list[Any]) -> Round:
    consumer_url, baseline_url, direct_url, per_batch_url = urls
    # Each figure starts from a collected heap: what the rounds and modules before it
    # left (a closed bus and store are reference cycles, freed only by the collector)
    # is not its garbage, and a full collection of it during a drain takes up to 0.25 s.
    gc.collect()
    consumer = asyncio.run(_consume(consumer_url, events))
    rows = _rows(consumer_url)
    gc.collect()
    baseline = _upsert(baseline_url, rows, len(events))
    gc.collect()
    direct = _direct(direct_url, events)
    gc.collect()
    per_batch = _upsert_per_batch(per_batch_url, rows, events)
    return Round(consumer, baseline, direct, per_batch)


def _measure(name: str, urls: Any, events: list[Any], rounds: int, goal: str) -> list[Result]:
    measured: list[Round] = []
    for _ in range(rounds):
        with urls() as pair:
            measured.append(_round(pair, events))
    median = sorted(measured, key=lambda r: r.consumer / r.baseline)[len(measured) // 2]
    direct = statistics.median(r.direct for r in measured)
    per_batch = statistics.median(r.per_batch for r in measured)
    label = f"{len(events):,} events, median of {rounds}"
    return [
        Result(
            name=f"profile consumer, events applied ({name}; {label})",
            value=median.consumer,
            unit="events/s",
            baseline=median.baseline,
            baseline_unit="events/s bare bulk upsert of the same rows",
            ratio=median.consumer / median.baseline,
            goal=goal,
        ),
        Result(
            name=f"profile batch apply, {DIRECT_BATCH} per transaction, no bus ({name}; info)",
            value=direct,
            unit="events/s",
            baseline=median.baseline,
            baseline_unit="events/s bare bulk upsert of the same rows",
            ratio=direct / median.baseline,
            goal="(information)",
        ),
        Result(
            name=f"profile batch apply, {DIRECT_BATCH} per transaction, no bus ({name}; info)",
            value=direct,
            unit="events/s",
            baseline=per_batch,
            baseline_unit=f"events/s bare upsert of the same rows, {DIRECT_BATCH} events'"
            " rows per transaction",
            ratio=direct / per_batch,
            goal="(information)",
        ),
    ]


def run(quick: bool) -> list[Result]:
    count, rounds = (3_000, 1) if quick else (20_000, 3)
    events = _events(count)
    results = _measure("SQLite", _sqlite_urls, events, rounds, ">= 0.7")
    try:
        results += _measure("PostgreSQL", _postgres_urls, events, rounds, ">= 0.6")
    except sa.exc.OperationalError as error:
        print(f"PostgreSQL not reachable, its figure is left out: {error.orig}")
    return results


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
