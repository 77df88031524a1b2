"""Audience sync through delivery's runner, against the Mailchimp connector called
directly, in the same run.

- **Runner**: members/s from pending transitions (`delivery_audience_pending`, SQLite) to
  tagged members of the fake Mailchimp audience: the runner leases each change (500
  members), reads the members from the real profile service (BatchGetProfiles over
  gRPC), calls `MailchimpAudienceSync.sync`, and acknowledges (members, failures, rows).
- **Bookkeeping alone**: members/s of the runner's own durable steps on SQLite — lease a
  change of pending rows, acknowledge it (members, failures, totals, rows deleted) —
  without the profile read and the provider call, against the same baseline.
- **Profile reads**: members/s of the runner's `BatchGetProfiles` calls alone (the same
  members, before the runner is timed) — what bounds the runner here.
- **Baseline**: members/s of `MailchimpAudienceSync.sync` called directly with the same
  members in changes of the same size, against a fresh fake of its own.

Both go through Mailchimp batch operations (changes above `batch_threshold`); the fake
servers run in a thread of their own. The people are made beforehand by identify events
through the profile service (not measured).

--quick: 1,000 members (5,000 in the full run); the three figures and their baseline are
the same run's, as in the full one.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Result
from mailwright.connectors import AudienceChange, AudienceMember, load_config
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Outgoing
from mailwright.runtime.db import Database
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright.testing.fakes import FakeServer
from mailwright_delivery.app import MIGRATIONS, DeliveryApp
from mailwright_delivery.audiences import Destination, DestinationState, Op, SegmentMapping
from mailwright_delivery.store import DeliveryStore
from mailwright_delivery.store.audience_queries import Acknowledged, Transition
from mailwright_mailchimp.audience import MailchimpAudienceSync
from mailwright_mailchimp.config import MailchimpConfig
from mailwright_mailchimp.fake import FakeMailchimp
from mailwright_profile.simulate import identify

WS = "bench"
CHANGE = 500


def connector_values(fake: FakeMailchimp, server: FakeServer) -> dict[str, Any]:
    return {
        "api_key": fake.api_key,
        "list_id": fake.list_id,
        "base_url": server.url + "/3.0",
        "batch_poll_interval": "50ms",
    }


def settings(root: Path, fake: FakeMailchimp, server: FakeServer) -> Settings:
    return Settings(
        data_dir=root / "data",
        grpc_port=0,
        http_port=0,
        auth_secret="b" * 48,
        shutdown_grace=timedelta(seconds=2),
        bus_url=f"memory://{uuid.uuid4().hex}",
        plugins=["mailchimp"],
        log_level="WARNING",
        services={
            # The runner is driven by the benchmark, not by the workers' loops.
            "delivery": {"workers": False, "audience_batch_size": CHANGE},
            "profile": {"outbox_interval": 0.05, "outbox_grace": 0.0},
        },
        connectors={"mailchimp": connector_values(fake, server)},
    )


async def make_people(platform: Platform, count: int) -> list[str]:
    assert platform.runtime is not None
    bus = platform.runtime.bus
    events = [
        identify(
            workspace=WS,
            user_id=f"u-{n}",
            traits={"email": f"p{n}@example.com", "first_name": f"P{n}"},
            message_id=f"bench-{n}",
        )
        for n in range(count)
    ]
    await bus.publish_many(
        [Outgoing(f"events.{e.family}", f"{WS}:{e.user_id}", e.SerializeToString()) for e in events]
    )
    ids: list[str] = []
    for _ in range(600):
        ids = await profile_ids(platform)
        if len(ids) == count:
            return ids
        await asyncio.sleep(0.1)
    raise RuntimeError(f"only {len(ids)} of {count} profiles were made")


async def profile_ids(platform: Platform) -> list[str]:
    clients = platform.clients()
    try:
        found: list[str] = []
        token = ""
        while True:
            page = await clients.profile.ListProfiles(
                profile_pb2.ListProfilesRequest(
                    parent=f"workspaces/{WS}", page_size=1000, page_token=token
                )
            )
            found += [p.profile_id for p in page.profiles]
            token = page.next_page_token
            if not token:
                return found
    finally:
        await clients.close()


async def through_runner(root: Path, count: int) -> tuple[float, float, list[AudienceMember]]:
    fake = FakeMailchimp()
    with FakeServer(fake.app()) as server:
        platform = Platform(settings(root, fake, server), resolve_services(["profile", "delivery"]))
        await platform.start()
        try:
            ids = await make_people(platform, count)
            app = next(a for a in platform.apps if isinstance(a, DeliveryApp))
            now = datetime.now(UTC)
            destination = Destination(
                WS,
                "bench",
                "",
                "mailchimp",
                "mailchimp",
                (SegmentMapping("vip", "VIP"),),
                ("first_name",),
                DestinationState.ACTIVE,
                now,
                now,
            )
            await app.db.run(app.store.create_destination, destination)
            transitions = [Transition("bench", "vip", p, Op.ADD, now) for p in ids]
            await app.db.run(app.store.enqueue, WS, transitions, now)
            read = time.perf_counter()
            directory = app.audience_runner.directory
            members = await directory.audience_members(WS, ids, ("first_name",))
            reads = count / (time.perf_counter() - read)
            started = time.perf_counter()
            while await app.audience_runner.tick():
                pass
            elapsed = time.perf_counter() - started
            tagged = len(fake.tagged("VIP"))
            if tagged != count:
                raise RuntimeError(f"the runner tagged {tagged} of {count} members")
        finally:
            await platform.stop()
    return count / elapsed, reads, list(members.values())


async def directly(members: list[AudienceMember]) -> float:
    fake = FakeMailchimp()
    with FakeServer(fake.app()) as server:
        config = load_config(
            "mailchimp", MailchimpConfig, connector_values(fake, server), environ={}
        )
        sync = MailchimpAudienceSync(config)
        try:
            started = time.perf_counter()
            for start in range(0, len(members), CHANGE):
                await sync.sync(
                    AudienceChange(
                        WS, "vip", "VIP", uuid.uuid4().hex, tuple(members[start : start + CHANGE])
                    )
                )
            elapsed = time.perf_counter() - started
        finally:
            await sync.aclose()
        if len(fake.tagged("VIP")) != len(members):
            raise RuntimeError("the direct sync did not tag every member")
    return len(members) / elapsed


def bookkeeping(root: Path, members: list[AudienceMember]) -> float:
    db = Database(f"sqlite:///{root / 'bookkeeping.db'}", service="delivery", migrations=MIGRATIONS)
    db.migrate()
    store = DeliveryStore(db.engine)
    now = datetime.now(UTC)
    store.create_destination(
        Destination(
            WS,
            "bench",
            "",
            "mailchimp",
            "mailchimp",
            (SegmentMapping("vip", "VIP"),),
            (),
            DestinationState.ACTIVE,
            now,
            now,
        )
    )
    by_id = {m.profile_id: m for m in members}
    store.enqueue(WS, [Transition("bench", "vip", p, Op.ADD, now) for p in by_id], now)
    started = time.perf_counter()
    while True:
        claim = store.claim_change(
            WS, "bench", "vip", uuid.uuid4().hex, CHANGE, now, now + timedelta(minutes=5)
        )
        if claim is None:
            break
        added = [by_id[p] for p in claim.ops]
        store.acknowledge(claim, Acknowledged(added, [], []), now)
    elapsed = time.perf_counter() - started
    db.close()
    return len(members) / elapsed


def run(quick: bool) -> list[Result]:
    count = 1_000 if quick else 5_000
    with tempfile.TemporaryDirectory() as directory:
        runner, reads, members = asyncio.run(through_runner(Path(directory), count))
        books = bookkeeping(Path(directory), members)
    direct = asyncio.run(directly(members))
    return [
        Result(
            name=f"audience sync through delivery's runner ({count} members, mailchimp)",
            value=runner,
            unit="members/s",
            baseline=direct,
            baseline_unit="members/s MailchimpAudienceSync.sync called directly",
            ratio=runner / direct,
            goal=">= 0.7",
        ),
        Result(
            name=f"audience runner bookkeeping alone: lease + acknowledge ({count} members)",
            value=books,
            unit="members/s",
            baseline=direct,
            baseline_unit="members/s MailchimpAudienceSync.sync called directly",
            ratio=books / direct,
            goal=">= 5",
        ),
        Result(
            name="profile reads the runner makes (BatchGetProfiles, 1,000 a call)",
            value=reads,
            unit="members/s",
            baseline=direct,
            baseline_unit="members/s MailchimpAudienceSync.sync called directly",
            ratio=reads / direct,
            goal="(context)",
        ),
    ]
