"""Delivery's throughput and trigger latency, each against a baseline of the same run.

1. Sends/s through the whole pipeline — outbox claim, profile fetch, suppression, caps,
   `RenderBatch`, the `mailwright_before_send` hook, the shared token bucket, the real
   SMTP plugin, the outcome recorded with its event — to an SMTP sink in another process,
   against a bare aiosmtplib loop sending the same MIME bytes over one reused connection
   to the same sink. Goal ≥ 0.8. Interleaved rounds (pipeline, then its bare loop); the
   ratio is the median of the rounds' ratios. The clock stops at the sink's own arrival
   stamp of the last message, which the sink announces on its stdout (`--announce`).
2. Trigger latency: from a track event on `events.track` (where ingest publishes it)
   through the profile service and `profiles.changed` to the sink's 250 for the email a
   journey sends at once, p50 and p99, against a bare gRPC round trip (health check) p50
   on the same server. Goal <= 50 times. Rounds of triggers, each round after its own
   round trip; the p50 ratio is the median of the rounds' ratios. The same from
   `profiles.changed` (delivery alone) is reported beside it.

The segment and render services (and, for delivery alone, the profile service) are the
small in-process servicers of the delivery tests (real gRPC, same Platform), so this
measures delivery, not their work. docs/delivery.md ("Figures") says why it is measured
this way.

--quick: 300 sends in one round, one round of 30 latency samples (full run: 2,000 sends,
five rounds; eight rounds of 25 samples).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import aiosmtplib
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.common import Result
from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright_smtp.sink import SinkProcess

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
        shutdown_grace=timedelta(seconds=5),
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
    )


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


class Arrivals:
    """What the sink announces (`--announce`): each message's arrival, on the sink's clock
    (`time.time_ns()` as it stored the message, before its 250), in order of arrival.

    A thread reads the announcements as they come and wakes whoever waits for a count, so
    waiting costs the process being measured next to nothing and ends at once; it used to
    list the sink's directory (thousands of names) every 50 ms, or every 1 ms while timing
    a trigger. The thread keeps reading between measures, so the sink never blocks on a
    full pipe.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stamps: list[int] = []
        self._lock = threading.Lock()
        self._waiting: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._stamps)

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            words = line.split()
            if len(words) < 2 or words[0] != "arrived":
                continue
            with self._lock:
                self._stamps.append(int(words[1]))
                ready = [w for w in self._waiting if w[0] <= len(self._stamps)]
                self._waiting = [w for w in self._waiting if w[0] > len(self._stamps)]
            for _, loop, future in ready:
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, count: int, within: float = 300.0) -> list[int]:
        """The arrival times (ns) once `count` messages have arrived, in arrival order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if len(self._stamps) >= count:
                return list(self._stamps)
            self._waiting.append((count, loop, future))
        try:
            async with asyncio.timeout(within):
                await future
        except TimeoutError:
            raise TimeoutError(f"only {self.count} of {count} messages arrived") from None
        with self._lock:
            return list(self._stamps)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@contextmanager
def _sink(directory: Path) -> Iterator[tuple[int, Arrivals]]:
    """The SMTP sink in its own process, announcing each message: its port and arrivals."""
    with SinkProcess(directory, announce=True) as sink:
        yield sink.port, Arrivals(sink.stdout)


async def _pipeline(
    count: int, work: Path, arrivals: Arrivals, port: int, real_render: bool = False
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
        already = arrivals.count
        started_ns = time.time_ns()
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )
        arrived = await arrivals.wait(already + count)
        return count / ((arrived[already + count - 1] - started_ns) / 1e9)
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


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass(frozen=True)
class LatencyRound:
    """One round: the latencies of its samples (ms) and the round trip p50 just before."""

    latencies: list[float]
    rtt: float

    @property
    def ratio(self) -> float:
        return statistics.median(self.latencies) / self.rtt


async def _rounds(
    clients: Any, rounds: int, samples: int, sample: Callable[[int], Awaitable[float]]
) -> list[LatencyRound]:
    """`rounds` rounds of `samples` samples, each round after its own round trip p50:
    the machine is shared, and a baseline taken in the same seconds as its samples
    drifts with them."""
    done: list[LatencyRound] = []
    for round_ in range(rounds):
        await asyncio.sleep(0.2)  # what the last round's sends publish, out of the way
        rtt = await _round_trip(clients, 100)
        first = round_ * samples
        done.append(LatencyRound([await sample(n) for n in range(first, first + samples)], rtt))
    return done


async def _round_trip(clients: Any, count: int = 200) -> float:
    """p50 of a bare gRPC round trip (health check) on the same server, in ms."""
    health: Any = health_pb2_grpc.HealthStub(clients.channel("delivery"))
    rtts = []
    for _ in range(count):
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


async def _time_to_sink(arrivals: Arrivals, publish: Any) -> float:
    before = arrivals.count
    sent_ns = time.time_ns()
    await publish()
    arrived = await arrivals.wait(before + 1, within=30)
    return (arrived[before] - sent_ns) / 1e6


async def _latency(
    rounds: int, samples: int, work: Path, arrivals: Arrivals, port: int
) -> list[LatencyRound]:
    """Delivery alone: `profiles.changed` → SMTP 250, and the round trip, by rounds."""
    platform = Platform(
        _settings(work, port),
        [*fake_definitions(_world(rounds * samples)), *resolve_services(["delivery"])],
    )
    await platform.start()
    clients = platform.clients()
    try:
        await _welcome_journey(clients)
        bus = platform.runtime.bus  # type: ignore[union-attr]

        async def sample(n: int) -> float:
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

            async def publish() -> None:
                await bus.publish("profiles.changed", change.SerializeToString(), key=f"acme:p{n}")

            return await _time_to_sink(arrivals, publish)

        return await _rounds(clients, rounds, samples, sample)
    finally:
        await clients.close()
        await platform.stop()


async def _latency_with_profile(
    rounds: int, samples: int, work: Path, arrivals: Arrivals, port: int
) -> list[LatencyRound]:
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
        people = rounds * samples
        for n in range(people):
            identify = _identify(n)
            await bus.publish("events.identify", identify.SerializeToString(), key=f"acme:u{n}")
        await _wait_profiles(clients, people)

        async def sample(n: int) -> float:
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

            async def publish() -> None:
                await bus.publish("events.track", event.SerializeToString(), key=f"acme:u{n}")

            return await _time_to_sink(arrivals, publish)

        return await _rounds(clients, rounds, samples, sample)
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
    rounds = 1 if quick else 5
    latency_rounds, samples = (1, 30) if quick else (8, 25)
    rates: list[float] = []
    bares: list[float] = []
    rendered: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        # Interleaved rounds, each pipeline run beside its own bare loop: the machine is
        # shared, and load from elsewhere hits a round's two measures alike. The figure
        # is the median of the rounds' ratios, so one disturbed round does not make it.
        for round_ in range(rounds):
            sink_dir = root / f"sink-{round_}"
            with _sink(sink_dir) as (port, arrivals):
                rates.append(asyncio.run(_pipeline(count, root / f"p{round_}", arrivals, port)))
                bares.append(asyncio.run(_bare(port, sink_dir, count)))
            with _sink(root / f"rendered-sink-{round_}") as (port, arrivals):
                rendered.append(
                    asyncio.run(
                        _pipeline(count, root / f"r{round_}", arrivals, port, real_render=True)
                    )
                )
        with _sink(root / "latency-sink") as (port, arrivals):
            alone = asyncio.run(_latency(latency_rounds, samples, root / "latency", arrivals, port))
        with _sink(root / "chain-sink") as (port, arrivals):
            chain = asyncio.run(
                _latency_with_profile(latency_rounds, samples, root / "chain", arrivals, port)
            )
    bare = statistics.median(bares)
    against_bare = "msg/s bare aiosmtplib, same MIME, one connection"
    return [
        Result(
            "delivery pipeline to SMTP sink",
            statistics.median(rates),
            "msg/s",
            bare,
            against_bare,
            statistics.median(r / b for r, b in zip(rates, bares, strict=True)),
            ">= 0.8",
        ),
        Result(
            "delivery pipeline with render in process",
            statistics.median(rendered),
            "msg/s",
            bare,
            against_bare,
            statistics.median(r / b for r, b in zip(rendered, bares, strict=True)),
            "-",
        ),
        *_latency_results("events.track -> profile -> delivery -> SMTP 250", chain, "<= 50"),
        *_latency_results("profiles.changed -> SMTP 250 (delivery alone)", alone, "-"),
    ]


def _latency_results(name: str, rounds: list[LatencyRound], goal: str) -> list[Result]:
    """p50: the median of the rounds' p50s, against the median of their round trips, and
    the median of the rounds' own ratios; p99: over every sample."""
    rtt = statistics.median(r.rtt for r in rounds)
    p50 = statistics.median(statistics.median(r.latencies) for r in rounds)
    p99 = _p99([latency for r in rounds for latency in r.latencies])
    unit = "ms gRPC round trip p50"
    return [
        Result(
            f"{name}, p50", p50, "ms", rtt, unit, statistics.median(r.ratio for r in rounds), goal
        ),
        Result(f"{name}, p99", p99, "ms", rtt, unit, p99 / rtt, "-"),
    ]


def _main(argv: list[str]) -> None:
    for r in run(quick="--quick" in argv):
        print(
            f"{r.name}: {r.value:.1f} {r.unit} vs {r.baseline:.2f} {r.baseline_unit}"
            f" = {r.ratio:.2f} (goal {r.goal})"
        )


if __name__ == "__main__":
    _main(sys.argv)
