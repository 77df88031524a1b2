"""Fake provider servers for connector tests: your Starlette app on a real local port.

A connector is tested against a local HTTP server that behaves like the provider's
documented API (endpoints, payload shapes, pagination, error bodies). `FakeServer` runs
any ASGI app with uvicorn on 127.0.0.1, port 0, in a thread of its own (so it serves
while the test's event loop is busy, and from synchronous code and benchmarks too),
records every request, and injects faults in front of the app:

    app = Starlette(routes=[Route("/contacts", list_contacts)])
    with FakeServer(app) as server:                       # or the `fake_server` fixture
        server.fail(Fault(429, headers={"Retry-After": "2"}, body={"error": "slow down"}))
        ...                                               # connector at server.url
        assert server.requests[-1].path == "/contacts"

The SDK's pytest plugin turns `fake_servers` into the `fake_server` fixture and
`record_waits` into `recorded_waits`, which makes `mailwright.connectors.http` record the
waits it would sleep instead of sleeping them, so a test of "honours Retry-After: 30"
takes no time and checks the 30.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from mailwright.connectors import http as connector_http
from mailwright.connectors.webhook import Headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class RecordedRequest:
    """A request the fake server received, as it arrived."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Fault:
    """An answer the fake gives instead of the app's, `times` times (None: until cleared).

    `method` and `path` (a prefix) narrow which requests it hits; `body` is bytes, text,
    or anything JSON-serialisable (sent as `application/json`).
    """

    status: int
    body: bytes | str | Mapping[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    times: int | None = 1
    method: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or path.startswith(self.path)

    def encoded(self) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        if isinstance(self.body, bytes):
            data = self.body
        elif isinstance(self.body, str):
            data = self.body.encode()
        else:
            data = json.dumps(self.body).encode()
            if not any(name == b"content-type" for name, _ in headers):
                headers.append((b"content-type", b"application/json"))
        return data, headers


class _Uvicorn(uvicorn.Server):
    """uvicorn, stopped by an event instead of its 0.1 s polling (tests stop many)."""

    _stopping: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if not self.should_exit:
            await self._stopping.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's own shutdown sleeps 0.1 s for connections to drain; a fake need not.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0)
        for task in list(self.server_state.tasks):
            task.cancel()

    def request_stop(self) -> None:
        # The test is over: no draining of connections still open.
        self.should_exit = True
        self.force_exit = True
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)


class FakeServer:
    """An ASGI app served on 127.0.0.1 (port 0) in a thread, with a request log and faults."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL, `http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        """The requests whose path starts with `path` (and of `method`, if given)."""
        return [
            r
            for r in self.requests
            if r.path.startswith(path) and (method is None or r.method == method.upper())
        ]

    def fail(self, fault: Fault) -> None:
        """Answer the next matching requests with `fault` (after faults added earlier)."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi,
            interface="asgi3",
            proxy_headers=False,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            server_header=False,
            date_header=False,
        )
        server = _Uvicorn(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"fake-{self.port}", daemon=True
        )
        self._thread.start()
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"fake server on port {self.port} did not start")
            threading.Event().wait(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.request_stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the ASGI wrapper: record, then a fault or the app ----------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, scope["query_string"].decode(), headers, body)
            )
        fault = self._take_fault(method, path)
        if fault is not None:
            data, fault_headers = fault.encoded()
            await send(
                {"type": "http.response.start", "status": fault.status, "headers": fault_headers}
            )
            await send({"type": "http.response.body", "body": data})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@contextmanager
def fake_servers() -> Iterator[Callable[[ASGIApp], FakeServer]]:
    """Start fake servers with the yielded function; all are stopped on exit.

    The `fake_server` fixture (the SDK's pytest plugin) is this, per test."""
    started: list[FakeServer] = []

    def start(app: ASGIApp) -> FakeServer:
        server = FakeServer(app).start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# -- waits ----------------------------------------------------------------------------


@dataclass
class RecordedWaits:
    """The waits `mailwright.connectors.http` asked for, in seconds, in order."""

    seconds: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds)


def record_waits(monkeypatch: pytest.MonkeyPatch) -> RecordedWaits:
    """Record the connector HTTP helper's waits (backoff, Retry-After, pacing) instead of
    sleeping them; each still yields to the event loop once. The `recorded_waits` fixture
    (the SDK's pytest plugin) is this, per test."""
    waits = RecordedWaits()

    async def record(seconds: float) -> None:
        waits.seconds.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(connector_http, "sleep", record)
    return waits


# -- small helpers for writing fakes ---------------------------------------------------


def encode_cursor(value: str) -> str:
    """An opaque pagination cursor for `value` (URL-safe base64, as providers do)."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str | None:
    """The value inside `encode_cursor`'s token, or None when it is not one (answer 400)."""
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
