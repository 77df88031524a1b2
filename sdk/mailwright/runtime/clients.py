"""Typed async clients for the five services, as other services and tools call them.

One channel per address, shared; deadlines and retries come from a gRPC service config
(UNAVAILABLE is retried with exponential backoff; every method has a deadline except the
membership stream); the bearer token rides on every call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc

from mailwright.delivery.v1 import delivery_pb2_grpc
from mailwright.ingest.v1 import ingest_pb2_grpc
from mailwright.profile.v1 import profile_pb2_grpc
from mailwright.render.v1 import render_pb2_grpc
from mailwright.runtime.settings import Settings
from mailwright.segment.v1 import segment_pb2_grpc

SERVICE_FULL_NAMES: dict[str, str] = {
    "ingest": "mailwright.ingest.v1.IngestService",
    "profile": "mailwright.profile.v1.ProfileService",
    "segment": "mailwright.segment.v1.SegmentService",
    "render": "mailwright.render.v1.RenderService",
    "delivery": "mailwright.delivery.v1.DeliveryService",
}

_RETRY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config(timeout_seconds: float = 15.0) -> str:
    """The gRPC service config: deadlines and retry policy for every Mailwright method."""
    method_config: list[dict[str, Any]] = [
        {
            "name": [{"service": name} for name in SERVICE_FULL_NAMES.values()],
            "timeout": f"{timeout_seconds}s",
            "retryPolicy": _RETRY,
        },
        {
            "name": [
                {"service": SERVICE_FULL_NAMES["segment"], "method": "WatchMembership"},
            ],
            "retryPolicy": _RETRY,
        },
        {
            "name": [
                {"service": SERVICE_FULL_NAMES["render"], "method": "RenderBatch"},
                {"service": SERVICE_FULL_NAMES["profile"], "method": "ResolveRecords"},
                {"service": SERVICE_FULL_NAMES["ingest"], "method": "IngestBatch"},
            ],
            "timeout": f"{timeout_seconds * 4}s",
            "retryPolicy": _RETRY,
        },
    ]
    return json.dumps({"methodConfig": method_config})


class _BearerToken:
    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._header)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# grpc.aio files an interceptor under the first call kind it implements only, so the token
# needs one interceptor per kind (unary calls, and server streams such as WatchMembership).
class _UnaryBearerToken(_BearerToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


class _StreamBearerToken(_BearerToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_token(details), request)


def open_channel(
    address: str,
    token: str,
    settings: Settings,
    *,
    extra_interceptors: Sequence[Any] = (),
) -> grpc.aio.Channel:
    options = [
        ("grpc.service_config", service_config()),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
    ]
    interceptors = [_UnaryBearerToken(token), _StreamBearerToken(token), *extra_interceptors]
    if settings.telemetry.exporter != "none":
        # Client spans, and the trace context in the call's metadata: the callee's server
        # span joins the caller's trace (as the server interceptor does on the other side).
        from opentelemetry.instrumentation.grpc import aio_client_interceptors

        interceptors = [*aio_client_interceptors(), *interceptors]  # type: ignore[no-untyped-call]
    if settings.tls.enabled or settings.tls.ca_file:
        root = settings.tls.ca_file.read_bytes() if settings.tls.ca_file else None
        key = settings.tls.key_file.read_bytes() if settings.tls.key_file else None
        cert = settings.tls.cert_file.read_bytes() if settings.tls.cert_file else None
        credentials = grpc.ssl_channel_credentials(root, key, cert)
        return grpc.aio.secure_channel(address, credentials, options, interceptors=interceptors)
    return grpc.aio.insecure_channel(address, options, interceptors=interceptors)


class Clients:
    """Stubs for every service, reached at the addresses the settings give."""

    def __init__(self, settings: Settings, token: str, *, grpc_port: int | None = None) -> None:
        self._settings = settings
        self._token = token
        self._grpc_port = grpc_port
        self._channels: dict[str, grpc.aio.Channel] = {}

    def use_port(self, port: int) -> None:
        """Reach services not listed in `addresses` at this port (known once bound)."""
        self._grpc_port = port

    def address(self, service: str) -> str:
        if service in self._settings.addresses:
            return self._settings.addresses[service]
        host = self._settings.grpc_host
        if host in ("0.0.0.0", "[::]", "::"):  # noqa: S104 (a bind address, not a bind)
            host = "127.0.0.1"
        return f"{host}:{self._grpc_port or self._settings.grpc_port}"

    def channel(self, service: str) -> grpc.aio.Channel:
        address = self.address(service)
        if address not in self._channels:
            self._channels[address] = open_channel(address, self._token, self._settings)
        return self._channels[address]

    @property
    def ingest(self) -> ingest_pb2_grpc.IngestServiceAsyncStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channel("ingest"))

    @property
    def profile(self) -> profile_pb2_grpc.ProfileServiceAsyncStub:
        return profile_pb2_grpc.ProfileServiceStub(self.channel("profile"))

    @property
    def segment(self) -> segment_pb2_grpc.SegmentServiceAsyncStub:
        return segment_pb2_grpc.SegmentServiceStub(self.channel("segment"))

    @property
    def render(self) -> render_pb2_grpc.RenderServiceAsyncStub:
        return render_pb2_grpc.RenderServiceStub(self.channel("render"))

    @property
    def delivery(self) -> delivery_pb2_grpc.DeliveryServiceAsyncStub:
        return delivery_pb2_grpc.DeliveryServiceStub(self.channel("delivery"))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
