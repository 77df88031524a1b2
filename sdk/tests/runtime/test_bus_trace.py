"""Trace context travels in message headers; the consumer's span continues the trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mailwright.runtime.bus import Bus, ConsumerOptions, Message, Outgoing, connect
from mailwright.testing.bus import Target, eventually


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


@pytest.fixture
async def traced_bus(bus_target: Target, provider: TracerProvider) -> AsyncIterator[Bus]:
    bus = await connect(
        bus_target.url, namespace=bus_target.namespace, partitions=4, tracer_provider=provider
    )
    yield bus
    await bus.close()


async def test_the_handler_runs_in_a_consumer_span_of_the_publishers_trace(
    traced_bus: Bus,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    fast_consumer_options: ConsumerOptions,
) -> None:
    seen: list[tuple[Message, trace.SpanContext]] = []

    async def handle(message: Message) -> None:
        seen.append((message, trace.get_current_span().get_span_context()))

    with provider.get_tracer("test").start_as_current_span("Track") as request:
        await traced_bus.publish("events.track", b"{}", key="p1")
    async with traced_bus.subscribe(
        "events.track", "profile", handle, options=fast_consumer_options
    ):
        await eventually(lambda: len(seen) == 1)

    message, handler_context = seen[0]
    trace_id = request.get_span_context().trace_id
    assert message.headers["traceparent"].split("-")[1] == f"{trace_id:032x}"
    assert handler_context.trace_id == trace_id
    spans = {span.name: span for span in exporter.get_finished_spans()}
    producer, consumer = spans["publish events.track"], spans["process events.track"]
    assert producer.kind is trace.SpanKind.PRODUCER
    assert consumer.kind is trace.SpanKind.CONSUMER
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.destination.name"] == "events.track"
    assert consumer.attributes["messaging.consumer.group.name"] == "profile"
    assert consumer.attributes["messaging.message.id"] == message.id
    assert handler_context.span_id == consumer.context.span_id


async def test_a_failing_handler_marks_its_span_as_an_error(
    traced_bus: Bus, exporter: InMemorySpanExporter, fast_consumer_options: ConsumerOptions
) -> None:
    async def failing(message: Message) -> None:
        raise RuntimeError("no")

    await traced_bus.publish("events.track", b"{}", key="p1")
    async with traced_bus.subscribe(
        "events.track", "profile", failing, max_deliveries=1, options=fast_consumer_options
    ):
        await eventually(
            lambda: any(s.name == "process events.track" for s in exporter.get_finished_spans())
        )

    (span,) = [s for s in exporter.get_finished_spans() if s.name == "process events.track"]
    assert span.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


async def test_without_tracing_no_trace_header_is_added(
    bus_target: Target, fast_consumer_options: ConsumerOptions
) -> None:
    seen: list[Message] = []

    async def handle(message: Message) -> None:
        seen.append(message)

    bus = await connect(
        bus_target.url,
        namespace=bus_target.namespace,
        partitions=4,
        tracer_provider=trace.NoOpTracerProvider(),
    )
    async with bus:
        await bus.publish("events.track", b"{}", key="p1", headers={"origin": "test"})
        async with bus.subscribe("events.track", "profile", handle, options=fast_consumer_options):
            await eventually(lambda: len(seen) == 1)

    assert dict(seen[0].headers) == {"origin": "test"}


async def test_a_message_that_brings_its_own_trace_context_keeps_it(
    traced_bus: Bus,
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    fast_consumer_options: ConsumerOptions,
) -> None:
    """A relay publishes, within a span of its own, messages written earlier by other
    work: each message's consumer continues the trace the message names."""
    seen: dict[bytes, int] = {}

    async def handle(message: Message) -> None:
        seen[message.value] = trace.get_current_span().get_span_context().trace_id

    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("send") as send:
        context = send.get_span_context()
        written = f"00-{context.trace_id:032x}-{context.span_id:016x}-01"
    with tracer.start_as_current_span("relay") as relay:
        await traced_bus.publish_many(
            [
                Outgoing("events.email", "p1", b"kept", {"traceparent": written}),
                Outgoing("events.email", "p1", b"joins the relay"),
            ]
        )
    async with traced_bus.subscribe(
        "events.email", "profile", handle, options=fast_consumer_options
    ):
        await eventually(lambda: len(seen) == 2)
    assert seen[b"kept"] == context.trace_id
    assert seen[b"joins the relay"] == relay.get_span_context().trace_id
    assert context.trace_id != relay.get_span_context().trace_id
