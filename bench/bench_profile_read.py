"""The profile service's batch read (`BatchGetProfiles`) against a bare read of the same rows.

- value: profiles/s of `ProfileServicer.BatchGetProfiles` called in process with 1,000
  names (the service's maximum) and its response serialized, as gRPC would: the store's
  set-based read (`profile_views`), every computed trait evaluated from the aggregates at
  the time of reading, traits and computed traits as Structs, identities and consents;
- baseline: profiles/s of a bare SQLAlchemy Core `SELECT` of the same profile rows and
  of their identities (two queries, `IN` lists of 500 ids), every row fetched and its
  JSON columns decoded — what any read of these profiles has to pay.

People come from `mailwright_profile.simulate.event_stream` (a shop's traffic over the
60 days before now: views, pages, carts, orders, email sends and opens), applied through
the store's batch apply, so the aggregates are those of real use. The same run reports,
for information, `GetProfile` one id at a time against the same baseline. Goal ≥ 0.4:
see docs/profiles.md (Performance, reading profiles) for why.

SQLite runs in a temporary directory; PostgreSQL on MAILWRIGHT_BENCH_POSTGRES_URL
(default: the test server), in a fresh schema dropped afterwards. Each figure is the
median ratio of five rounds (two when quick, and `GetProfile` on 50 ids instead of
200), since the machine may be shared.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import Result
from bench.scratch import postgres_schemas
from mailwright.names import resource_name
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.db import Database
from mailwright.runtime.requests import RequestLog
from mailwright.testing.servers import POSTGRES_ADMIN_URL
from mailwright_profile import convert
from mailwright_profile.api import MAX_BATCH_GET, ProfileServicer
from mailwright_profile.app import MIGRATIONS
from mailwright_profile.events import IncomingEvent, read_event
from mailwright_profile.outbox import Outbox
from mailwright_profile.profiles import Profiles
from mailwright_profile.simulate import event_stream
from mailwright_profile.store import ProfileStore
from mailwright_profile.store import tables as t

POSTGRES_URL = os.environ.get("MAILWRIGHT_BENCH_POSTGRES_URL", POSTGRES_ADMIN_URL)
WS = "acme"
APPLY_BATCH = 500
SINGLE_READS = 200


def store_of(url: str) -> ProfileStore:
    db = Database(url, service="profile", migrations=MIGRATIONS)
    db.migrate()
    return ProfileStore(db, convert.encode_changed, convert.encode_deleted, convert.email_hashes)


def traffic(events: int, people: int) -> list[IncomingEvent]:
    """A shop's traffic of the last 60 days, as the store takes it (made once a run: both
    databases get the same events)."""
    now = datetime.now(UTC)
    stream = event_stream(
        events, people=people, workspace=WS, seed=5, start=now - timedelta(days=60), days=59
    )
    return [read_event(e) for e in stream]


def fill(store: ProfileStore, incoming: list[IncomingEvent]) -> list[str]:
    """Apply `incoming`; the live profiles' ids, most active first."""
    now = datetime.now(UTC)
    for start in range(0, len(incoming), APPLY_BATCH):
        store.apply_batch(incoming[start : start + APPLY_BATCH], now)
    with store.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.profiles.c.profile_id)
            .where(t.profiles.c.workspace == WS, t.profiles.c.merged_into.is_(None))
            .order_by(t.profiles.c.version.desc(), t.profiles.c.profile_id)
        ).all()
    return [str(row.profile_id) for row in rows]


def servicer_of(store: ProfileStore) -> ProfileServicer:
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731
    profiles = Profiles(store, Outbox(None, store, clock), clock)  # type: ignore[arg-type]
    return ProfileServicer(profiles, RequestLog(store.db, t.request_log), clock)


async def batch_get(servicer: ProfileServicer, ids: list[str]) -> float:
    """Profiles/s of BatchGetProfiles, its response serialized."""
    request = profile_pb2.BatchGetProfilesRequest(
        parent=f"workspaces/{WS}", names=[resource_name(WS, "profiles", p) for p in ids]
    )
    started = time.perf_counter()
    response = await servicer.BatchGetProfiles(request, None)  # type: ignore[arg-type]
    response.SerializeToString()
    elapsed = time.perf_counter() - started
    if len(response.profiles) != len(ids):
        raise RuntimeError(f"BatchGetProfiles found {len(response.profiles)} of {len(ids)}")
    return len(ids) / elapsed


