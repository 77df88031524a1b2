"""Segments: the compiled SQL beside hand-written SQL, the incremental evaluator beside a
hand-written predicate, and the time from a change to the `entered` message.

1. **Full recompute.** A projection of P profiles and E events over 90 days (1,000,000 and
   10,000,000 in the full run, `MAILWRIGHT_BENCH_SEGMENT_SIZE=1000000x20000000` for twenty
   million; 10,000 and 100,000 with --quick) is generated with numpy (each event name's
   events drawn and sorted by profile and time as one integer key) straight into the
   segment tables: the day buckets and per-spec hits the projection keeps for four event
   names, and a `country` trait, on SQLite and on PostgreSQL. The rule

       event "Product Viewed" count >= 5 in last 30 days and trait country = "FR"

   is compiled to SQL and run (all member rows fetched); the baseline is the query a
   person would write by hand for the same rule on the same tables (inner joins, the same
   whole-day buckets plus partial-day hits). Ratio: compiled ÷ hand-written (goal ≤ 1.2).
   The raw event log is not generated: the batch evaluator never reads it. Both databases
   get the same rows in primary-key order, the secondary indexes dropped and built after:
   SQLite by `executemany` in one transaction (no journal, no syncs, a big cache while
   loading), PostgreSQL by binary COPY built from the arrays (FREEZE), then VACUUM
   ANALYZE. The two load at the same time, SQLite in a process of its own (each load
   keeps about one core busy: SQLite there, the PostgreSQL server here), and are measured
   one after the other.

2. **Incremental evaluation.** For 2,000 people's in-memory states, 200,000 events (20,000
   quick) arrive one at a time: each is added to the person's state and the rule is
   evaluated, by the compiled plan and by a hand-written Python predicate for the same
   rule. Ratio: predicate time ÷ plan time, i.e. the plan's speed as a share of the
   predicate's (goal ≥ 0.7).

3. **Latency.** The segment service alone on an in-process platform (SQLite, in-memory
   bus): a `ProfileChanged` with an order is published for a new person, and the time to
   the `entered` message on `segments.membership` is taken, one person at a time (1,000;
   100 quick). Baseline: one bare bus hop (publish to a consumer) in the same run.

4. **Consumer throughput.** The segment service alone on an in-process platform (SQLite,
   then PostgreSQL; in-memory bus) with three segments: 5,000 `ProfileChanged` messages
   (500 quick) over 1,000 people (100 quick), one event and a `country` trait each, are
   published at once and the time until the consumer has stored them all is taken (10,000
   before: twice the time, and both sizes' ratios move more between runs on a busy machine
   than between sizes).
   Baseline: the same changes (in another workspace of the same database) given straight
   to `MembershipEngine.apply_many`, 500 per transaction, in the same run. Ratio:
   consumer ÷ direct (goal ≥ 0.5: the bus, the publish of transitions and the partitions'
   parallel transactions cost at most half).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from bench.common import Result
from bench.scratch import postgres_schemas
from mailwright.rules import parse
from mailwright.testing.servers import POSTGRES_ADMIN_URL
from mailwright_segment.incremental import compile_rule
from mailwright_segment.specs import Spec
from mailwright_segment.state import Hits, PersonState, SpecData
from mailwright_segment.store import sqlfuncs
from mailwright_segment.store.compile import Scope, members_query
from mailwright_segment.store.tables import metadata
from mailwright_segment.values import MICROS_PER_DAY, to_micros
from mailwright_segment.windows import span_of, split

WS = "bench"
RULE = 'event "Product Viewed" count >= 5 in last 30 days and trait country = "FR"'
NAMES = ("Product Viewed", "Product Added", "Order Completed", "Page Viewed")
SHARES = (0.6, 0.2, 0.1, 0.1)
COUNTRIES = ("FR", "DE", "US")
DAYS = 90
NOW = to_micros(datetime(2024, 6, 1, 14, 37, tzinfo=UTC))
PERIOD = 30 * MICROS_PER_DAY
SECONDARY = ("ix_segment_hits_spec_at", "ix_segment_buckets_spec_day", "ix_segment_traits_ws_key")


# ---------------------------------------------------------------------------------------
# Data


class Data:
    """Generated events, sorted by (event name, profile, time), their day buckets, and
    traits: numpy arrays, turned into rows for SQLite (tuples) and PostgreSQL (binary COPY)
    alike, so both databases hold the same rows."""

    def __init__(self, profiles: int, events: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.spec_ids = [Spec(n).id for n in NAMES]
        # Each name's events (names ranked by spec id, so that rows arrive in primary-key
        # order: appends), sorted by profile and time through one integer key each.
        span = DAYS * MICROS_PER_DAY
        shift = int(span - 1).bit_length()
        if (profiles + 1).bit_length() + shift > 64:
            raise ValueError(f"{profiles:,} profiles do not fit the sort key")
        pks, names, ats = [], [], []
        per_name = rng.multinomial(events, SHARES)
        for name in sorted(range(len(NAMES)), key=lambda n: self.spec_ids[n]):
            size = int(per_name[name])
            key = rng.integers(1, profiles + 1, size=size, dtype=np.uint64) << np.uint64(shift)
            key |= rng.integers(0, span, size=size, dtype=np.uint64)
            key.sort()
            pks.append((key >> np.uint64(shift)).astype(np.int64))
            ats.append((key & np.uint64((1 << shift) - 1)).astype(np.int64) + (NOW - span + 1))
            names.append(np.full(size, name, dtype=np.int64))
        self.profiles, self.events = profiles, events
        self.pk, self.name, self.at = (
            np.concatenate(pks),
            np.concatenate(names),
            np.concatenate(ats),
        )
        self.country = rng.choice(len(COUNTRIES), size=profiles + 1, p=(0.3, 0.3, 0.4))
        # Message ids are the event's number, zero-padded; profile ids "p" and the key.
        self.id_width = len(str(max(events - 1, 0)))
        self.profile_width = max(7, len(str(profiles)))
        day = self.at // MICROS_PER_DAY
        change = np.ones(len(day), dtype=bool)
        change[1:] = (
            (self.name[1:] != self.name[:-1])
            | (self.pk[1:] != self.pk[:-1])
            | (day[1:] != day[:-1])
        )
        starts = np.flatnonzero(change)
        self.bucket_count = np.diff(np.append(starts, len(day)))
        self.bucket_name, self.bucket_pk, self.bucket_day = (
            self.name[starts],
            self.pk[starts],
            day[starts],
        )

    # Rows as tuples (SQLite), in the column order of _TABLES.

    def hits(self) -> Iterator[tuple[Any, ...]]:
        width = self.id_width
        for i, (name, pk, at) in enumerate(
            zip(self.name.tolist(), self.pk.tolist(), self.at.tolist(), strict=True)
        ):
            yield (WS, self.spec_ids[name], pk, at, f"{i:0{width}d}")

    def buckets(self) -> Iterator[tuple[Any, ...]]:
        for name, pk, day, count in zip(
            self.bucket_name.tolist(),
            self.bucket_pk.tolist(),
            self.bucket_day.tolist(),
            self.bucket_count.tolist(),
            strict=True,
        ):
            yield (WS, self.spec_ids[name], pk, day, count, 0, 0)

    def people(self) -> Iterator[tuple[Any, ...]]:
        width = self.profile_width
        for pk in range(1, self.profiles + 1):
            yield (pk, WS, f"p{pk:0{width}d}", 0, 0)

    def traits(self) -> Iterator[tuple[Any, ...]]:
        for pk, country in enumerate(self.country.tolist()):
            if pk:
                value = COUNTRIES[country]
                yield (pk, "country", WS, "s", value, f'"{value}"')

    # The same rows as columns (PostgreSQL's binary COPY), a slice [low, high) at a time.

    def columns(self, table: str, low: int, high: int) -> list[Any]:
        text = np.bytes_
        specs = np.array(self.spec_ids, dtype="S")
        if table == "segment_hits":
            return [
                text(WS),
                specs[self.name[low:high]],
                self.pk[low:high],
                self.at[low:high],
                _decimals(b"", np.arange(low, high), self.id_width),
            ]
        if table == "segment_buckets":
            return [
                text(WS),
                specs[self.bucket_name[low:high]],
                self.bucket_pk[low:high],
                self.bucket_day[low:high].astype(np.int32),
                self.bucket_count[low:high],
                np.int64(0),
                _NUMERIC_ZERO,
            ]
        pks = np.arange(low + 1, high + 1, dtype=np.int64)
        if table == "segment_profiles":
            ids = _decimals(b"p", pks, self.profile_width)
            return [pks, text(WS), ids, np.int64(0), np.int64(0)]
        countries = self.country[low + 1 : high + 1]
        return [
            pks,
            text("country"),
            text(WS),
            text("s"),
            np.array(COUNTRIES, dtype="S")[countries],
            np.array([f'"{c}"' for c in COUNTRIES], dtype="S")[countries],
        ]

    def count(self, table: str) -> int:
        if table == "segment_hits":
            return self.events
        if table == "segment_buckets":
            return len(self.bucket_count)
        return self.profiles


# NUMERIC 0 in PostgreSQL's binary form: no digits, weight 0, positive, scale 0.
_NUMERIC_ZERO = np.void(bytes(8))


def _decimals(prefix: bytes, values: np.ndarray, width: int) -> np.ndarray:
    """`prefix` and each value zero-padded to `width` decimal digits, as an `S` array."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)
    head = np.frombuffer(prefix, dtype=np.uint8)
    chars = np.concatenate([np.broadcast_to(head, (len(values), len(head))), digits], axis=1)
    return np.ascontiguousarray(chars).view(f"S{len(prefix) + width}").ravel()


