"""The ingest service started in-process on free ports, and a tap on the bus it feeds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mailwright.common.v1 import event_pb2
from mailwright.runtime.bus import Bus, ConsumerOptions, Message, Subscription
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings

from .proxy import TcpProxy

EVENT_TOPICS = (
    "events.track",
    "events.identify",
    "events.page",
    "events.alias",
    "events.commerce",
    "events.email",
)
WORKSPACE = "acme"
PARENT = f"workspaces/{WORKSPACE}"
SIGNING_KEY = "k1:" + "t" * 40


# Quick reads, but leases renewed at the default pace: a stop then nearly always finds the
# lease task asleep. (Until the bus's fix for cancellations redis-py loses on Python 3.11
# is merged, a stop that cancels a renewal in flight can wait forever.)
TAP_OPTIONS = ConsumerOptions(block=0.05)


class Tap:
    """Everything published on the event topics, as a consumer group of its own sees it."""

    def __init__(self, bus: Bus) -> None:
        self.messages: list[Message] = []
        self._subscription: Subscription = bus.subscribe(
            list(EVENT_TOPICS),
            f"tap-{uuid.uuid4().hex[:8]}",
            self._record,
            options=TAP_OPTIONS,
        )

    async def _record(self, message: Message) -> None:
        self.messages.append(message)

    async def start(self) -> None:
        await self._subscription.start()

    async def stop(self) -> None:
        await self._subscription.stop()

    def events(self) -> list[event_pb2.Event]:
        return [event_pb2.Event.FromString(m.value) for m in self.messages]

    async def wait(self, count: int) -> list[event_pb2.Event]:
        """The first `count` events, once that many have arrived (within 5 s)."""
        deadline = asyncio.get_running_loop().time() + 5.0
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.messages)} events arrived, {count} expected")
            await asyncio.sleep(0.02)
        return self.events()[:count]

    async def quiet(self, settle: float = 0.3) -> list[event_pb2.Event]:
        """What arrived once nothing more arrives for `settle` seconds."""
        seen = -1
        while seen != len(self.messages):
            seen = len(self.messages)
            await asyncio.sleep(settle)
        return self.events()


@dataclass
class Ingest:
    """A running ingest service: its platform, gRPC clients, HTTP client and bus tap."""

    platform: Platform
    clients: Clients
    http: httpx.AsyncClient
    tap: Tap
    stopped: bool = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.platform.http_port}"

    def token(self, *scopes: str, workspace: str = WORKSPACE) -> str:
        assert self.platform.runtime is not None
        return self.platform.runtime.authority.issue(workspace, scopes or ["*"])

    def app(self) -> Any:
        return self.platform.apps[0]

    async def stop(self) -> None:
        """Stop the tap, the clients and the platform, once."""
        if self.stopped:
            return
        self.stopped = True
        await self.tap.stop()
        await self.http.aclose()
        await self.clients.close()
        await self.platform.stop()


def ingest_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "grpc_port": 0,
        "http_port": 0,
        "auth_secret": "s" * 48,
        "shutdown_grace": 2,
        "bus_url": f"memory://ingest-{uuid.uuid4().hex[:10]}",
        "signing_keys": [SIGNING_KEY],
    }
    values.update(overrides)
    return Settings(**values)


StartIngest = Callable[..., Any]


@pytest.fixture
async def start_ingest(tmp_path: Path) -> AsyncIterator[StartIngest]:
    """Start an ingest service with settings overrides; stopped after the test."""
    started: list[Ingest] = []

    async def start(**overrides: Any) -> Ingest:
        settings = ingest_settings(tmp_path / f"p{len(started)}", **overrides)
        platform = Platform(settings, resolve_services(["ingest"]))
        await platform.start()
        assert platform.runtime is not None
        token = platform.runtime.authority.issue(WORKSPACE, ["*"])
        tap = Tap(platform.runtime.bus)
        await tap.start()
        running = Ingest(
            platform=platform,
            clients=platform.clients(token),
            http=httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}"),
            tap=tap,
        )
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()


@pytest.fixture
async def ingest(start_ingest: StartIngest) -> Ingest:
    """Ingest on SQLite and the in-memory bus."""
    running: Ingest = await start_ingest()
    return running


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields named by the BadRequest details of an INVALID_ARGUMENT status."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error.details()
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields.extend(v.field for v in bad.field_violations)
    return fields


def retry_delay(error: grpc.aio.AioRpcError) -> float | None:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay: float = info.retry_delay.ToTimedelta().total_seconds()
            return delay
    return None


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[TcpProxy]:
    """A proxy in front of Redis that a test can take down. Request it before
    `start_ingest`, so that it is torn down after the services that use it."""
    running = TcpProxy(redis_url)
    await running.start()
    yield running
    running.come_back()
    await running.stop()
