"""Starting delivery (with the fake neighbours) on a Platform, and reading the sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from delivery_fakes import World, fake_definitions

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright_smtp.sink import EmlWriter, SmtpSink

SECRET = "d" * 48


class ScriptedWriter(EmlWriter):
    """The sink's writer, answering RCPT for some addresses with a scripted reply."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.rcpt_replies: dict[str, list[str]] = {}
        self.rcpt_delays: dict[str, float] = {}  # seconds before answering (a slow server)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.rcpt_delays:
            await asyncio.sleep(self.rcpt_delays[address])
        replies = self.rcpt_replies.get(address)
        reply = "250 OK"
        if replies:
            reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply


async def start_sink(directory: Path) -> tuple[SmtpSink, ScriptedWriter]:
    sink = SmtpSink(directory)
    writer = ScriptedWriter(directory)
    sink.writer = writer
    await sink.start()
    return sink, writer


def settings(tmp_path: Path, sink_port: int, *, workers: bool = True, **delivery: Any) -> Settings:
    section: dict[str, Any] = {
        "workers": workers,
        "poll_interval": "50ms",
        "send_lease": "3s",
        "timer_lease": "3s",
        "backoff_base": "100ms",
        "backoff_cap": "300ms",
        "max_attempts": 3,
        "transactional_wait": "5s",
        "consumer_block": "100ms",
        "consumer_retry_backoff": "100ms",
    }
    section.update(delivery)
    return Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=0,
        auth_secret=SECRET,
        shutdown_grace=2,
        bus_url=f"memory://{uuid.uuid4().hex}",
        services={"delivery": section},
        connectors={
            "smtp": {
                "host": "127.0.0.1",
                "port": sink_port,
                "security": "none",
                "rate_per_second": 500,
                "burst": 50,
                "timeout": "5s",
                "rate_limited_retry_after": "200ms",
            }
        },
    )  # type: ignore[call-arg]


async def start(world: World, config: Settings, *, fakes: bool = True) -> Platform:
    definitions = [*(fake_definitions(world) if fakes else []), *resolve_services(["delivery"])]
    platform = Platform(config, definitions)
    await platform.start()
    return platform


def sink_messages(directory: Path) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted(directory.glob("*.eml")):
        found.append(
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[arg-type]
        )
    return found  # type: ignore[return-value]


def message_ids_by_recipient(directory: Path) -> dict[str, set[str]]:
    result: dict[str, set[str]] = defaultdict(set)
    for message in sink_messages(directory):
        result[str(message["To"])].add(str(message["Message-ID"]))
    return dict(result)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10.0, step: float = 0.05
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


async def campaign_state(clients: Clients, name: str) -> int:
    response = await clients.delivery.GetCampaign(pb.GetCampaignRequest(name=name))
    return int(response.campaign.state)


def newsletter(segment: str = "everyone", template: str = "news", **extra: Any) -> pb.Campaign:
    campaign = pb.Campaign(
        display_name="Spring news",
        audience=pb.Audience(include_segments=[segment]),
        template=template,
        sender=pb.Sender(from_address="news@shop.example", from_name="Shop"),
        category=pb.CATEGORY_MARKETING,
        **extra,
    )
    return campaign
