"""Bounces and complaints that come back by email after the relay accepted the message:
the report, POSTed to ingest's `/webhooks/smtp/{workspace}`, reaches delivery on
`events.email` and suppresses the address — the whole way, with the SMTP provider's own
messages (from the sink) inside the reports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from delivery_fakes import World, fake_definitions
from delivery_harness import campaign_state, eventually, newsletter, settings

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright_smtp import fake_reports
from mailwright_smtp.sink import SmtpSink

SECRET = "bounce-secret-0123456789abcdef"
PARENT = "workspaces/acme"


@pytest.fixture
def world() -> World:
    w = World()
    for n in range(4):
        w.person(f"p{n}", f"person{n}@example.com")
    w.segment("everyone", [f"p{n}" for n in range(4)])
    w.template("news")
    return w


@pytest.fixture
async def platform(tmp_path: Path, world: World, sink: SmtpSink) -> AsyncIterator[Platform]:
    config = settings(tmp_path, sink.port)
    config.connectors["smtp"]["webhook_secret"] = SECRET
    definitions = [*fake_definitions(world), *resolve_services(["ingest", "delivery"])]
    running = Platform(config, definitions)
    await running.start()
    yield running
    await running.stop()


async def sent_campaign(clients: Clients) -> dict[str, str]:
    """Send the newsletter to everyone; the send id of each profile."""
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id="first", campaign=newsletter())
    )
    name = created.campaign.name
    await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name))

    async def done() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(done)
    sends = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    return {s.profile_id: s.name.rsplit("/", 1)[-1] for s in sends.sends}


def sent_to(directory: Path, address: str) -> bytes:
    """The message the sink received for `address`, as the relay would return it."""
    for path in sorted(directory.glob("*.eml")):
        data = path.read_bytes()
        if f"To: {address}".encode() in data:
            return data
    raise AssertionError("no message to that address")


async def post(platform: Platform, report: bytes) -> httpx.Response:
    headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}") as http:
        return await http.post("/webhooks/smtp/acme", content=report, headers=headers)


async def reasons(clients: Clients) -> list[int]:
    listed = await clients.delivery.ListSuppressions(pb.ListSuppressionsRequest(parent=PARENT))
    return sorted(s.reason for s in listed.suppressions)


async def test_a_bounce_and_a_complaint_by_email_suppress_their_addresses(
    clients: Clients, platform: Platform, sink: SmtpSink, tmp_path: Path
) -> None:
    sends = await sent_campaign(clients)
    outbox = tmp_path / "outbox"
    bounce = fake_reports.postfix_bounce(
        sent_to(outbox, "person1@example.com"), "person1@example.com"
    )
    complaint = fake_reports.yahoo_complaint(
        sent_to(outbox, "person2@example.com"), "person2@example.com"
    )
    full = fake_reports.exim_bounce(sent_to(outbox, "person3@example.com"), "person3@example.com")
    for report in (bounce, complaint, full):
        answer = await post(platform, report)
        assert (answer.status_code, answer.json()["accepted"]) == (200, 1)

    expected = sorted([pb.SUPPRESSION_REASON_HARD_BOUNCE, pb.SUPPRESSION_REASON_COMPLAINT])

    async def suppressed() -> bool:
        return await reasons(clients) == expected

    await eventually(suppressed)
    bounced = await clients.delivery.GetSend(
        pb.GetSendRequest(name=f"{PARENT}/sends/{sends['p1']}")
    )
    assert bounced.send.state == pb.SEND_STATE_BOUNCED
    assert bounced.send.reason.startswith("550 5.1.1 <<address>>")

    async def soft_recorded() -> bool:
        full_send = await clients.delivery.GetSend(
            pb.GetSendRequest(name=f"{PARENT}/sends/{sends['p3']}")
        )
        return "5.2.2" in full_send.send.reason

    await eventually(soft_recorded)  # a full mailbox counts, and suppresses only after the limit
    assert await reasons(clients) == expected


async def test_a_report_for_a_message_sent_elsewhere_changes_nothing(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    await sent_campaign(clients)
    foreign = b"From: a@else.example\r\nMessage-ID: <x@else.example>\r\n\r\nhi\r\n"
    answer = await post(platform, fake_reports.postfix_bounce(foreign, "person1@example.com"))
    assert (answer.status_code, answer.json()["accepted"]) == (200, 0)
    assert await reasons(clients) == []
