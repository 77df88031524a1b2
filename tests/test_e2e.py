"""The whole flow through the public interfaces only: gRPC, the HTTP edge and the CLI.

A browser-style event at the HTTP edge (Segment's `/v1/batch`, with a write key) becomes
a profile, the profile enters a segment, the segment entry starts a journey, the journey's
email is rendered with tracking and lands in an SMTP sink; following its tracked link
redirects and records a click, and an `Order Completed` after it is attributed to the
journey's step in its report. The one-click unsubscribe URL of that email suppresses the
next send to the person. Finally `DeleteProfile` erases the person, and no service has
anything of them left but what the design keeps (a hashed suppression, anonymous sends).

Runs twice: embedded (`mailwright up` in this process: SQLite, in-memory bus) and
distributed (`LocalCluster`: one process per service on PostgreSQL and Redis; skipped
without those servers, failed when `MAILWRIGHT_TEST_REQUIRE_SERVICES=1`).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest
import sqlalchemy as sa
import yaml

from mailwright.common.v1 import common_pb2
from mailwright.delivery.v1 import delivery_pb2 as dpb
from mailwright.ingest.v1 import ingest_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2
from mailwright.runtime.auth import TokenAuthority
from mailwright.runtime.clients import Clients
from mailwright.runtime.cluster import LocalCluster, free_port
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import SERVICE_NAMES, Settings
from mailwright.segment.v1 import segment_pb2
from mailwright_delivery.model import email_hash
from mailwright_smtp.sink import SmtpSink

pytestmark = pytest.mark.slow

WORKSPACE = "acme"
PARENT = f"workspaces/{WORKSPACE}"
SECRET = "e" * 48
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
SHOP = "https://shop.example/spring?utm_source=mail"
DELIVERY = {
    "poll_interval": "50ms",
    "send_lease": "5s",
    "timer_lease": "5s",
    "consumer_block": "100ms",
    "consumer_retry_backoff": "100ms",
}

T = TypeVar("T")


@dataclass
class Deployment:
    """A running Mailwright as its users reach it."""

    clients: Clients
    edge: str
    sink: SmtpSink
    token: str
    delivery_address: str
    database_urls: dict[str, str]
    redis: tuple[str, str] | None = None


def connectors(sink_port: int) -> dict[str, Any]:
    return {
        "smtp": {
            "host": "127.0.0.1",
            "port": sink_port,
            "security": "none",
            "rate_per_second": 100,
            "timeout": "5s",
        }
    }


@pytest.fixture(params=["embedded", "distributed"])
async def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Deployment]:
    sink = await SmtpSink(tmp_path / "outbox").start()
    try:
        if request.param == "embedded":
            async with _embedded(tmp_path, sink) as running:
                yield running
        else:
            postgres: str = request.getfixturevalue("postgres_url")
            redis_url: str = request.getfixturevalue("redis_url")
            namespace: str = request.getfixturevalue("redis_namespace")
            async with _distributed(tmp_path, sink, postgres, redis_url, namespace) as running:
                yield running
    finally:
        await sink.stop()


class _embedded:
    """`mailwright up` in this process: all five services, one gRPC port, the edge."""

    def __init__(self, tmp_path: Path, sink: SmtpSink) -> None:
        http_port = free_port()
        self.settings = Settings(
            data_dir=tmp_path / "data",
            grpc_port=0,
            http_port=http_port,
            auth_secret=SECRET,
            bus_url=f"memory://e2e-{uuid.uuid4().hex[:8]}",
            kv_url="",
            database_url="",
            shutdown_grace=timedelta(seconds=2),
            public_base_url=f"http://127.0.0.1:{http_port}",
            services={"delivery": DELIVERY},
            connectors=connectors(sink.port),
        )
        self.platform = Platform(self.settings, resolve_services(list(SERVICE_NAMES)))
        self.sink = sink
        self.tmp_path = tmp_path

    async def __aenter__(self) -> Deployment:
        await self.platform.start()
        token = TokenAuthority(SECRET).issue(WORKSPACE, ["*"])
        data = Path(self.settings.data_dir)
        self.clients = self.platform.clients(token)
        return Deployment(
            clients=self.clients,
            edge=self.settings.public_base_url,
            sink=self.sink,
            token=token,
            delivery_address=f"127.0.0.1:{self.platform.grpc_port}",
            database_urls={name: f"sqlite:///{path}" for name, path in _sqlite_files(data).items()},
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.clients.close()
        await self.platform.stop()


def _sqlite_files(data: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted(data.rglob("*.db"))}


class _distributed:
    """Each service in its own process on PostgreSQL and Redis, as pods would be."""

    def __init__(
        self, tmp_path: Path, sink: SmtpSink, postgres: str, redis_url: str, namespace: str
    ) -> None:
        config = tmp_path / "mailwright.yaml"
        config.write_text(
            yaml.safe_dump(
                {"services": {"delivery": DELIVERY}, "connectors": connectors(sink.port)}
            )
        )
        self.cluster = LocalCluster(
            database_url=postgres,
            redis_url=redis_url,
            data_dir=tmp_path / "cluster",
            namespace=namespace,
            auth_secret=SECRET,
            extra_env={"MAILWRIGHT_CONFIG": str(config)},
        )
        self.sink = sink
        self.postgres = postgres
        self.redis = (redis_url, namespace)

    async def __aenter__(self) -> Deployment:
        # `start` runs its own event loop while it waits for the processes: off this one.
        await asyncio.to_thread(self.cluster.start, 90.0)
        token = TokenAuthority(SECRET).issue(WORKSPACE, ["*"])
        addresses = {name: self.cluster.address(name) for name in SERVICE_NAMES}
        self.clients = Clients(Settings(auth_secret=SECRET, addresses=addresses), token)
        return Deployment(
            clients=self.clients,
            edge=f"http://127.0.0.1:{self.cluster.http_port}",
            sink=self.sink,
            token=token,
            delivery_address=addresses["delivery"],
            database_urls={"all": self.postgres},
            redis=self.redis,
        )

    async def __aexit__(self, *exc: object) -> None:
        await self.clients.close()
        await asyncio.to_thread(self.cluster.stop)


# -- helpers ------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, within: float = 30.0
) -> T:
    """The first truthy result of `check`, polled until `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        try:
            result = await check()
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                raise
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.1)


def read_email(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def html_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content: str = part.get_content()
    return content


def cli(deployment: Deployment, *args: str) -> str:
    """Run a `mailwright` delivery command against the deployment; its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailwright.cli",
            *args,
            "--address",
            deployment.delivery_address,
            "--token",
            deployment.token,
            "--workspace",
            WORKSPACE,
        ],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def setup_workspace(clients: Clients) -> tuple[str, str]:
    """A write key, a published marketing template, a segment and a journey on it."""
    key = await clients.ingest.CreateWriteKey(
        ingest_pb2.CreateWriteKeyRequest(parent=PARENT, display_name="storefront")
    )
    body = (
        "<p>Hello {{ first_name }}, spring is here.</p>"
        f'<p><a href="{SHOP}">See the collection</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'
    )
    content = render_pb2.TemplateContent(
        subjects=[render_pb2.TextVariant(key="a", template="Welcome, {{ first_name }}")],
        body=body,
        category=render_pb2.TEMPLATE_CATEGORY_MARKETING,
        postal_address="1 Main Street, Springfield",
    )
    made = await clients.render.CreateTemplate(
        render_pb2.CreateTemplateRequest(parent=PARENT, template_id="welcome", content=content)
    )
    await clients.render.PublishTemplate(render_pb2.PublishTemplateRequest(name=made.version.name))
    await clients.segment.CreateSegment(
        segment_pb2.CreateSegmentRequest(
            parent=PARENT,
            segment_id="browsers",
            segment=segment_pb2.Segment(rule_text='event "Product Viewed"'),
        )
    )
    sender = dpb.Sender(from_address="hello@shop.example", from_name="Shop")
    journey = dpb.Journey(
        display_name="Welcome browsers",
        trigger=dpb.JourneyTrigger(segment_entered="browsers"),
        steps=[
            dpb.JourneyStep(
                id="welcome", next="done", send=dpb.SendStep(template="welcome", sender=sender)
            ),
            dpb.JourneyStep(id="done", exit=dpb.ExitStep()),
        ],
    )
    created = await clients.delivery.CreateJourney(
        dpb.CreateJourneyRequest(parent=PARENT, journey_id="welcome", journey=journey)
    )
    await clients.delivery.ActivateJourney(dpb.ActivateJourneyRequest(name=created.journey.name))
    return key.write_key.key, created.journey.name


async def lookup(clients: Clients, kind: str, value: str) -> profile_pb2.Profile:
    reply = await clients.profile.LookupProfile(
        profile_pb2.LookupProfileRequest(
            parent=PARENT, identity=common_pb2.Identity(type=kind, value=value)
        )
    )
    return reply.profile


def step_row(report: dpb.GetJourneyReportResponse, step: str) -> dpb.ReportRow:
    rows = {row.dimension: row for row in report.report.rows}
    return rows[f"step:{step}"]


# -- the flow -----------------------------------------------------------------------------


async def test_browse_to_email_to_click_to_order_then_unsubscribe_and_erasure(
    deployment: Deployment,
) -> None:
    clients = deployment.clients
    write_key, journey = await setup_workspace(clients)
    person = f"u-{uuid.uuid4().hex[:8]}"
    anonymous = f"anon-{uuid.uuid4().hex[:8]}"
    address = f"{person}@example.com"

    async with httpx.AsyncClient(
        base_url=deployment.edge, auth=(write_key, ""), headers={"User-Agent": BROWSER}
    ) as http:
        # 1. A browser: an anonymous product view, then the visitor signs up.
        batch = {
            "batch": [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": anonymous,
                    "properties": {"product_id": "sku-1", "name": "Linen shirt"},
                },
                {
                    "type": "identify",
                    "userId": person,
                    "anonymousId": anonymous,
                    "traits": {"email": address, "first_name": "Ada"},
                },
            ],
            "context": {"userAgent": BROWSER, "page": {"url": "https://shop.example/p/sku-1"}},
        }
        answer = await http.post("/v1/batch", json=batch)
        assert answer.status_code == 200, answer.text

        # 2. One profile for both ids; it enters the segment.
        async def identified() -> profile_pb2.Profile | None:
            profile = await lookup(clients, "user_id", person)
            ids = {(i.identity.type, i.identity.value) for i in profile.identities}
            return profile if ("anonymous_id", anonymous) in ids else None

        profile = await eventually(identified, "the profile joins the user and anonymous ids")
        profile_id = profile.profile_id

        async def member() -> bool:
            reply = await clients.segment.ListProfileMemberships(
                segment_pb2.ListProfileMembershipsRequest(parent=PARENT, profile_id=profile_id)
            )
            return f"{PARENT}/segments/browsers" in reply.segments

        await eventually(member, "the profile enters the segment")

        # 3. The journey's email, rendered and tracked, reaches the SMTP sink (a loaded
        # machine runs the distributed deployment's five processes slowly).
        try:
            (path,) = await deployment.sink.wait_for(1, within=120)
        except TimeoutError:
            # Say where the send stopped. Seen on loaded runs: SKIPPED 'no email address',
            # the view applied before the sign-up (now the send waits for the address:
            # docs/delivery.md, 'Waiting for an address').
            sends = await clients.delivery.ListSends(
                dpb.ListSendsRequest(parent=PARENT, profile_id=profile_id)
            )
            found = [
                (s.name, dpb.SendState.Name(s.state), s.reason, s.journey_step) for s in sends.sends
            ]
            pytest.fail(f"no email reached the sink within 120 s; the person's sends: {found}")
        message = read_email(path)
        assert str(message["To"]) == address
        assert str(message["Subject"]) == "Welcome, Ada"
        html = html_of(message)
        links = re.findall(r'href="([^"]+)"', html)
        clicks = [link for link in links if link.startswith(f"{deployment.edge}/t/c/")]
        assert len(clicks) == 1, links
        assert SHOP not in links  # the shop link is tracked, not left as written
        unsubscribe = re.search(r"<(http[^>]+/u/[^>]+)>", str(message["List-Unsubscribe"]))
        assert unsubscribe is not None

        # 4. The click: redirected to the shop, recorded against the send.
        followed = await http.get(clicks[0].replace("&amp;", "&"), follow_redirects=False)
        assert followed.status_code == 302
        assert followed.headers["location"] == SHOP

        async def clicked() -> dpb.GetJourneyReportResponse | None:
            report = await clients.delivery.GetJourneyReport(
                dpb.GetJourneyReportRequest(name=journey)
            )
            return report if step_row(report, "welcome").unique_clicks == 1 else None

        await eventually(clicked, "the click shows in the journey report")
        await eventually(
            lambda: _has_event(clients, profile.name, "Email Link Clicked"),
            "the click reaches the person's history (the token names the profile)",
        )

        # 5. An order after the click is attributed to the journey's email.
        order = {
            "userId": person,
            "event": "Order Completed",
            "properties": {"order_id": "o-1", "revenue": 59.5, "currency": "EUR"},
        }
        assert (await http.post("/v1/track", json=order)).status_code == 200

        async def converted() -> dpb.ReportRow | None:
            report = await clients.delivery.GetJourneyReport(
                dpb.GetJourneyReportRequest(name=journey)
            )
            row = step_row(report, "welcome")
            return row if row.conversions == 1 else None

        row = await eventually(converted, "the order is attributed to the journey's send")
        assert row.sent == 1
        assert row.revenue.currency_code == "EUR"

        # 6. The one-click unsubscribe (RFC 8058): a POST to the List-Unsubscribe URL.
        gone = await http.post(
            unsubscribe.group(1),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert gone.status_code == 200

        async def unsubscribed() -> bool:
            got = await clients.profile.GetProfile(profile_pb2.GetProfileRequest(name=profile.name))
            return any(
                c.channel == profile_pb2.CHANNEL_EMAIL
                and c.status == profile_pb2.CONSENT_STATUS_UNSUBSCRIBED
                for c in got.profile.consents
            )

        await eventually(unsubscribed, "the person's email consent is unsubscribed")
        await eventually(
            lambda: _suppressed(clients, address), "delivery suppresses the unsubscribed address"
        )

    # 7. The next send to the person is skipped, and nothing reaches the sink.
    campaign = await clients.delivery.CreateCampaign(
        dpb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id="summer",
            campaign=dpb.Campaign(
                audience=dpb.Audience(include_segments=["browsers"]),
                template="welcome",
                sender=dpb.Sender(from_address="hello@shop.example"),
                category=dpb.CATEGORY_MARKETING,
            ),
        )
    )
    await clients.delivery.ScheduleCampaign(
        dpb.ScheduleCampaignRequest(name=campaign.campaign.name)
    )

    async def skipped() -> dpb.Send | None:
        reply = await clients.delivery.ListSends(
            dpb.ListSendsRequest(parent=PARENT, campaign=campaign.campaign.name)
        )
        settled = [s for s in reply.sends if s.state != dpb.SEND_STATE_QUEUED]
        return settled[0] if settled else None

    send = await eventually(skipped, "the campaign's send to the person settles")
    assert send.state == dpb.SEND_STATE_SKIPPED, send
    assert "unsubscribed" in send.reason or "suppress" in send.reason, send.reason
    await asyncio.sleep(0.5)
    assert deployment.sink.received == 1
    # The CLI reports it too: one in the audience, none sent, one skipped.
    report = await asyncio.to_thread(cli, deployment, "campaigns", "report", "summer")
    total = next(line for line in report.splitlines() if "total" in line)
    columns = [cell.strip() for cell in total.split("│") if cell.strip()]
    assert columns[:3] == ["total", "1", "0"], report
    assert columns[-1] == "1", report

    # 8. Erasure: nothing of the person is left in any service.
    await erase_and_check(deployment, profile, person, anonymous, address)


async def _has_event(clients: Clients, profile: str, name: str) -> bool:
    reply = await clients.profile.ListProfileEvents(
        profile_pb2.ListProfileEventsRequest(parent=profile, page_size=100)
    )
    return any(event.event == name for event in reply.events)


async def _suppressed(clients: Clients, address: str) -> bool:
    reply = await clients.delivery.ListSuppressions(
        dpb.ListSuppressionsRequest(parent=PARENT, page_size=100)
    )
    return any(s.reason == dpb.SUPPRESSION_REASON_UNSUBSCRIBED for s in reply.suppressions)


async def erase_and_check(
    deployment: Deployment,
    profile: profile_pb2.Profile,
    person: str,
    anonymous: str,
    address: str,
) -> None:
    clients = deployment.clients
    await clients.profile.DeleteProfile(
        profile_pb2.DeleteProfileRequest(name=profile.name, request_id=uuid.uuid4().hex)
    )
    profile_id = profile.profile_id
    for kind, value in (("user_id", person), ("anonymous_id", anonymous), ("email", address)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await lookup(clients, kind, value)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.profile.GetProfile(profile_pb2.GetProfileRequest(name=profile.name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    async def left_segment() -> bool:
        reply = await clients.segment.ListProfileMemberships(
            segment_pb2.ListProfileMembershipsRequest(parent=PARENT, profile_id=profile_id)
        )
        members = await clients.segment.ListMembers(
            segment_pb2.ListMembersRequest(parent=f"{PARENT}/segments/browsers")
        )
        return not reply.segments and profile_id not in {m.profile_id for m in members.members}

    await eventually(left_segment, "segment forgets the person")

    async def anonymous_sends() -> bool:
        reply = await clients.delivery.ListSends(dpb.ListSendsRequest(parent=PARENT))
        return bool(reply.sends) and all(not s.profile_id for s in reply.sends)

    await eventually(anonymous_sends, "delivery's sends lose their link to the person")
    mine = await clients.delivery.ListSends(
        dpb.ListSendsRequest(parent=PARENT, profile_id=profile_id)
    )
    assert list(mine.sends) == []
    suppressions = await clients.delivery.ListSuppressions(
        dpb.ListSuppressionsRequest(parent=PARENT, page_size=100)
    )
    # Only a hash remains (the first reason kept): never shown, never mailed again.
    (kept,) = suppressions.suppressions
    assert kept.email == ""
    assert kept.email_hash == email_hash(address)
    assert kept.reason == dpb.SUPPRESSION_REASON_UNSUBSCRIBED
    # Published outbox rows (the `profiles.deleted` message names the id) go on the
    # relay's next pass: wait for that, then nothing of the person may be left.
    needles = [person, anonymous, address, profile_id]
    leftovers: list[str] = []

    async def nothing_left() -> bool:
        leftovers[:] = await asyncio.to_thread(find_person_anywhere, deployment, needles)
        return not leftovers

    with contextlib.suppress(AssertionError):
        await eventually(nothing_left, "no trace of the person", within=15)
    assert leftovers == []


def find_person_anywhere(deployment: Deployment, needles: list[str]) -> list[str]:
    """Every table row and key-value entry that still holds one of `needles`, except
    the records the design keeps on purpose (profile's erasure log names the erased id)."""
    kept = {"profile_erasures"}
    found: list[str] = []
    lowered = [needle.lower() for needle in needles]
    for url in deployment.database_urls.values():
        engine = sa.create_engine(url)
        try:
            meta = sa.MetaData()
            meta.reflect(engine)
            with engine.connect() as connection:
                for table in meta.sorted_tables:
                    if table.name in kept or table.name.startswith("alembic_version"):
                        continue
                    for row in connection.execute(sa.select(table)):
                        for column, value in row._mapping.items():
                            text = str(value).lower()
                            for needle in lowered:
                                if needle in text:
                                    found.append(f"{table.name}.{column}: {needle}")
        finally:
            engine.dispose()
    if deployment.redis is not None:
        import redis

        url, namespace = deployment.redis
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(match=f"{namespace}*", count=1000):
                name = key.decode("utf-8", "replace").lower()
                for needle in lowered:
                    if needle in name:
                        found.append(f"redis key {name}")
        finally:
            client.close()
    return sorted(set(found))
