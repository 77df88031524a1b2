"""Delivery's throughput and trigger latency, each against a baseline of the same run.

1. Sends/s through the whole pipeline — outbox claim, profile fetch, suppression, caps,
   `RenderBatch`, the `mailwright_before_send` hook, the shared token bucket, the real
   SMTP plugin, the outcome recorded with its event — to an SMTP sink in another process,
   against a bare aiosmtplib loop sending the same MIME bytes over one reused connection
   to the same sink. Goal ≥ 0.8.
2. Trigger latency: from a person's event arriving on `profiles.changed` to the sink's
   250 for the email a journey sends at once, p50 and p99, against a bare gRPC round trip
   (health check) p50 on the same server. Goal <= 50 times. Until ingest and profile land,
   the event enters at `profiles.changed` (delivery's part of the ingest-to-inbox path).

The profile, segment and render services are the small in-process servicers of the
delivery tests (real gRPC, same Platform), so this measures delivery, not their work.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiosmtplib
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.bench_smtp import sink_process
from bench.common import Result
from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings

TESTS = Path(__file__).resolve().parent.parent / "services" / "delivery" / "tests"
sys.path.insert(0, str(TESTS))

from delivery_fakes import World, fake_definitions  # noqa: E402

PARENT = "workspaces/acme"


def _settings(data: Path, sink_port: int) -> Settings:
    return Settings(
        data_dir=data,
        grpc_port=0,
        http_port=0,
        auth_secret="b" * 48,
        shutdown_grace=5,
        bus_url=f"memory://{uuid.uuid4().hex}",
        plugins=["smtp"],
        services={
            "delivery": {
                "poll_interval": "200ms",
                "batch_size": 200,
                "worker_concurrency": 4,
            }
        },
        connectors={
            "smtp": {
                "host": "127.0.0.1",
                "port": sink_port,
                "security": "none",
                "rate_per_second": 100000,
                "burst": 500,
                "pool_size": 4,
            }
        },
    )  # type: ignore[call-arg]


def _world(count: int) -> World:
    world = World()
    for n in range(count):
        world.person(f"p{n:06d}", f"person{n}@example.org", first_name=f"P{n}")
    world.segment("everyone", [f"p{n:06d}" for n in range(count)])
    world.template("news")
    world.template("welcome")
    return world


def _eml(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.eml"))


def _count(directory: Path) -> int:
    return sum(1 for name in os.listdir(directory) if name.endswith(".eml"))


async def _wait_files(
    directory: Path, count: int, within: float = 300.0, step: float = 0.05
) -> None:
    deadline = time.perf_counter() + within
    while _count(directory) < count:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"only {_count(directory)} of {count} messages arrived")
        await asyncio.sleep(step)


async def _pipeline(
    count: int, work: Path, sink_dir: Path, port: int, real_render: bool = False
) -> float:
    """Sends/s from the campaign's start to its last message at the sink."""
    fakes = fake_definitions(_world(count))
    services = ["delivery"]
    if real_render:
        fakes = [d for d in fakes if d.name != "render"]
        services = ["render", "delivery"]
    platform = Platform(_settings(work, port), [*fakes, *resolve_services(services)])
    await platform.start()
    clients = platform.clients()
    try:
        if real_render:
            await _publish_news(clients)
        campaign = pb.Campaign(
            audience=pb.Audience(include_segments=["everyone"]),
            template="news",
            sender=pb.Sender(from_address="news@shop.example", from_name="Shop"),
            category=pb.CATEGORY_MARKETING,
        )
        created = await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(parent=PARENT, campaign_id="bench", campaign=campaign)
        )
        already = _count(sink_dir)
        started = time.perf_counter()
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )
        await _wait_files(sink_dir, already + count)
        return count / (time.perf_counter() - started)
    finally:
        await clients.close()
        await platform.stop()


async def _publish_news(clients: Any) -> None:
    content = render_pb2.TemplateContent(
        subjects=[render_pb2.TextVariant(key="a", template="Spring news, {{ first_name }}")],
        body='<p>Hello {{ first_name }}, <a href="https://shop.example/new">new in</a></p>'
        + "<p>"
        + "Here is what is new this week. " * 20
        + "</p>"
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>',
        category=render_pb2.TEMPLATE_CATEGORY_MARKETING,
        postal_address="1 Main Street, Springfield",
    )
    made = await clients.render.CreateTemplate(
        render_pb2.CreateTemplateRequest(parent=PARENT, template_id="news", content=content)
    )
    await clients.render.PublishTemplate(render_pb2.PublishTemplateRequest(name=made.version.name))