def copy_binary(columns: list[Any], rows: int) -> bytes:
    """`rows` rows of `columns` (arrays of that length, or one value for every row) in
    PostgreSQL's binary COPY format, without its header and trailer: per row the number of
    fields, then each field's length and its bytes (integers big-endian; text without
    padding, so every value of a text column has the same length)."""
    fields: list[tuple[str, Any]] = [("fields", ">i2")]
    for i, column in enumerate(columns):
        kind = column.dtype.newbyteorder(">") if column.dtype.kind == "i" else column.dtype
        fields += [(f"l{i}", ">i4"), (f"v{i}", kind)]
    out = np.empty(rows, dtype=fields)
    out["fields"] = len(columns)
    for i, column in enumerate(columns):
        out[f"l{i}"] = column.dtype.itemsize
        out[f"v{i}"] = column
    return out.tobytes()


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_COPY_TRAILER = b"\xff\xff"
_COPY_CHUNK = 500_000

_TABLES = {
    "segment_profiles": ("pk", "ws", "profile_id", "version", "updated_at"),
    "segment_traits": ("pk", "key", "ws", "kind", "text", "value"),
    "segment_hits": ("ws", "spec_id", "pk", "at", "message_id"),
    "segment_buckets": ("ws", "spec_id", "pk", "day", "count", "n", "total"),
}


