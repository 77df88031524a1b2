"""A running Mailwright in the test's process, for end-to-end tests of plugins.

`mailwright_platform` starts ingest (the service a source or webhook feeds) on a gRPC port
of its own (port 0), with SQLite under the test's temporary directory and an in-memory
bus, and watches every `events.*` topic:

    async def test_import_reaches_the_bus(mailwright_platform, ...):
        token = mailwright_platform.token("acme", ["events:write"])
        # … run a sync against mailwright_platform.address with that token …
        events = await mailwright_platform.wait_for_events(30)
        assert {e.source for e in events} == {"acme-shop"}

`start_mailwright(services=[...])` starts other sets of services.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from mailwright.common.v1.event_pb2 import Event
from mailwright.runtime.bus import Message, Subscription
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings

EVENT_TOPICS = (
    "events.track",
    "events.identify",
    "events.page",
    "events.alias",
    "events.commerce",
    "events.email",
)


class RunningMailwright:
    """Services started in this process, and the events they published."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.events: list[Event] = []
        self._subscription: Subscription | None = None
        self._arrived = asyncio.Event()

    @property
    def address(self) -> str:
        """The gRPC address of the services: `127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.platform.grpc_port}"

    @property
    def settings(self) -> Settings:
        return self.platform.settings

    def token(self, workspace: str = "acme", scopes: Sequence[str] = ("*",)) -> str:
        """A bearer token for `workspace` with `scopes` (all by default)."""
        runtime = self.platform.runtime
        assert runtime is not None, "the platform is not started"
        return runtime.authority.issue(workspace, list(scopes), subject="test")

    def clients(self, token: str | None = None) -> Clients:
        """Typed gRPC clients for the services (close them with `await clients.close()`)."""
        return self.platform.clients(token)

    async def wait_for_events(self, count: int, within: float = 10.0) -> list[Event]:
        """The events published on `events.*` once there are at least `count` of them."""
        deadline = time.monotonic() + within
        while len(self.events) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{len(self.events)} events were published within {within}s, not {count}"
                )
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.2))
        return list(self.events)

    async def _watch(self) -> None:
        runtime = self.platform.runtime
        assert runtime is not None

        async def keep(message: Message) -> None:
            self.events.append(Event.FromString(message.value))
            self._arrived.set()

        self._subscription = runtime.bus.subscribe(EVENT_TOPICS, "mailwright-testing", keep)
        await self._subscription.start()

    async def _stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.stop()
        await self.platform.stop()


def platform_settings(directory: Path, **overrides: object) -> Settings:
    """Settings for a platform of the test's own: ports 0, SQLite in `directory`, a memory
    bus no other test shares."""
    values: dict[str, object] = {
        "data_dir": directory,
        "grpc_port": 0,
        "http_port": 0,
        "auth_secret": secrets.token_urlsafe(36),
        "database_url": "",
        "bus_url": f"memory://kit-{uuid.uuid4().hex[:12]}",
        "kv_url": "",
        "namespace": "mailwright",
        "shutdown_grace": 2,
        "addresses": {},
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


StartMailwright = Callable[..., Awaitable[RunningMailwright]]


@asynccontextmanager
async def mailwright_starter(directory: Path) -> AsyncIterator[StartMailwright]:
    """Start services in this process with the yielded function; all stop on exit.

    The `start_mailwright` fixture (the SDK's pytest plugin) is this, per test."""
    running: list[RunningMailwright] = []

    async def start(services: Sequence[str] = ("ingest",), **settings: object) -> RunningMailwright:
        platform = Platform(
            platform_settings(directory / f"mailwright-{len(running)}", **settings),
            resolve_services(services),
        )
        await platform.start()
        started = RunningMailwright(platform)
        running.append(started)
        await started._watch()
        return started

    try:
        yield start
    finally:
        for started in reversed(running):
            await started._stop()


__all__ = [
    "RunningMailwright",
    "StartMailwright",
    "mailwright_starter",
    "platform_settings",
]
