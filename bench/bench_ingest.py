"""Ingest throughput and cost, on Redis, against baselines measured in the same run.

- batch ÷ single: events/s through `IngestBatch` (500 events a call) ÷ events/s through
  single-event calls (`Track`, `Page`, `Identify`), both sequential from one client, both
  to an ingest server in its own process (gRPC, validation, taxonomy, dedup, publish).
- publish ÷ bare XADD: the service's publish step — dedup claim in the key-value store,
  `Bus.publish_many` (atomic, partitioned, traced), dedup commit — on already prepared
  events ÷ a bare redis-py pipelined XADD of the same encoded events, 500 per pipeline.
- end to end ÷ bare XADD: the `IngestBatch` rate ÷ the same bare XADD rate.
- server CPU per event: CPU time of the server process (from /proc) during the
  `IngestBatch` run ÷ events, beside the client CPU a bare XADD costs per event.

The server is MAILWRIGHT_BENCH_REDIS_URL (default redis://127.0.0.1:6379/0); every key
lives under a fresh namespace deleted afterwards. The round with the median ratio is
reported, since the machine may be busy with other work.

--quick: one round of 300 single calls and 5,000 batched events (full run: three rounds of
2,000 and 20,000).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from google.protobuf import struct_pb2

from bench.common import Result
from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.runtime import bus as bus_module
from mailwright.runtime import kv as kv_module
from mailwright.runtime.bus import Outgoing
from mailwright.runtime.clients import open_channel
from mailwright.runtime.settings import Settings
from mailwright.taxonomy import default_taxonomy
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.dedup import Dedup
from mailwright_ingest.events import Rules, partition_key, prepare, topic_of
from mailwright_ingest.policy import Policy
from mailwright_ingest.taxonomy import Definition, Taxonomy
from mailwright_ingest.values import Limits

REDIS_URL = os.environ.get("MAILWRIGHT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
BATCH = 500
SERVER = Path(__file__).with_name("_ingest_server.py")


def _events(count: int, run: str) -> list[event_pb2.Event]:
    """A shop's traffic: product views, cart adds, orders, page views and identifies."""
    rng = random.Random(11)
    out = []
    for i in range(count):
        person = f"anon-{rng.randrange(5000):05d}"
        kind = rng.random()
        properties = struct_pb2.Struct()
        event = event_pb2.Event(message_id=f"{run}-{i:08d}", anonymous_id=person)
        if kind < 0.5:
            event.type = event_pb2.EVENT_TYPE_TRACK
            event.event = "Product Viewed"
            properties.update(
                {
                    "product_id": f"sku-{rng.randrange(10_000)}",
                    "name": "Walking boot",
                    "category": rng.choice(["shoes", "bags", "coats"]),
                    "price": round(rng.uniform(5, 500), 2),
                    "currency": "eur",
                    "url": f"https://shop.example/p/{rng.randrange(10_000)}",
                }
            )
        elif kind < 0.7:
            event.type = event_pb2.EVENT_TYPE_TRACK
            event.event = "Product Added"
            properties.update(
                {"product_id": f"sku-{rng.randrange(10_000)}", "price": 49.9, "quantity": 1}
            )
        elif kind < 0.8:
            event.type = event_pb2.EVENT_TYPE_TRACK
            event.event = "Order Completed"
            properties.update(
                {
                    "order_id": f"o-{i}",
                    "revenue": 99.5,
                    "currency": "EUR",
                    "products": [
                        {"product_id": "sku-1", "price": 49.75, "quantity": 2},
                    ],
                }
            )
        elif kind < 0.95:
            event.type = event_pb2.EVENT_TYPE_PAGE
            properties.update({"path": "/p/1", "url": "https://shop.example/p/1", "title": "Boot"})
        else:
            event.type = event_pb2.EVENT_TYPE_IDENTIFY
            event.traits.update({"email": f"Person{i}@Example.com", "first_name": "Ada"})
        if properties.fields:
            event.properties.CopyFrom(properties)
        event.context.ip = "203.0.113.7"
        event.context.user_agent = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0"
        event.context.page.url = "https://shop.example/p/1"
        out.append(event)
    return out


