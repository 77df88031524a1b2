"""The event bus between Mailwright services.

    bus = await connect(settings.bus_url, namespace=settings.namespace,
                        partitions=settings.bus_partitions)
    await bus.publish("events.track", payload, key=profile_key)

    async def on_track(message: Message) -> None: ...
    async with bus.subscribe("events.track", "profile", on_track):
        ...

`memory://` keeps the bus in the process (the embedded default: `mailwright up`);
`redis://`, `rediss://` and `unix://` use Redis Streams. Both give the same guarantees:
at-least-once delivery, order per key within a group, retries with backoff, dead letters
after `max_deliveries`, and a dead consumer's work taken over by the living. See
docs/bus.md.
"""

from __future__ import annotations

from opentelemetry import metrics, trace

from mailwright.runtime.bus.consumer import BatchHandler, Handler, Subscription
from mailwright.runtime.bus.core import DEFAULT_MAX_VALUE_BYTES, Bus
from mailwright.runtime.bus.memory import MemoryTransport, memory_name
from mailwright.runtime.bus.model import (
    REPLAY_GROUP_HEADER,
    BusError,
    BusMismatch,
    BusStats,
    BusUnavailable,
    ConsumerInfo,
    ConsumerOptions,
    DeadLetter,
    GroupPartitionStats,
    InvalidMessage,
    Message,
    Outgoing,
    PartitionStats,
    partition_for,
)
from mailwright.runtime.bus.transport import Transport
from mailwright.runtime.urls import redact_url

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


async def connect(
    url: str,
    *,
    namespace: str = "mailwright",
    partitions: int = 8,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> Bus:
    """Open the bus at `url`; raise BusUnavailable when its server does not answer and
    BusMismatch when it was created with another partition count."""
    if not isinstance(partitions, int) or not 1 <= partitions <= 1024:
        raise ValueError("partitions: must be an integer between 1 and 1024")
    if not namespace:
        raise ValueError("namespace: must not be empty")
    transport: Transport
    if url.startswith("memory://"):
        transport = MemoryTransport(memory_name(url), namespace)
    elif url.startswith(REDIS_SCHEMES):
        from mailwright.runtime.bus.streams import RedisTransport

        transport = RedisTransport(url, namespace)
    else:
        raise ValueError(
            f"bus_url: {redact_url(url)!r} must start with memory://, redis://, rediss:// or unix://"
        )
    bus = Bus(
        transport,
        url=url,
        namespace=namespace,
        partitions=partitions,
        max_value_bytes=max_value_bytes,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
    try:
        await bus.open()
    except BaseException:
        await transport.close()
        raise
    return bus


__all__ = [
    "REPLAY_GROUP_HEADER",
    "BatchHandler",
    "Bus",
    "BusError",
    "BusMismatch",
    "BusStats",
    "BusUnavailable",
    "ConsumerInfo",
    "ConsumerOptions",
    "DeadLetter",
    "GroupPartitionStats",
    "Handler",
    "InvalidMessage",
    "Message",
    "Outgoing",
    "PartitionStats",
    "Subscription",
    "connect",
    "partition_for",
]
