"""A delivery worker killed mid-campaign: every recipient still gets exactly one message.

The worker runs as its own process (`mailwright serve delivery`) on a SQLite file shared
with the API process; it is SIGKILLed while it sends, and a second worker takes over once
the dead one's leases run out. The sink counts Message-IDs: a message handed to the relay
in the instant of the kill may arrive twice, but always with the same Message-ID (it is
derived from the send's idempotency key), so each recipient sees one message.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from delivery_fakes import World
from delivery_harness import (
    SECRET,
    campaign_state,
    eventually,
    message_ids_by_recipient,
    newsletter,
    settings,
    start,
    start_sink,
)

from mailwright.delivery.v1 import delivery_pb2 as pb

RECIPIENTS = 80
BATCH = 8


def worker(tmp_path: Path, grpc_port: int, sink_port: int, n: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MAILWRIGHT_DATABASE_URL": f"sqlite:///{tmp_path}/{{service}}.db",
        "MAILWRIGHT_DATA_DIR": str(tmp_path / f"worker{n}"),
        "MAILWRIGHT_AUTH_SECRET": SECRET,
        "MAILWRIGHT_GRPC_PORT": "0",
        "MAILWRIGHT_HTTP_PORT": "0",
        "MAILWRIGHT_BUS_URL": "memory://",
        "MAILWRIGHT_PLUGINS": "smtp",
        "MAILWRIGHT_ADDRESSES__PROFILE": f"127.0.0.1:{grpc_port}",
        "MAILWRIGHT_ADDRESSES__SEGMENT": f"127.0.0.1:{grpc_port}",
        "MAILWRIGHT_ADDRESSES__RENDER": f"127.0.0.1:{grpc_port}",
        "MAILWRIGHT_CONNECTOR_SMTP_HOST": "127.0.0.1",
        "MAILWRIGHT_CONNECTOR_SMTP_PORT": str(sink_port),
        "MAILWRIGHT_CONNECTOR_SMTP_SECURITY": "none",
        "MAILWRIGHT_CONNECTOR_SMTP_RATE_PER_SECOND": "20",
        "MAILWRIGHT_CONNECTOR_SMTP_BURST": "4",
        "MAILWRIGHT_SERVICES__DELIVERY__SEND_LEASE": "2s",
        "MAILWRIGHT_SERVICES__DELIVERY__POLL_INTERVAL": "50ms",
        "MAILWRIGHT_SERVICES__DELIVERY__BATCH_SIZE": str(BATCH),
        "MAILWRIGHT_LOG_LEVEL": "WARNING",
        "MAILWRIGHT_SHUTDOWN_GRACE": "2s",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "mailwright.cli", "serve", "delivery"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / f"worker{n}.log", "wb"),
    )


@pytest.mark.slow
async def test_a_worker_killed_mid_campaign_leaves_every_recipient_one_message(
    tmp_path: Path,
) -> None:
    world = World()
    people = [f"p{n:03d}" for n in range(RECIPIENTS)]
    for profile_id in people:
        world.person(profile_id, f"{profile_id}@example.com")
    world.segment("everyone", people)
    world.template("news")
    sink, _writer = await start_sink(tmp_path / "outbox")
    config = settings(tmp_path, sink.port, workers=False).model_copy(
        update={"database_url": f"sqlite:///{tmp_path}/{{service}}.db"}
    )
    api = await start(world, config)
    clients = api.clients()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        created = await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(
                parent="workspaces/acme", campaign_id="crash", campaign=newsletter()
            )
        )
        name = created.campaign.name
        await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name))
        first = worker(tmp_path, api.grpc_port, sink.port, 1)
        processes.append(first)
        await sink.wait_for(RECIPIENTS // 3, within=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = sink.received
        assert killed_at < RECIPIENTS, "the worker finished before it could be killed"

        processes.append(worker(tmp_path, api.grpc_port, sink.port, 2))

        async def sent() -> bool:
            return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

        await eventually(sent, within=90, step=0.2)
        await asyncio.sleep(0.3)
        by_recipient = message_ids_by_recipient(tmp_path / "outbox")
        assert sorted(by_recipient) == sorted(f"{p}@example.com" for p in people)
        assert all(len(ids) == 1 for ids in by_recipient.values())
        # Only what was in the provider's hands at the kill can have been handed over again.
        assert sink.received - RECIPIENTS <= BATCH
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        await clients.close()
        await api.stop()
        await sink.stop()