async def _bare(port: int, sink_dir: Path, count: int) -> float:
    """The same MIME bytes the pipeline sent, through one reused aiosmtplib connection."""
    sample = [path.read_bytes() for path in _eml(sink_dir)[:count]]
    payloads = [_strip_trace(data) for data in sample]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for n, data in enumerate(payloads):
        await client.sendmail("news@shop.example", [f"person{n}@example.org"], data)
    elapsed = time.perf_counter() - started
    await client.quit()
    return len(payloads) / elapsed


def _strip_trace(data: bytes) -> bytes:
    """The message as sent: the sink adds Return-Path and Delivered-To on top."""
    lines = data.split(b"\r\n")
    while lines and lines[0].startswith((b"Return-Path:", b"Delivered-To:")):
        lines.pop(0)
    return b"\r\n".join(lines)


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def _round_trip(clients: Any) -> float:
    """p50 of a bare gRPC round trip (health check) on the same server, in ms."""
    health = health_pb2_grpc.HealthStub(clients.channel("delivery"))
    rtts = []
    for _ in range(200):
        started = time.perf_counter()
        await health.Check(health_pb2.HealthCheckRequest())
        rtts.append((time.perf_counter() - started) * 1000)
    return statistics.median(rtts)


async def _welcome_journey(clients: Any) -> None:
    journey = pb.Journey(
        trigger=pb.JourneyTrigger(event=pb.EventTrigger(event="Signed Up")),
        steps=[
            pb.JourneyStep(
                id="welcome",
                send=pb.SendStep(
                    template="welcome",
                    sender=pb.Sender(from_address="hello@shop.example"),
                    category=pb.CATEGORY_TRANSACTIONAL,
                ),
            )
        ],
    )
    created = await clients.delivery.CreateJourney(
        pb.CreateJourneyRequest(parent=PARENT, journey_id="welcome", journey=journey)
    )
    await clients.delivery.ActivateJourney(pb.ActivateJourneyRequest(name=created.journey.name))


async def _time_to_sink(sink_dir: Path, publish: Any) -> float:
    before = _count(sink_dir)
    sent_ns = time.time_ns()
    await publish()
    await _wait_files(sink_dir, before + 1, within=30, step=0.001)
    arrived_ns = int(_eml(sink_dir)[-1].name.split("-", 1)[0])
    return (arrived_ns - sent_ns) / 1e6


async def _latency(
    samples: int, work: Path, sink_dir: Path, port: int
) -> tuple[float, float, float]:
    """Delivery alone: `profiles.changed` → SMTP 250 (p50, p99), and the round trip."""
    platform = Platform(
        _settings(work, port), [*fake_definitions(_world(samples)), *resolve_services(["delivery"])]
    )
    await platform.start()
    clients = platform.clients()
    try:
        await _welcome_journey(clients)
        rtt = await _round_trip(clients)
        bus = platform.runtime.bus  # type: ignore[union-attr]
        latencies = []
        for n in range(samples):
            event = event_pb2.Event(
                workspace="acme",
                message_id=f"signup-{n}",
                type=event_pb2.EVENT_TYPE_TRACK,
                event="Signed Up",
                profile_id=f"p{n:06d}",
            )
            event.timestamp.GetCurrentTime()
            change = profile_pb2.ProfileChanged(
                workspace="acme", profile_id=f"p{n:06d}", events=[event]
            )

            async def publish(change: profile_pb2.ProfileChanged = change, n: int = n) -> None:
                await bus.publish("profiles.changed", change.SerializeToString(), key=f"acme:p{n}")

            latencies.append(await _time_to_sink(sink_dir, publish))
        p50, p99 = _percentiles(latencies)
        return p50, p99, rtt
    finally:
        await clients.close()
        await platform.stop()


async def _latency_with_profile(
    samples: int, work: Path, sink_dir: Path, port: int
) -> tuple[float, float, float]:
    """With the profile service: a track event on `events.track` (as ingest publishes it)
    → the profile service → `profiles.changed` → delivery → SMTP 250."""
    # The profile service with its own settings: it publishes `profiles.changed` right
    # after each commit; its outbox relay (every few seconds) is only the safety net.
    settings = _settings(work, port)
    world = _world(0)
    segments = [d for d in fake_definitions(world) if d.name in ("segment", "render")]
    platform = Platform(settings, [*segments, *resolve_services(["profile", "delivery"])])
    await platform.start()
    clients = platform.clients()
    bus = platform.runtime.bus  # type: ignore[union-attr]
    try:
        await _welcome_journey(clients)
        rtt = await _round_trip(clients)
        for n in range(samples):
            identify = _identify(n)
            await bus.publish("events.identify", identify.SerializeToString(), key=f"acme:u{n}")
        await _wait_profiles(clients, samples)
        latencies = []
        for n in range(samples):
            event = event_pb2.Event(
                workspace="acme",
                message_id=f"signup-{n}",
                type=event_pb2.EVENT_TYPE_TRACK,
                event="Signed Up",
                user_id=f"u{n}",
                family="track",
                source="http",
            )
            event.timestamp.GetCurrentTime()
            event.received_at.GetCurrentTime()

            async def publish(event: event_pb2.Event = event, n: int = n) -> None:
                await bus.publish("events.track", event.SerializeToString(), key=f"acme:u{n}")

            latencies.append(await _time_to_sink(sink_dir, publish))
        p50, p99 = _percentiles(latencies)
        return p50, p99, rtt
    finally:
        await clients.close()
        await platform.stop()