def _rows(data: Data) -> dict[str, Iterator[tuple[Any, ...]]]:
    return {
        "segment_profiles": data.people(),
        "segment_traits": data.traits(),
        "segment_hits": data.hits(),
        "segment_buckets": data.buckets(),
    }


# SQLite while loading only: no rollback journal, no syncs, a cache of 512 MiB and
# temporary sort files in memory (the index builds). Per connection: the connections that
# measure open afresh with SQLite's defaults.
_SQLITE_LOAD = (
    "synchronous=OFF",
    "journal_mode=OFF",
    "cache_size=-524288",
    "temp_store=MEMORY",
)


def load_sqlite(engine: sa.Engine, data: Data) -> None:
    """One transaction of `executemany` per table, the secondary indexes built after."""
    raw: Any = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for pragma in _SQLITE_LOAD:
            cursor.execute(f"PRAGMA {pragma}")
        for index in SECONDARY:
            cursor.execute(f"DROP INDEX IF EXISTS {index}")
        cursor.execute("BEGIN")
        for table, rows in _rows(data).items():
            columns = _TABLES[table]
            marks = ", ".join("?" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(_quote(c) for c in columns)}) VALUES ({marks})",
                rows,
            )
        cursor.execute("COMMIT")
        for ddl in _secondary_indexes(engine):
            cursor.execute(ddl)
        cursor.execute("ANALYZE")
    finally:
        raw.close()


