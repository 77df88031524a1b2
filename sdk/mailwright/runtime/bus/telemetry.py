"""Traces and metrics of the bus, through the OpenTelemetry API only.

A publish opens a PRODUCER span and injects its context into each message's headers; a
consumer extracts it and runs the handler inside a CONSUMER span that is its child and
links to it, so one trace follows an event from `Track` through every service it reaches.
Names follow the OpenTelemetry messaging semantic conventions. Without a configured SDK
all of this is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, propagate, trace

from mailwright.runtime.bus.model import Message

_SCOPE = "mailwright.runtime.bus"


class BusTelemetry:
    """The tracer and instruments of one bus."""

    def __init__(
        self,
        system: str,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.system = system
        self._tracer_provider = tracer_provider
        self.tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self.sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Messages published"
        )
        self.consumed = meter.create_counter(
            "messaging.client.consumed.messages",
            unit="{message}",
            description="Messages handed to handlers, by outcome",
        )
        self.duration = meter.create_histogram(
            "messaging.process.duration", unit="s", description="Time spent in handlers"
        )

    @contextmanager
    def publishing(self, topics: set[str], count: int) -> Iterator[None]:
        """A PRODUCER span around one publish round trip."""
        destination = next(iter(topics)) if len(topics) == 1 else "multiple"
        attributes: dict[str, Any] = {
            "messaging.system": self.system,
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": destination,
        }
        if count > 1:
            attributes["messaging.batch.message_count"] = count
        with self.tracer.start_as_current_span(
            f"publish {destination}", kind=trace.SpanKind.PRODUCER, attributes=attributes
        ):
            yield

    def inject(self, headers: MutableMapping[str, str]) -> None:
        """Write the current trace context into `headers` (W3C traceparent by default)."""
        propagate.inject(headers)

    def count_sent(self, topic: str, count: int) -> None:
        self.sent.add(count, {"messaging.system": self.system, "messaging.destination.name": topic})

    @property
    def tracing(self) -> bool:
        """False while no SDK is configured: then spans are skipped altogether, which
        makes a no-op handler's delivery about twice as fast."""
        provider = self._tracer_provider or trace.get_tracer_provider()
        return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)

    @contextmanager
    def processing(self, message: Message, group: str) -> Iterator[trace.Span]:
        """A CONSUMER span for one delivery, child of and linked to the publisher's span."""
        if not self.tracing:
            yield trace.INVALID_SPAN
            return
        parent = propagate.extract(message.headers) if message.headers else None
        producer = trace.get_current_span(parent).get_span_context()
        links = [trace.Link(producer)] if producer.is_valid else None
        with self.tracer.start_as_current_span(
            f"process {message.topic}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            links=links,
            record_exception=True,
            set_status_on_exception=True,
        ) as span:
            if span.is_recording():
                span.set_attributes(
                    {
                        "messaging.system": self.system,
                        "messaging.operation.type": "process",
                        "messaging.operation.name": "process",
                        "messaging.destination.name": message.topic,
                        "messaging.destination.partition.id": str(message.partition),
                        "messaging.consumer.group.name": group,
                        "messaging.message.id": message.id,
                        "messaging.message.body.size": len(message.value),
                        "messaging.message.delivery_count": message.delivery_count,
                    }
                )
            yield span

    def count_consumed(self, message: Message, group: str, outcome: str, seconds: float) -> None:
        self.count_consumed_many(message.topic, group, outcome, seconds, 1)

    def count_consumed_many(
        self, topic: str, group: str, outcome: str, seconds: float, count: int
    ) -> None:
        """`count` messages of `topic` handled with this outcome, `seconds` each."""
        if count <= 0:
            return
        attributes = {
            "messaging.system": self.system,
            "messaging.destination.name": topic,
            "messaging.consumer.group.name": group,
            "outcome": outcome,
        }
        self.consumed.add(count, attributes)
        for _ in range(count):
            self.duration.record(seconds, attributes)


def tracing_enabled() -> bool:
    """Whether an OpenTelemetry SDK is installed (else every span is a no-op)."""
    return not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def current_traceparent() -> str:
    """The W3C `traceparent` of the current span, or "" when there is none: stored with
    work that a later task picks up (a queued send), so that task joins the trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return ""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@contextmanager
def continue_traces(
    name: str,
    carriers: Iterable[Mapping[str, str] | str | None],
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """A span for work done for several earlier messages at once (a batch written in one
    transaction, sends claimed together): the child of the first one's trace context and
    linked to every one's, so each message's trace leads to it. A carrier is a message's
    headers or a bare `traceparent`. A no-op without an SDK."""
    if not tracing_enabled():
        yield trace.INVALID_SPAN
        return
    parent = None
    links: list[trace.Link] = []
    seen: set[tuple[int, int]] = set()
    for carrier in carriers:
        if not carrier:
            continue
        headers = {"traceparent": carrier} if isinstance(carrier, str) else carrier
        context = propagate.extract(headers)
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            continue
        if parent is None:
            parent = context
        key = (span_context.trace_id, span_context.span_id)
        if key not in seen:
            seen.add(key)
            links.append(trace.Link(span_context))
    tracer = trace.get_tracer(_SCOPE)
    with tracer.start_as_current_span(
        name,
        context=parent,
        links=links or None,
        attributes=dict(attributes or {}),
        record_exception=True,
        set_status_on_exception=True,
    ) as span:
        yield span