@dataclass
class Server:
    process: subprocess.Popen[str]
    port: int
    token: str

    @classmethod
    def start(cls, data_dir: str, namespace: str) -> Server:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), data_dir, REDIS_URL, namespace],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        return cls(process, ready["port"], ready["token"])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _connect(server: Server) -> tuple[object, ingest_pb2_grpc.IngestServiceAsyncStub]:
    channel = open_channel(f"127.0.0.1:{server.port}", server.token, Settings())
    return channel, ingest_pb2_grpc.IngestServiceStub(channel)


async def _track_rate(server: Server, events: list[event_pb2.Event]) -> float:
    channel, stub = _connect(server)
    try:
        started = time.perf_counter()
        parent = "workspaces/bench"
        for event in events:
            if event.type == event_pb2.EVENT_TYPE_PAGE:
                await stub.Page(ingest_pb2.PageRequest(parent=parent, event=event))
            elif event.type == event_pb2.EVENT_TYPE_IDENTIFY:
                await stub.Identify(ingest_pb2.IdentifyRequest(parent=parent, event=event))
            else:
                await stub.Track(ingest_pb2.TrackRequest(parent=parent, event=event))
        return len(events) / (time.perf_counter() - started)
    finally:
        await channel.close()  # type: ignore[attr-defined]


async def _batch_rate(server: Server, events: list[event_pb2.Event]) -> tuple[float, float]:
    """(events/s, server CPU µs per event) of IngestBatch calls of BATCH events."""
    channel, stub = _connect(server)
    try:
        cpu = server.cpu_seconds()
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            reply = await stub.IngestBatch(
                ingest_pb2.IngestBatchRequest(
                    parent="workspaces/bench", events=events[start : start + BATCH]
                )
            )
            assert reply.accepted_count == len(events[start : start + BATCH]), reply.results[:1]
        elapsed = time.perf_counter() - started
        used = server.cpu_seconds() - cpu
        return len(events) / elapsed, used / len(events) * 1e6
    finally:
        await channel.close()  # type: ignore[attr-defined]


def _prepared(events: list[event_pb2.Event]) -> list[event_pb2.Event]:
    """The events as the intake has them just before publishing."""
    now = datetime.now(UTC)
    taxonomy = Taxonomy(Definition("x", spec, now) for spec in default_taxonomy().events)
    rules = Rules(Policy.defaults(IngestSettings()), taxonomy, Limits(), 32 * 1024)
    out = []
    for event in events:
        copy = event_pb2.Event()
        copy.CopyFrom(event)
        problems = prepare(copy, "bench", rules, source="grpc", now=now)
        assert not problems, problems
        out.append(copy)
    return out


async def _service_publish(namespace: str, events: list[event_pb2.Event]) -> float:
    bus = await bus_module.connect(REDIS_URL, namespace=namespace, partitions=8)
    kv = await kv_module.connect(REDIS_URL, namespace=namespace)
    dedup = Dedup(kv)
    try:
        started = time.perf_counter()
        for start in range(0, len(events), BATCH):
            chunk = events[start : start + BATCH]
            claim = await dedup.claim("bench", [e.message_id for e in chunk], timedelta(hours=24))
            await bus.publish_many(
                Outgoing(topic_of(e), partition_key(e), e.SerializeToString()) for e in chunk
            )
            await dedup.commit(claim)
        return len(events) / (time.perf_counter() - started)
    finally:
        await bus.close()
        await kv.close()