def _identify(n: int) -> event_pb2.Event:
    event = event_pb2.Event(
        workspace="acme",
        message_id=f"identify-{n}",
        type=event_pb2.EVENT_TYPE_IDENTIFY,
        user_id=f"u{n}",
        family="identify",
        source="http",
    )
    event.traits.update({"email": f"person{n}@example.org", "first_name": f"P{n}"})
    event.timestamp.GetCurrentTime()
    event.received_at.GetCurrentTime()
    return event


async def _wait_profiles(clients: Any, count: int) -> None:
    deadline = time.perf_counter() + 60
    while True:
        try:
            await clients.profile.LookupProfile(
                profile_pb2.LookupProfileRequest(
                    parent=PARENT,
                    identity=common_pb2.Identity(type="user_id", value=f"u{count - 1}"),
                )
            )
            return
        except Exception:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.05)


def run(quick: bool) -> list[Result]:
    count = 300 if quick else 2000
    samples = 30 if quick else 200
    rounds = 1 if quick else 2
    rate = bare = rendered = 0.0
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        # Best of interleaved rounds: the machine is shared, drift hits both alike.
        for round_ in range(rounds):
            sink_dir = root / f"sink-{round_}"
            with sink_process(sink_dir) as port:
                rate = max(rate, asyncio.run(_pipeline(count, root / f"p{round_}", sink_dir, port)))
                bare = max(bare, asyncio.run(_bare(port, sink_dir, count)))
            rendered_dir = root / f"rendered-sink-{round_}"
            with sink_process(rendered_dir) as port:
                rendered = max(
                    rendered,
                    asyncio.run(
                        _pipeline(count, root / f"r{round_}", rendered_dir, port, real_render=True)
                    ),
                )
        latency_dir = root / "latency-sink"
        with sink_process(latency_dir) as port:
            p50, p99, rtt = asyncio.run(_latency(samples, root / "latency", latency_dir, port))
        chain_dir = root / "chain-sink"
        with sink_process(chain_dir) as port:
            c50, c99, crtt = asyncio.run(
                _latency_with_profile(samples, root / "chain", chain_dir, port)
            )
    against_bare = "msg/s bare aiosmtplib, same MIME, one connection"
    return [
        Result(
            "delivery pipeline to SMTP sink",
            rate,
            "msg/s",
            bare,
            against_bare,
            rate / bare,
            ">= 0.8",
        ),
        Result(
            "delivery pipeline with render in process",
            rendered,
            "msg/s",
            bare,
            against_bare,
            rendered / bare,
            "-",
        ),
        Result(
            "events.track -> profile -> delivery -> SMTP 250, p50",
            c50,
            "ms",
            crtt,
            "ms gRPC round trip p50",
            c50 / crtt,
            "<= 50",
        ),
        Result(
            "events.track -> profile -> delivery -> SMTP 250, p99",
            c99,
            "ms",
            crtt,
            "ms gRPC round trip p50",
            c99 / crtt,
            "-",
        ),
        Result(
            "profiles.changed -> SMTP 250 (delivery alone), p50",
            p50,
            "ms",
            rtt,
            "ms gRPC round trip p50",
            p50 / rtt,
            "-",
        ),
        Result(
            "profiles.changed -> SMTP 250 (delivery alone), p99",
            p99,
            "ms",
            rtt,
            "ms gRPC round trip p50",
            p99 / rtt,
            "-",
        ),
    ]


def _main(argv: list[str]) -> None:
    for r in run(quick="--quick" in argv):
        print(
            f"{r.name}: {r.value:.1f} {r.unit} vs {r.baseline:.2f} {r.baseline_unit}"
            f" = {r.ratio:.2f} (goal {r.goal})"
        )


if __name__ == "__main__":
    _main(sys.argv)