def load_postgres(engine: sa.Engine, data: Data) -> None:
    """Binary COPY into the tables, emptied in the same transaction so that the rows are
    written frozen (visible to all, as VACUUM would leave them) and in primary-key order
    (appends to the keys' indexes); the secondary indexes built after, then VACUUM
    ANALYZE."""
    raw: Any = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for index in SECONDARY:
            cursor.execute(f"DROP INDEX IF EXISTS {index}")
        for table, columns in _TABLES.items():
            cursor.execute(f"TRUNCATE {table}")
            total = data.count(table)
            names = ", ".join(_quote(c) for c in columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT binary, FREEZE)") as copy:
                copy.write(_COPY_HEADER)
                for low in range(0, total, _COPY_CHUNK):
                    high = min(low + _COPY_CHUNK, total)
                    copy.write(copy_binary(data.columns(table, low, high), high - low))
                copy.write(_COPY_TRAILER)
        raw.commit()
        # This session's index builds: in memory, and on one core (the other one loads and
        # measures SQLite meanwhile).
        cursor.execute("SET maintenance_work_mem = '256MB'")
        cursor.execute("SET max_parallel_maintenance_workers = 0")
        for ddl in _secondary_indexes(engine):
            cursor.execute(ddl)
        raw.commit()
    finally:
        raw.close()
    # The segment tables only: the schema's database may hold other work's tables.
    tables = ", ".join(table.name for table in metadata.sorted_tables)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {tables}")


def _secondary_indexes(engine: sa.Engine) -> list[str]:
    """CREATE INDEX of the secondary indexes dropped for the load."""
    return [
        str(sa.schema.CreateIndex(index).compile(dialect=engine.dialect))
        for table in metadata.sorted_tables
        for index in table.indexes
        if index.name in SECONDARY
    ]


def _quote(column: str) -> str:
    return f'"{column}"' if column == "count" else column


# ---------------------------------------------------------------------------------------
# 1. Compiled SQL beside hand-written SQL


def hand_written(spec_id: str) -> tuple[str, dict[str, Any]]:
    """The query for RULE as one would write it for these tables."""
    pieces = split(span_of(parse(RULE).conditions[0].window, NOW))  # type: ignore[union-attr]
    assert pieces.days is not None
    first, end = pieces.days
    lower, upper = pieces.edges
    sql = """
        SELECT p.pk, p.profile_id
        FROM segment_profiles p
        JOIN segment_traits t ON t.pk = p.pk AND t.key = 'country' AND t.kind = 's'
            AND t.text = 'FR'
        JOIN (
            SELECT pk FROM (
                SELECT pk, "count" AS c FROM segment_buckets
                WHERE ws = :ws AND spec_id = :spec AND day >= :first AND day < :end
                UNION ALL
                SELECT pk, 1 AS c FROM segment_hits
                WHERE ws = :ws AND spec_id = :spec AND at >= :a1 AND at < :b1
                UNION ALL
                SELECT pk, 1 AS c FROM segment_hits
                WHERE ws = :ws AND spec_id = :spec AND at >= :a2 AND at < :b2
            ) AS window_rows
            GROUP BY pk HAVING SUM(c) >= 5
        ) AS e ON e.pk = p.pk
        WHERE p.ws = :ws
    """
    return sql, {
        "ws": WS,
        "spec": spec_id,
        "first": first,
        "end": end,
        "a1": lower.start,
        "b1": lower.stop,
        "a2": upper.start,
        "b2": upper.stop,
    }


