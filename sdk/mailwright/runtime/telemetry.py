"""Traces, metrics and structured logs.

OpenTelemetry traces follow a call across gRPC (the instrumentation's interceptors) and
across the bus (trace context in message headers, see `mailwright.runtime.bus`). The
exporter is chosen by configuration: none, console, or OTLP to a collector. Logs are
structured (text or JSON) and carry the current trace and span ids.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

from mailwright import __version__
from mailwright.runtime.settings import Settings

_configured = False


def setup_telemetry(settings: Settings, service: str) -> Callable[[], None]:
    """Install the tracer and meter providers for this process; returns their shutdown."""
    global _configured
    if settings.telemetry.exporter == "none" or _configured:
        return lambda: None
    _configured = True
    resource = Resource.create(
        {
            "service.name": f"mailwright-{service}",
            "service.namespace": settings.telemetry.service_namespace,
            "service.version": __version__,
        }
    )
    span_exporter: SpanExporter
    reader: MetricReader
    if settings.telemetry.exporter == "console":
        span_exporter = ConsoleSpanExporter(out=sys.stderr)
        reader = PeriodicExportingMetricReader(
            ConsoleMetricExporter(out=sys.stderr), export_interval_millis=60_000
        )
    else:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        endpoint = settings.telemetry.otlp_endpoint
        span_exporter = OTLPSpanExporter(endpoint=endpoint, insecure=endpoint.startswith("http:"))
        reader = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=endpoint, insecure=endpoint.startswith("http:"))
        )
    tracer_provider = TracerProvider(
        resource=resource, sampler=ParentBasedTraceIdRatio(settings.telemetry.sample_ratio)
    )
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)

    def shutdown() -> None:
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return shutdown


class TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        else:
            record.trace_id = ""
            record.span_id = ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("trace_id", "span_id"):
            value = getattr(record, key, "")
            if value:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s %(message)s [trace=%(trace_id)s]"


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Structured logging on stderr for the whole process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs full URLs (query strings may carry secrets) at INFO.
    for noisy in ("uvicorn.access", "aiosmtpd", "mail.log", "alembic.runtime.migration", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(f"mailwright.{name}", __version__)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(f"mailwright.{name}", __version__)
