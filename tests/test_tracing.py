"""One trace follows an event from ingest through the bus to profile, segment and the
send it triggers.

The five services run in this process (`mailwright up`) with OpenTelemetry's SDK and an
in-memory span exporter, on the in-memory bus and on Redis Streams. A `Track` call starts
the trace (its gRPC server span); the bus carries the context in each message's
`traceparent` header; profile applies the event in a span continuing it and publishes
`profiles.changed` from there; segment publishes the entry into a segment; delivery's
journey queues a send that keeps the trace context, and the worker that sends it later
continues the trace through profile, render and the SMTP hand-over; the `Email Sent` it
writes to delivery's outbox keeps that context, so profile applies it in the same trace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf import struct_pb2
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import mailwright.runtime.telemetry as telemetry
from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.auth import TokenAuthority
from mailwright.runtime.cluster import free_port
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import SERVICE_NAMES, Settings, TelemetrySettings
from mailwright_smtp.sink import SmtpSink

from .test_e2e import DELIVERY, PARENT, SECRET, WORKSPACE, connectors, setup_workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on this process's tracer provider.

    The global provider can be set once per process: the first test that needs one sets
    it, and the exporter is shut down afterwards (it then drops what later tests make).
    `setup_telemetry` is kept from installing its own exporter for the platform."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(telemetry, "_configured", True)
    yield exporter
    exporter.shutdown()


def _trace(span: ReadableSpan) -> int:
    assert span.context is not None
    trace_id: int = span.context.trace_id
    return trace_id


def _group(span: ReadableSpan) -> str:
    return str((span.attributes or {}).get("messaging.consumer.group.name", ""))


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The bus (URL, namespace): in-memory, and Redis Streams (headers in stream fields)."""
    if request.param == "memory":
        return f"memory://trace-{uuid.uuid4().hex[:8]}", "mailwright"
    url: str = request.getfixturevalue("redis_url")
    namespace: str = request.getfixturevalue("redis_namespace")
    return url, namespace


async def test_a_trace_follows_an_event_from_track_to_the_send(
    tmp_path: Path, spans: InMemorySpanExporter, bus: tuple[str, str]
) -> None:
    sink = await SmtpSink(tmp_path / "outbox").start()
    http_port = free_port()
    settings = Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=http_port,
        auth_secret=SECRET,
        bus_url=bus[0],
        namespace=bus[1],
        kv_url="",
        database_url="",
        shutdown_grace=timedelta(seconds=2),
        public_base_url=f"http://127.0.0.1:{http_port}",
        services={"delivery": DELIVERY},
        connectors=connectors(sink.port),
        telemetry=TelemetrySettings(exporter="console"),  # turns gRPC instrumentation on
    )
    platform = Platform(settings, resolve_services(list(SERVICE_NAMES)))
    await platform.start()
    clients = platform.clients(TokenAuthority(SECRET).issue(WORKSPACE, ["*"]))
    try:
        await setup_workspace(clients)
        traits = struct_pb2.Struct()
        traits.update({"email": "trace@example.com", "first_name": "Tess"})
        await clients.ingest.Identify(
            ingest_pb2.IdentifyRequest(
                parent=PARENT, event=event_pb2.Event(user_id="t-1", traits=traits)
            )
        )
        await platform_idle(sink)
        spans.clear()
        viewed = struct_pb2.Struct()
        viewed.update({"product_id": "sku-1"})
        await clients.ingest.Track(
            ingest_pb2.TrackRequest(
                parent=PARENT,
                event=event_pb2.Event(user_id="t-1", event="Product Viewed", properties=viewed),
            )
        )
        await sink.wait_for(1, within=30)
        # The worker's spans end once the provider's answer is recorded, and its `Email
        # Sent` goes back to profile through delivery's outbox: just after.
        # (segment also consumes events.email: wait for profile's own span.)
        for _ in range(300):
            finished = list(spans.get_finished_spans())
            if {("deliver sends", ""), ("process events.email", "profile")} <= {
                (s.name, _group(s)) for s in finished
            }:
                break
            await asyncio.sleep(0.1)
    finally:
        await clients.close()
        await platform.stop()
        await sink.stop()

    (track,) = [
        s
        for s in finished
        if s.name == "/mailwright.ingest.v1.IngestService/Track" and s.kind is trace.SpanKind.SERVER
    ]
    trace_id = _trace(track)
    ours = [s for s in finished if _trace(s) == trace_id]
    names = {(s.name, _group(s)) for s in ours}
    expected = {
        ("publish events.track", ""),  # ingest
        ("process events.track", "profile"),
        ("apply events", ""),  # profile's transaction
        ("publish profiles.changed", ""),
        ("process profiles.changed", "segment"),
        ("publish segments.membership", ""),
        ("process segments.membership", "delivery"),  # the journey queues the send
        ("deliver sends", ""),  # the worker, later, for that send
        ("/mailwright.profile.v1.ProfileService/BatchGetProfiles", ""),
        ("/mailwright.render.v1.RenderService/RenderBatch", ""),
        ("send smtp", ""),  # the hand-over to the provider
    }
    assert expected <= names, sorted(expected - names)
    # One tree: from the SMTP hand-over up through every hop to the Track call.
    by_id = {s.context.span_id: s for s in ours if s.context is not None}
    chain: list[str] = []
    current: ReadableSpan | None = next(s for s in ours if s.name == "send smtp")
    while current is not None:
        chain.append(current.name)
        current = by_id.get(current.parent.span_id) if current.parent is not None else None
    # (profile's transaction continues the message's context: it is a sibling of the
    # bus's `process` span, both children of the publish.)
    assert chain[:9] == [
        "send smtp",
        "deliver sends",
        "process segments.membership",
        "publish segments.membership",
        "process profiles.changed",
        "publish profiles.changed",
        "apply events",
        "publish events.track",
        "/mailwright.ingest.v1.IngestService/Track",
    ], chain
    assert set(chain[9:]) <= {"/mailwright.ingest.v1.IngestService/Track"}, chain
    # The send's `Email Sent`, relayed from delivery's outbox, is applied by profile in
    # the same trace, under the worker's span.
    (applied,) = [s for s in ours if s.name == "process events.email" and _group(s) == "profile"]
    parent = applied.parent
    while parent is not None and by_id[parent.span_id].name != "deliver sends":
        parent = by_id[parent.span_id].parent
    assert parent is not None, "the Email Sent event is not under the worker's span"


async def platform_idle(sink: SmtpSink) -> None:
    """Let the identify settle (it sends nothing: nobody entered the segment yet)."""
    await asyncio.sleep(1.0)
    assert sink.received == 0