def _timed(work: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    found = work()
    return time.perf_counter() - started, found


def compare_sql(engine: sa.Engine, runs: int) -> tuple[float, float, int]:
    rule = parse(RULE)
    compiled = members_query(rule, Scope(WS, NOW), engine.dialect.name)
    sql, params = hand_written(Spec("Product Viewed").id)

    def run_compiled() -> int:
        with engine.connect() as conn:
            return len(conn.execute(compiled).all())

    def run_hand() -> int:
        with engine.connect() as conn:
            return len(conn.execute(sa.text(sql), params).all())

    run_hand()  # warm the caches alike
    run_compiled()
    hand_times, mine_times, found, expected = [], [], 0, 0
    for _ in range(runs):  # interleaved, so that both see the same machine
        seconds, expected = _timed(run_hand)
        hand_times.append(seconds)
        seconds, found = _timed(run_compiled)
        mine_times.append(seconds)
    hand, mine = min(hand_times), min(mine_times)
    if found != expected:
        raise AssertionError(f"compiled SQL found {found} members, hand-written {expected}")
    return mine, hand, found


def postgres_database() -> Iterator[str]:
    """A URL working in a fresh schema of the test server's database, dropped after."""
    with postgres_schemas(POSTGRES_ADMIN_URL) as (url,):
        yield url


def build(url: str, profiles: int, events: int) -> float:
    """Create the tables at `url` and load the generated projection; the seconds it took.

    Runs in a process of its own for SQLite, beside PostgreSQL's load in this one: each
    load keeps one core busy (SQLite there, the PostgreSQL server here)."""
    started = time.perf_counter()
    data = Data(profiles, events)
    engine = sa.create_engine(url)
    sqlfuncs.prepare(engine)
    try:
        metadata.create_all(engine)
        (load_postgres if engine.dialect.name == "postgresql" else load_sqlite)(engine, data)
    finally:
        engine.dispose()
    return time.perf_counter() - started


def build_and_measure(url: str, profiles: int, events: int, runs: int) -> tuple[float, ...]:
    """`build`, then `compare_sql`: the load's seconds, compiled and hand-written seconds,
    members."""
    loaded = build(url, profiles, events)
    engine = sa.create_engine(url)
    sqlfuncs.prepare(engine)
    try:
        mine, hand, members = compare_sql(engine, runs)
    finally:
        engine.dispose()
    return loaded, mine, hand, members


def recompute_results(profiles: int, events: int, runs: int) -> list[Result]:
    """SQLite loads and is measured in a process of its own while PostgreSQL loads (its
    index builds on one core: no parallel workers); PostgreSQL is measured after, alone.
    SQLite's queries run on one core whatever the other does, and its two queries are
    interleaved, so both see the same neighbour."""
    measured: dict[str, tuple[float, ...]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        postgres = postgres_database()
        sqlite_url, postgres_url = f"sqlite:///{Path(tmp) / 'bench.db'}", next(postgres)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            sqlite = pool.submit(build_and_measure, sqlite_url, profiles, events, runs)
            postgres_loaded = build(postgres_url, profiles, events)
            measured["SQLite"] = sqlite.result()
        engine = sa.create_engine(postgres_url)
        try:
            measured["PostgreSQL"] = (postgres_loaded, *compare_sql(engine, runs))
        finally:
            engine.dispose()
        for _ in postgres:  # drops the schema
            pass
    results = []
    for label, (loaded, mine, hand, members) in measured.items():
        print(f"{label}: loaded in {loaded:.0f} s, {members:,} members", file=sys.stderr)
        results.append(
            Result(
                name=f"segment recompute SQL {label} ({profiles:,} p, {events:,} ev)",
                value=mine * 1000,
                unit="ms compiled",
                baseline=hand * 1000,
                baseline_unit="ms hand-written",
                ratio=mine / hand,
                goal="<= 1.2",
            )
        )
    return results


# ---------------------------------------------------------------------------------------
# 2. Incremental evaluation beside a hand-written predicate


def incremental_result(people: int, events: int) -> Result:
    data = Data(people, people * 12, seed=11)
    spec_id = Spec("Product Viewed").id
    plan = compile_rule(parse(RULE))
    states = [PersonState() for _ in range(people + 1)]
    for pk in range(1, people + 1):
        states[pk].traits["country"] = COUNTRIES[int(data.country[pk])]
    mask = data.name == 0
    for pk, at in zip(data.pk[mask].tolist(), data.at[mask].tolist(), strict=True):
        states[pk].spec(spec_id).hits.times.append(at)
    for state in states:
        state.spec(spec_id)
    rng = np.random.default_rng(13)
    arrivals = list(
        zip(rng.integers(1, people + 1, size=events).tolist(), range(events), strict=True)
    )

    def predicate(state: PersonState, now: int) -> bool:
        if state.traits.get("country") != "FR":
            return False
        times = state.specs[spec_id].hits.times
        return bisect_left(times, now + 1) - bisect_left(times, now - PERIOD + 1) >= 5

    def replay(test: Callable[[PersonState, int], bool]) -> tuple[float, int]:
        copies = [PersonState(s.traits, {k: _copy(v) for k, v in s.specs.items()}) for s in states]
        entered = 0
        started = time.perf_counter()
        for pk, i in arrivals:
            state = copies[pk]
            now = NOW + i
            state.specs[spec_id].hits.add(now)
            entered += test(state, now)
        return time.perf_counter() - started, entered

    mine, found = replay(plan.evaluate)
    hand, expected = replay(predicate)
    mine, found = min((mine, found), replay(plan.evaluate))
    if found != expected:
        raise AssertionError(f"plan matched {found} times, predicate {expected}")
    per_mine, per_hand = mine / events * 1e6, hand / events * 1e6
    return Result(
        name=f"segment incremental eval per event ({events:,} ev)",
        value=per_mine,
        unit="µs plan",
        baseline=per_hand,
        baseline_unit="µs hand-written",
        ratio=per_hand / per_mine,
        goal=">= 0.7",
    )


def _copy(data: SpecData) -> SpecData:
    return SpecData(Hits(list(data.hits.times), list(data.hits.numbers), list(data.hits.groups)))


# ---------------------------------------------------------------------------------------
# 3. From a change published to the entered message


async def _latencies(count: int, tmp: Path) -> tuple[list[float], list[float]]:
    from mailwright.common.v1 import event_pb2
    from mailwright.profile.v1 import profile_pb2
    from mailwright.runtime.bus import Message
    from mailwright.runtime.server import Platform
    from mailwright.runtime.service import resolve_services
    from mailwright.runtime.settings import Settings
    from mailwright.segment.v1 import segment_pb2

    settings = Settings(
        data_dir=tmp,
        grpc_port=0,
        http_port=0,
        auth_secret="b" * 48,
        bus_url=f"memory://bench-{uuid.uuid4().hex}",
        shutdown_grace=timedelta(seconds=1),
    )
    platform = Platform(settings, resolve_services(["segment"]))
    await platform.start()
    try:
        assert platform.runtime is not None
        bus = platform.runtime.bus
        clients = platform.clients()
        await clients.segment.CreateSegment(
            segment_pb2.CreateSegmentRequest(
                parent=f"workspaces/{WS}",
                segment_id="buyers",
                segment=segment_pb2.Segment(rule_text='event "Order Completed"'),
            )
        )
        await clients.close()
        arrived: dict[str, float] = {}
        waiting: dict[str, asyncio.Event] = {}

        async def on_change(message: Message) -> None:
            change = segment_pb2.MembershipChange.FromString(message.value)
            arrived[change.profile_id] = time.perf_counter()
            if change.profile_id in waiting:
                waiting[change.profile_id].set()

        async def on_echo(message: Message) -> None:
            arrived[message.key] = time.perf_counter()
            waiting[message.key].set()

        listener = bus.subscribe("segments.membership", "bench", on_change)
        echo = bus.subscribe("bench.echo", "bench-echo", on_echo)
        await listener.start()
        await echo.start()
        changes: list[float] = []
        hops: list[float] = []
        try:
            for i in range(count + 20):
                profile = f"b{i}"
                message = profile_pb2.ProfileChanged(
                    workspace=WS,
                    profile_id=profile,
                    version=1,
                    events=[
                        event_pb2.Event(
                            type=event_pb2.EVENT_TYPE_TRACK,
                            event="Order Completed",
                            message_id=uuid.uuid4().hex,
                            profile_id=profile,
                        )
                    ],
                )
                payload = message.SerializeToString()
                for topic, target, sink in (
                    ("profiles.changed", profile, changes),
                    ("bench.echo", f"echo-{i}", hops),
                ):
                    waiting[target] = asyncio.Event()
                    sent = time.perf_counter()
                    await bus.publish(
                        topic, payload, key=f"{WS}:{target}" if topic != "bench.echo" else target
                    )
                    await asyncio.wait_for(waiting[target].wait(), 30)
                    if i >= 20:  # the first ones warm the caches
                        sink.append(arrived[target] - sent)
        finally:
            await listener.stop()
            await echo.stop()
        return changes, hops
    finally:
        await platform.stop()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_results(count: int) -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        changes, hops = asyncio.run(_latencies(count, Path(tmp)))
    out = []
    for label, share in (("p50", 0.5), ("p99", 0.99)):
        mine, hop = _percentile(changes, share) * 1000, _percentile(hops, share) * 1000
        out.append(
            Result(
                name=f"segment change -> entered {label} (SQLite, memory bus)",
                value=mine,
                unit="ms",
                baseline=hop,
                baseline_unit="ms bus hop",
                ratio=mine / hop,
                goal="p99 <= 50 ms" if label == "p99" else "report",
            )
        )
    out.append(
        Result(
            name="segment change -> entered mean",
            value=statistics.fmean(changes) * 1000,
            unit="ms",
            baseline=statistics.fmean(hops) * 1000,
            baseline_unit="ms bus hop",
            ratio=statistics.fmean(changes) / statistics.fmean(hops),
            goal="report",
        )
    )
    return out


# ---------------------------------------------------------------------------------------
# 4. Consumer throughput

THROUGHPUT_RULES = (
    ("buyers", 'event "Order Completed"'),
    ("french-viewers", RULE),
    ("active", 'event "Page Viewed" count >= 2 in last 7 days'),
)


def _throughput_changes(ws: str, people: int, count: int) -> list[bytes]:
    """`count` ProfileChanged messages over `people` people, one event and a trait each."""
    from google.protobuf.timestamp_pb2 import Timestamp

    from mailwright.common.v1 import event_pb2
    from mailwright.profile.v1 import profile_pb2

    rng = np.random.default_rng(11)
    names = rng.choice(len(NAMES), size=count, p=SHARES)
    at = Timestamp()
    at.FromDatetime(datetime.now(UTC))
    out = []
    for i in range(count):
        profile = f"t{i % people}"
        message = profile_pb2.ProfileChanged(
            workspace=ws,
            profile_id=profile,
            version=i // people + 1,
            occur_time=at,
            events=[
                event_pb2.Event(
                    type=event_pb2.EVENT_TYPE_TRACK,
                    event=NAMES[int(names[i])],
                    message_id=f"{ws}-{i}",
                    profile_id=profile,
                    workspace=ws,
                    timestamp=at,
                )
            ],
        )
        message.traits.update({"country": COUNTRIES[i % len(COUNTRIES)]})
        out.append(message.SerializeToString())
    return out


async def _throughput(
    database_url: str | None, people: int, count: int, tmp: Path
) -> tuple[float, float]:
    """Changes per second through the service's consumer, and through `apply_many` of the
    same changes (another workspace, same database) in transactions of 500."""
    from mailwright.profile.v1 import profile_pb2
    from mailwright.rules.library import builtin_taxonomy
    from mailwright.runtime.bus import Outgoing
    from mailwright.runtime.server import Platform
    from mailwright.runtime.service import resolve_services
    from mailwright.runtime.settings import Settings
    from mailwright.segment.v1 import segment_pb2
    from mailwright_segment.app import SegmentApp
    from mailwright_segment.facts import profile_change
    from mailwright_segment.store.tables import events as events_table

    extra: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = Settings(
        data_dir=tmp,
        grpc_port=0,
        http_port=0,
        auth_secret="b" * 48,
        bus_url=f"memory://bench-{uuid.uuid4().hex}",
        shutdown_grace=timedelta(seconds=1),
        **extra,
    )
    platform = Platform(settings, resolve_services(["segment"]))
    await platform.start()
    try:
        assert platform.runtime is not None
        (app,) = [a for a in platform.apps if isinstance(a, SegmentApp)]
        clients = platform.clients()
        for ws in ("direct", "consumer"):
            for segment_id, rule in THROUGHPUT_RULES:
                await clients.segment.CreateSegment(
                    segment_pb2.CreateSegmentRequest(
                        parent=f"workspaces/{ws}",
                        segment_id=segment_id,
                        segment=segment_pb2.Segment(rule_text=rule),
                    )
                )
        await clients.close()
        taxonomy, _ = builtin_taxonomy()

        direct = [
            profile_change(profile_pb2.ProfileChanged.FromString(v), taxonomy)
            for v in _throughput_changes("direct", people, count)
        ]
        started = time.perf_counter()
        for low in range(0, len(direct), 500):
            await app.db.run(app.engine.apply_many, direct[low : low + 500])
        baseline = len(direct) / (time.perf_counter() - started)

        payloads = _throughput_changes("consumer", people, count)

        def stored() -> int:
            with app.engine.reader.connect() as conn:
                query = sa.select(sa.func.count()).where(events_table.c.ws == "consumer")
                return int(conn.execute(query).scalar_one())

        started = time.perf_counter()
        for low in range(0, len(payloads), 1000):
            await platform.runtime.bus.publish_many(
                Outgoing("profiles.changed", f"consumer:t{(low + i) % people}", value)
                for i, value in enumerate(payloads[low : low + 1000])
            )
        deadline = time.monotonic() + 1800
        while (done := await app.db.run(stored)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the consumer applied {done} of {count} changes in time")
            await asyncio.sleep(0.05)
        return count / (time.perf_counter() - started), baseline
    finally:
        await platform.stop()


def throughput_results(people: int, count: int, postgres: bool) -> list[Result]:
    out = []
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    if postgres:
        targets.append(("PostgreSQL", "postgres"))
    for label, url in targets:
        with tempfile.TemporaryDirectory() as tmp:
            if url is None:
                mine, base = asyncio.run(_throughput(None, people, count, Path(tmp)))
            else:
                with contextlib.contextmanager(postgres_database)() as target:
                    mine, base = asyncio.run(_throughput(target, people, count, Path(tmp)))
        out.append(
            Result(
                name=f"segment consumer, profiles.changed applied ({label}, memory bus)",
                value=mine,
                unit="changes/s",
                baseline=base,
                baseline_unit="changes/s apply_many x500",
                ratio=mine / base,
                goal=">= 0.5",
            )
        )
    return out


def _full_size() -> tuple[int, int]:
    """`MAILWRIGHT_BENCH_SEGMENT_SIZE=1000000x20000000` (profiles x events) overrides."""
    value = os.environ.get("MAILWRIGHT_BENCH_SEGMENT_SIZE", "")
    if not value:
        return 1_000_000, 10_000_000
    profiles, _, events = value.lower().partition("x")
    return int(profiles), int(events)


def run(quick: bool) -> list[Result]:
    if quick:
        sizes, incremental, latency, runs = (10_000, 100_000), (2_000, 20_000), 100, 3
        throughput = (100, 500)
    else:
        sizes, incremental, latency, runs = _full_size(), (2_000, 200_000), 1000, 3
        throughput = (1_000, 5_000)
    return [
        *recompute_results(*sizes, runs=runs),
        incremental_result(*incremental),
        *latency_results(latency),
        *throughput_results(*throughput, postgres=True),
    ]