async def get_one_by_one(servicer: ProfileServicer, ids: list[str]) -> float:
    """Profiles/s of GetProfile, one call per id, each response serialized."""
    started = time.perf_counter()
    for profile_id in ids:
        request = profile_pb2.GetProfileRequest(name=resource_name(WS, "profiles", profile_id))
        response = await servicer.GetProfile(request, None)  # type: ignore[arg-type]
        response.SerializeToString()
    return len(ids) / (time.perf_counter() - started)


def bare_select(engine: sa.Engine, ids: list[str]) -> float:
    """Profiles/s of fetching the same profile and identity rows, JSON decoded."""
    started = time.perf_counter()
    fetched = 0
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                sa.select(t.profiles).where(
                    t.profiles.c.workspace == WS, t.profiles.c.profile_id.in_(chunk)
                )
            ).all()
            conn.execute(
                sa.select(t.identities).where(
                    t.identities.c.workspace == WS, t.identities.c.profile_id.in_(chunk)
                )
            ).all()
            fetched += len(rows)
    elapsed = time.perf_counter() - started
    if fetched != len(ids):
        raise RuntimeError(f"the bare select found {fetched} of {len(ids)}")
    return len(ids) / elapsed


def _median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    return sorted(pairs, key=lambda p: p[0] / p[1])[len(pairs) // 2]


def measure(
    name: str, url: str, incoming: list[IncomingEvent], rounds: int, singles: int = SINGLE_READS
) -> list[Result]:
    events = len(incoming)
    store = store_of(url)
    try:
        ids = fill(store, incoming)[:MAX_BATCH_GET]
        if len(ids) < MAX_BATCH_GET:
            raise RuntimeError(f"only {len(ids)} profiles were made")
        servicer = servicer_of(store)
        batch: list[tuple[float, float]] = []
        single: list[tuple[float, float]] = []
        asyncio.run(batch_get(servicer, ids))  # warm up caches and connections
        bare_select(store.db.engine, ids)
        for _ in range(rounds):
            base = bare_select(store.db.engine, ids)
            batch.append((asyncio.run(batch_get(servicer, ids)), base))
            single.append((asyncio.run(get_one_by_one(servicer, ids[:singles])), base))
    finally:
        store.db.close()
    value, base = _median(batch)
    one, one_base = _median(single)
    label = f"{len(ids):,} profiles of {events:,} events, median of {rounds}"
    return [
        Result(
            name=f"profile BatchGetProfiles, 1,000 a call ({name}; {label})",
            value=value,
            unit="profiles/s",
            baseline=base,
            baseline_unit="profiles/s bare SELECT of the same rows, JSON decoded",
            ratio=value / base,
            goal=">= 0.4",
        ),
        Result(
            name=f"profile GetProfile, one a call ({name}; info)",
            value=one,
            unit="profiles/s",
            baseline=one_base,
            baseline_unit="profiles/s bare SELECT of the same rows, JSON decoded",
            ratio=one / one_base,
            goal="(information)",
        ),
    ]


@contextmanager
def _postgres_url() -> Iterator[str]:
    with postgres_schemas(POSTGRES_URL) as (url,):
        yield url


def run(quick: bool) -> list[Result]:
    events, people, rounds = (4_000, 1_200, 2) if quick else (30_000, 1_500, 5)
    singles = 50 if quick else SINGLE_READS
    incoming = traffic(events, people)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'read.db'}"
        results += measure("SQLite", url, incoming, rounds, singles)
    try:
        with _postgres_url() as pg:
            results += measure("PostgreSQL", pg, incoming, rounds, singles)
    except sa.exc.OperationalError as error:
        print(f"PostgreSQL not reachable, its figure is left out: {error.orig}")
    return results


def profiled(url: str, events: int, people: int) -> Any:
    """A filled store and 1,000 ids, for a profiler (see docs/profiles.md, performance)."""
    store = store_of(url)
    return store, servicer_of(store), fill(store, traffic(events, people))[:MAX_BATCH_GET]


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