async def _bare_xadd(
    client: aioredis.Redis, stream: str, events: list[event_pb2.Event]
) -> tuple[float, float]:
    """(events/s, client CPU µs per event) of pipelined XADD, BATCH per pipeline."""
    payloads = [(partition_key(e), e.SerializeToString()) for e in events]
    cpu = time.process_time()
    started = time.perf_counter()
    for start in range(0, len(payloads), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for key, value in payloads[start : start + BATCH]:
                pipe.xadd(stream, {"k": key, "v": value})
            await pipe.execute()
    elapsed = time.perf_counter() - started
    return len(events) / elapsed, (time.process_time() - cpu) / len(events) * 1e6


@dataclass(frozen=True)
class Round:
    track: float
    batch: float
    server_cpu: float
    publish: float
    bare: float
    bare_cpu: float


async def _round(singles: int, batched: int) -> Round:
    namespace = f"mwbench:{uuid.uuid4().hex[:10]}"
    run = uuid.uuid4().hex[:8]
    client = aioredis.Redis.from_url(REDIS_URL)
    with tempfile.TemporaryDirectory() as data_dir:
        server = Server.start(data_dir, namespace)
        try:
            await _batch_rate(server, _events(BATCH, f"{run}-warm"))
            track = await _track_rate(server, _events(singles, f"{run}-t"))
            batch, server_cpu = await _batch_rate(server, _events(batched, f"{run}-b"))
        finally:
            server.stop()
    prepared = _prepared(_events(batched, f"{run}-p"))
    try:
        await _bare_xadd(client, f"{namespace}:warm", prepared[:BATCH])
        bare, bare_cpu = await _bare_xadd(client, f"{namespace}:bare", prepared)
        publish = await _service_publish(f"{namespace}:svc", prepared)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{namespace}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    return Round(track, batch, server_cpu, publish, bare, bare_cpu)


def _median(rounds: list[Round], ratio: str) -> Round:
    ratios = {
        "batch": lambda r: r.batch / r.track,
        "publish": lambda r: r.publish / r.bare,
        "end": lambda r: r.batch / r.bare,
        "cpu": lambda r: r.server_cpu / r.bare_cpu,
    }
    ordered = sorted(rounds, key=ratios[ratio])
    return ordered[len(ordered) // 2]


async def _measure(quick: bool) -> list[Result]:
    singles, batched, count = (300, 5_000, 1) if quick else (2_000, 20_000, 3)
    rounds = [await _round(singles, batched) for _ in range(count)]
    label = f"redis, median of {count}"
    batch = _median(rounds, "batch")
    publish = _median(rounds, "publish")
    end = _median(rounds, "end")
    cpu = _median(rounds, "cpu")
    return [
        Result(
            name=f"ingest IngestBatch of {BATCH} vs single Track ({label})",
            value=batch.batch,
            unit="events/s",
            baseline=batch.track,
            baseline_unit="events/s single Track",
            ratio=batch.batch / batch.track,
            goal=">= 20",
        ),
        Result(
            name=f"ingest publish step: dedup + publish_many + commit ({label})",
            value=publish.publish,
            unit="events/s",
            baseline=publish.bare,
            baseline_unit="events/s bare pipelined XADD",
            ratio=publish.publish / publish.bare,
            goal=">= 0.8",
        ),
        Result(
            name=f"ingest IngestBatch end to end vs bare XADD ({label})",
            value=end.batch,
            unit="events/s",
            baseline=end.bare,
            baseline_unit="events/s bare pipelined XADD",
            ratio=end.batch / end.bare,
            goal="(informative)",
        ),
        Result(
            name=f"ingest server CPU per event in IngestBatch ({label})",
            value=cpu.server_cpu,
            unit="µs/event",
            baseline=cpu.bare_cpu,
            baseline_unit="µs/event client CPU of bare XADD",
            ratio=cpu.server_cpu / cpu.bare_cpu,
            goal="(lower is better)",
        ),
    ]


def run(quick: bool) -> list[Result]:
    return asyncio.run(_measure(quick))


if __name__ == "__main__":
    for result in run(quick="--quick" in sys.argv):
        print(result)
