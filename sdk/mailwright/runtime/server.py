"""Running services: one grpc.aio server (and the HTTP edge) for one or all services.

`Platform` is what `mailwright serve <service>` and `mailwright up` run, and what the test
suites start in-process: it connects the bus and the key-value store, builds each service,
serves them on one gRPC port with health checking and reflection, serves the HTTP edge on
another, and shuts down gracefully — NOT_SERVING first, then stop accepting, drain
in-flight calls within the grace period, stop consumers (finishing and acking what they
hold), close connections.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any

import grpc
import redis.asyncio as aioredis
import uvicorn
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from mailwright.errors import Unavailable
from mailwright.runtime import bus as bus_module
from mailwright.runtime import kv as kv_module
from mailwright.runtime.auth import ALL_WORKSPACES, TokenAuthority, load_or_create_secret
from mailwright.runtime.clients import Clients
from mailwright.runtime.interceptors import GatewayInterceptor
from mailwright.runtime.service import Runtime, ServiceApp, ServiceDefinition
from mailwright.runtime.settings import Settings
from mailwright.runtime.telemetry import setup_telemetry

log = logging.getLogger(__name__)


async def check_redis(url: str, what: str) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError, aioredis.TimeoutError) as error:
        raise Unavailable(f"{what} unreachable at {url}: {error}") from error
    finally:
        await client.aclose()


def _port_free(host: str, port: int) -> bool:
    if port == 0:
        return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host if host not in ("[::]", "::") else "0.0.0.0", port))  # noqa: S104
        except OSError:
            return False
    return True


class Platform:
    """Some or all Mailwright services in this process, on one gRPC port and one HTTP port."""

    def __init__(self, settings: Settings, definitions: Sequence[ServiceDefinition]) -> None:
        self.settings = settings
        self.definitions = list(definitions)
        self.apps: list[ServiceApp] = []
        self.runtime: Runtime | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.admin_token = ""
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._edge: uvicorn.Server | None = None
        self._edge_task: asyncio.Task[None] | None = None
        self._service_names: list[str] = []
        self._shutdown_telemetry: Callable[[], None] = lambda: None

    @property
    def service_names(self) -> list[str]:
        """Full names of the gRPC services served (without health and reflection)."""
        return list(self._service_names)

    async def start(self) -> None:
        settings = self.settings
        role = self.definitions[0].name if len(self.definitions) == 1 else "platform"
        self._shutdown_telemetry = setup_telemetry(settings, role)
        for url, what in (
            (settings.bus_url, "bus"),
            (settings.effective_kv_url, "key-value store"),
        ):
            if url.startswith(("redis://", "rediss://", "unix://")):
                await check_redis(url, what)
        for host, port, what in (
            (settings.grpc_host, settings.grpc_port, "gRPC"),
            (settings.http_host, settings.http_port, "HTTP"),
        ):
            if not _port_free(host, port):
                raise Unavailable(f"{what} port {port} on {host} is already in use")

        secret = load_or_create_secret(settings.auth_secret, settings.data_dir)
        authority = TokenAuthority(secret, settings.auth_previous_secrets)
        internal = authority.issue(ALL_WORKSPACES, ["*"], subject=f"mailwright-{role}")
        self.admin_token = internal
        bus = await bus_module.connect(
            settings.bus_url, namespace=settings.namespace, partitions=settings.bus_partitions
        )
        kv = await kv_module.connect(settings.effective_kv_url, namespace=settings.namespace)
        clients = Clients(settings, internal)
        self.runtime = Runtime(settings, bus, kv, authority, internal, clients)

        interceptors: list[Any] = [GatewayInterceptor(authority)]
        if settings.telemetry.exporter != "none":
            from opentelemetry.instrumentation.grpc import aio_server_interceptor

            interceptors.insert(0, aio_server_interceptor())  # type: ignore[no-untyped-call]
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),
                # Clients reconnect every few minutes, so new replicas behind a
                # Kubernetes Service get their share of long-lived connections.
                ("grpc.max_connection_age_ms", 300_000),
                ("grpc.max_connection_age_grace_ms", 30_000),
            ],
        )
        self._server = server
        self.apps = [definition.create(self.runtime) for definition in self.definitions]
        for app in self.apps:
            self._service_names.extend(app.add_to_server(server))
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for name in self._service_names:
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        reflection.enable_server_reflection(
            [
                *self._service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        self.grpc_port = self._bind(server, address)
        clients.use_port(self.grpc_port)
        await server.start()
        for app in self.apps:
            await app.start()
        await self._start_edge()
        for name in self._service_names:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "serving %s on gRPC port %d, HTTP port %d",
            ", ".join(d.name for d in self.definitions),
            self.grpc_port,
            self.http_port,
        )

    def _bind(self, server: grpc.aio.Server, address: str) -> int:
        tls = self.settings.tls
        if tls.enabled:
            if tls.key_file is None or tls.cert_file is None:
                raise Unavailable("MAILWRIGHT_TLS__CERT_FILE needs MAILWRIGHT_TLS__KEY_FILE")
            credentials = grpc.ssl_server_credentials(
                [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
                root_certificates=tls.client_ca_file.read_bytes() if tls.client_ca_file else None,
                require_client_auth=tls.mutual,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
        if port == 0:
            raise Unavailable(f"could not bind the gRPC server to {address}")
        return port

    async def _start_edge(self) -> None:
        routes: list[BaseRoute] = []
        middleware: list[Middleware] = []
        for app in self.apps:
            routes.extend(app.http_routes())
        if not routes:
            return
        edge = Starlette(routes=routes, middleware=middleware)
        config = uvicorn.Config(
            edge,
            host=self.settings.http_host,
            port=self.settings.http_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=True,
            forwarded_allow_ips=list(self.settings.trusted_proxies),
        )
        self._edge = uvicorn.Server(config)
        self._edge_task = asyncio.create_task(self._edge.serve(), name="http-edge")
        while not self._edge.started:
            if self._edge_task.done():
                error = self._edge_task.exception()
                raise Unavailable(
                    f"HTTP edge could not start on port {self.settings.http_port}: {error}"
                )
            await asyncio.sleep(0.01)
        sockets = [s for server in self._edge.servers for s in server.sockets]
        self.http_port = sockets[0].getsockname()[1] if sockets else self.settings.http_port

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace.total_seconds()
        await self._health.enter_graceful_shutdown()
        if self._edge is not None and self._edge_task is not None:
            self._edge.should_exit = True
            with suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._edge_task, timeout=grace)
        if self._server is not None:
            await self._server.stop(grace)
        for app in reversed(self.apps):
            try:
                await app.stop()
            except Exception:
                log.exception("stopping %s failed", app.name)
        if self.runtime is not None:
            await self.runtime.clients.close()
            await self.runtime.bus.close()
            await self.runtime.kv.close()
            for database in self.runtime.databases.values():
                database.close()
        self._shutdown_telemetry()

    async def __aenter__(self) -> Platform:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def clients(self, token: str | None = None) -> Clients:
        """Clients for this platform's gRPC port (for tests and tools)."""
        return Clients(self.settings, token or self.admin_token, grpc_port=self.grpc_port)
