"""The Redis bus against bare redis-py, in the same run on the same server.

- publish: `Bus.publish_many` in batches of 500 (validation, partitioning by key, trace
  headers, one atomic script call per batch) ÷ a bare pipelined XADD of the same
  ~500-byte payloads in batches of 500 (no atomicity, no headers).
- consume + ack: a subscription with a no-op handler (leases, per-partition order, one
  XACK per partition batch) ÷ a bare XREADGROUP COUNT 500 + XACK loop over the same
  streams.

Each round measures both in turn; the round with the median ratio is reported, since the
machine may be busy with other work. The server is MAILWRIGHT_BENCH_REDIS_URL (default
redis://127.0.0.1:6379/0); every key lives under a fresh namespace deleted afterwards.

--quick: 5,000 messages and one round (20,000 and the median of three in the full run).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from bench.common import Result
from mailwright.runtime.bus import ConsumerOptions, Message, Outgoing, connect

REDIS_URL = os.environ.get("MAILWRIGHT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BATCH = 500
PARTITIONS = 8
TOPIC = "events.track"


def _payloads(count: int) -> list[tuple[str, bytes]]:
    """(key, ~500-byte JSON event) pairs over 2,000 profiles."""
    rng = random.Random(7)
    events = []
    for i in range(count):
        key = f"ws_{rng.randrange(3)}/anon_{rng.randrange(2000):06d}"
        body = {
            "type": "track",
            "event": rng.choice(["Product Viewed", "Added to Cart", "Order Completed"]),
            "message_id": f"msg-{i:09d}-{rng.getrandbits(64):016x}",
            "anonymous_id": key.split("/")[1],
            "timestamp": "2025-03-01T12:00:00.000Z",
            "properties": {
                "product_id": f"sku-{rng.randrange(10_000)}",
                "price": round(rng.uniform(5, 500), 2),
                "currency": "EUR",
                "category": rng.choice(["shoes", "bags", "coats"]),
            },
            "context": {
                "ip": "203.0.113.7",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
                "page": {"url": f"https://shop.example/p/{rng.randrange(10_000)}"},
            },
        }
        raw = json.dumps(body, separators=(",", ":")).encode()
        events.append((key, raw + b" " * max(0, 500 - len(raw))))
    return events


async def _bare_publish(
    client: aioredis.Redis, stream: str, events: list[tuple[str, bytes]]
) -> float:
    started = time.perf_counter()
    for start in range(0, len(events), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for key, value in events[start : start + BATCH]:
                pipe.xadd(stream, {"k": key, "v": value})
            await pipe.execute()
    return len(events) / (time.perf_counter() - started)


async def _bus_publish(namespace: str, events: list[tuple[str, bytes]]) -> float:
    bus = await connect(REDIS_URL, namespace=namespace, partitions=PARTITIONS)
    async with bus:
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            await bus.publish_many(
                [Outgoing(TOPIC, key, value) for key, value in events[start : start + BATCH]]
            )
        return len(events) / (time.perf_counter() - started)


async def _bare_consume(client: aioredis.Redis, stream: str, count: int) -> float:
    await client.xgroup_create(stream, "bare", id="0")
    started = time.perf_counter()
    done = 0
    while done < count:
        reply: Any = await client.xreadgroup("bare", "c1", {stream: ">"}, count=BATCH, block=1000)
        for _, entries in reply:
            await client.xack(stream, "bare", *[entry_id for entry_id, _ in entries])
            done += len(entries)
    return count / (time.perf_counter() - started)


async def _bus_consume(namespace: str, count: int) -> float:
    bus = await connect(REDIS_URL, namespace=namespace, partitions=PARTITIONS)
    handled = 0
    finished = asyncio.Event()

    async def handle(message: Message) -> None:
        nonlocal handled
        handled += 1
        if handled >= count:
            finished.set()

    options = ConsumerOptions(batch_size=BATCH, block=0.2)
    async with bus:
        started = time.perf_counter()
        async with bus.subscribe(TOPIC, "bench", handle, options=options):
            await asyncio.wait_for(finished.wait(), 600)
            elapsed = time.perf_counter() - started
        return count / elapsed


async def _round(events: list[tuple[str, bytes]]) -> tuple[float, float, float, float]:
    """One measurement of each figure on a fresh namespace: (bus publish, bare publish,
    bus consume, bare consume) in messages per second."""
    count = len(events)
    namespace = f"mwbench:{uuid.uuid4().hex[:10]}"
    client = aioredis.Redis.from_url(REDIS_URL)
    bare_stream = f"{namespace}:bare"
    try:
        await _bare_publish(client, f"{namespace}:warmup", events[:BATCH])
        bare_publish = await _bare_publish(client, bare_stream, events)
        bus_publish = await _bus_publish(namespace, events)
        bare_consume = await _bare_consume(client, bare_stream, count)
        bus_consume = await _bus_consume(namespace, count)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    return bus_publish, bare_publish, bus_consume, bare_consume


def _median(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The (value, baseline) pair of the median ratio: the machine may be shared."""
    ordered = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    return ordered[len(ordered) // 2]


async def _measure(quick: bool) -> list[Result]:
    count, rounds = (5_000, 1) if quick else (20_000, 3)
    events = _payloads(count)
    measured = [await _round(events) for _ in range(rounds)]
    bus_publish, bare_publish = _median([(m[0], m[1]) for m in measured])
    bus_consume, bare_consume = _median([(m[2], m[3]) for m in measured])
    label = f"{count:,} x 500 B, median of {rounds}"
    return [
        Result(
            name=f"bus publish_many, batches of {BATCH} (redis; {label})",
            value=bus_publish,
            unit="msg/s",
            baseline=bare_publish,
            baseline_unit="msg/s bare pipelined XADD",
            ratio=bus_publish / bare_publish,
            goal=">= 0.5",
        ),
        Result(
            name=f"bus consume + ack, no-op handler (redis; {label})",
            value=bus_consume,
            unit="msg/s",
            baseline=bare_consume,
            baseline_unit="msg/s bare XREADGROUP + XACK",
            ratio=bus_consume / bare_consume,
            goal=">= 0.3",
        ),
    ]


def run(quick: bool) -> list[Result]:
    return asyncio.run(_measure(quick))


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
