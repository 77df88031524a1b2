"""The send pipeline end to end: gRPC API, the real SMTP plugin, a local SMTP sink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from delivery_fakes import World
from delivery_harness import (
    ScriptedWriter,
    campaign_state,
    eventually,
    message_ids_by_recipient,
    newsletter,
    settings,
    sink_messages,
    start,
    start_sink,
)

from mailwright.connectors import (
    Connector,
    ConnectorConfig,
    ConnectorRegistry,
    RateLimit,
    SendOutcome,
)
from mailwright.connectors.errors import ErrorKind, ProviderError
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.plugins import get_plugins, hookimpl
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"


@pytest.fixture
def world() -> World:
    w = World()
    for n in range(5):
        w.person(f"p{n}", f"person{n}@example.com", first_name=f"P{n}")
    w.segment("everyone", [f"p{n}" for n in range(5)])
    w.segment("nobody", [])
    w.template("news")
    w.template("receipt", marketing=False)
    return w


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[SmtpSink, ScriptedWriter]]:
    started = await start_sink(tmp_path / "outbox")
    yield started
    await started[0].stop()


@pytest.fixture
async def platform(
    tmp_path: Path, world: World, sink: tuple[SmtpSink, ScriptedWriter]
) -> AsyncIterator[Platform]:
    running = await start(world, settings(tmp_path, sink[0].port))
    yield running
    await running.stop()


async def receipt_to(clients: Clients, email: str, request_id: str) -> pb.SendTransactionalResponse:
    """A transactional receipt to `email`, as the call answered it."""
    return await clients.delivery.SendTransactional(
        pb.SendTransactionalRequest(
            parent=PARENT,
            template="receipt",
            email=email,
            sender=pb.Sender(from_address="shop@shop.example"),
            request_id=request_id,
        )
    )


async def reaches(clients: Clients, name: str, state: int) -> pb.Send:
    """Wait until the send is in `state`; the send then."""

    async def there() -> bool:
        got = await clients.delivery.GetSend(pb.GetSendRequest(name=name))
        return got.send.state == state

    await eventually(there)
    return (await clients.delivery.GetSend(pb.GetSendRequest(name=name))).send


async def send_campaign(
    clients: Clients, campaign: pb.Campaign, campaign_id: str = "spring"
) -> str:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id=campaign_id, campaign=campaign)
    )
    name = created.campaign.name
    await clients.delivery.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=name, schedule=pb.Schedule(now=True))
    )
    return name


async def test_a_campaign_reaches_every_member_once_and_is_sent(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter], tmp_path: Path
) -> None:
    name = await send_campaign(clients, newsletter())
    await sink[0].wait_for(5)

    async def finished() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(finished)
    by_recipient = message_ids_by_recipient(tmp_path / "outbox")
    assert sorted(by_recipient) == sorted(f"person{n}@example.com" for n in range(5))
    assert all(len(ids) == 1 for ids in by_recipient.values())
    campaign = (await clients.delivery.GetCampaign(pb.GetCampaignRequest(name=name))).campaign
    assert campaign.audience_size == 5
    assert (campaign.progress.done, campaign.progress.total) == (5, 5)
    report = (
        await clients.delivery.GetCampaignReport(pb.GetCampaignReportRequest(name=name))
    ).report
    assert report.rows[0].dimension == "total"
    assert report.rows[0].sent == 5


async def test_the_message_id_is_derived_from_the_send_key(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter], tmp_path: Path
) -> None:
    name = await send_campaign(clients, newsletter())
    await sink[0].wait_for(5)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends

    async def all_sent() -> bool:
        listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
        return all(s.state == pb.SEND_STATE_SENT for s in listed.sends)

    await eventually(all_sent)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    ids = {f"<{s.provider_message_id}>" for s in sends}
    assert ids == {str(m["Message-ID"]) for m in sink_messages(tmp_path / "outbox")}
    assert all(s.idempotency_key == f"campaign:spring:{s.profile_id}" for s in sends)


async def test_suppressed_and_unsubscribed_people_are_skipped(
    clients: Clients, world: World, sink: tuple[SmtpSink, ScriptedWriter], tmp_path: Path
) -> None:
    world.person("p1", "person1@example.com", consent=profile_pb2.CONSENT_STATUS_UNSUBSCRIBED)
    await clients.delivery.AddSuppression(
        pb.AddSuppressionRequest(
            parent=PARENT, suppression=pb.Suppression(email="Person2@Example.com ")
        )
    )
    name = await send_campaign(clients, newsletter())

    async def finished() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(finished)
    assert sorted(message_ids_by_recipient(tmp_path / "outbox")) == [
        "person0@example.com",
        "person3@example.com",
        "person4@example.com",
    ]
    skipped = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=name, state=pb.SEND_STATE_SKIPPED)
    )
    assert sorted(s.reason for s in skipped.sends) == [
        "no consent: unsubscribed",
        "suppressed: manual",
    ]


async def test_a_suppression_keeps_only_the_hash(clients: Clients) -> None:
    added = await clients.delivery.AddSuppression(
        pb.AddSuppressionRequest(parent=PARENT, suppression=pb.Suppression(email="a@example.com"))
    )
    assert added.suppression.email == ""
    assert len(added.suppression.email_hash) == 64
    listed = await clients.delivery.ListSuppressions(pb.ListSuppressionsRequest(parent=PARENT))
    assert [s.email_hash for s in listed.suppressions] == [added.suppression.email_hash]
    await clients.delivery.RemoveSuppression(
        pb.RemoveSuppressionRequest(name=added.suppression.name)
    )
    listed = await clients.delivery.ListSuppressions(pb.ListSuppressionsRequest(parent=PARENT))
    assert list(listed.suppressions) == []


@pytest.mark.parametrize(
    ("campaign", "code", "text"),
    [
        (newsletter(segment=""), grpc.StatusCode.INVALID_ARGUMENT, "include_segments"),
        (newsletter(segment="ghosts"), grpc.StatusCode.INVALID_ARGUMENT, "no segment"),
        (newsletter(segment="nobody"), grpc.StatusCode.FAILED_PRECONDITION, "audience is empty"),
        (newsletter(template="nope"), grpc.StatusCode.INVALID_ARGUMENT, "unknown template"),
        (newsletter(template="receipt"), grpc.StatusCode.FAILED_PRECONDITION, "unsubscribe"),
    ],
)
async def test_a_campaign_that_cannot_be_sent_is_refused_clearly(
    clients: Clients, campaign: pb.Campaign, code: grpc.StatusCode, text: str
) -> None:
    if not campaign.audience.include_segments[0]:
        del campaign.audience.include_segments[:]
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id="bad", campaign=campaign)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )
    assert caught.value.code() == code
    assert text in (caught.value.details() or "")


async def test_a_schedule_in_the_past_is_refused(clients: Clients) -> None:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id="late", campaign=newsletter())
    )
    past = pb.Schedule()
    past.send_time.FromSeconds(1_000_000_000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name, schedule=past)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "schedule.send_time" in (caught.value.details() or "")


async def test_a_transactional_send_is_answered_when_the_provider_accepts(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    request = pb.SendTransactionalRequest(
        parent=PARENT,
        template="receipt",
        email="buyer@example.com",
        sender=pb.Sender(from_address="shop@shop.example"),
        request_id="order-1001",
    )
    request.context.update({"order": "1001"})
    first = await clients.delivery.SendTransactional(request)
    again = await clients.delivery.SendTransactional(request)
    assert first.send.state == pb.SEND_STATE_SENT
    assert first.send.provider_message_id
    assert again.send.name == first.send.name
    assert sink[0].received == 1


async def test_a_send_outlasting_its_lease_is_not_sent_again_by_a_sibling_worker(
    tmp_path: Path, world: World, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    # The provider takes longer than the lease: a sibling worker of the same replica
    # claims the send again once the lease runs out. It must leave it to the worker that
    # has it in hand — both share the replica's lease owner, so the lease cannot tell.
    sink[1].rcpt_delays["slow@example.com"] = 2.5
    config = settings(tmp_path, sink[0].port, send_lease="1s", worker_concurrency=2)
    platform = await start(world, config)
    clients = platform.clients()
    try:
        response = await receipt_to(clients, "slow@example.com", "slow-1")

        await reaches(clients, response.send.name, pb.SEND_STATE_SENT)
        await asyncio.sleep(1.5)  # time for a second delivery to reach the sink
        assert sink[0].received == 1
    finally:
        await clients.close()
        await platform.stop()


async def test_transactional_mail_reaches_an_unsubscribed_person(
    clients: Clients, world: World, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    world.person("p1", "person1@example.com", consent=profile_pb2.CONSENT_STATUS_UNSUBSCRIBED)
    response = await clients.delivery.SendTransactional(
        pb.SendTransactionalRequest(
            parent=PARENT,
            template="receipt",
            profile="workspaces/acme/profiles/p1",
            sender=pb.Sender(from_address="shop@shop.example"),
            request_id="r-2",
        )
    )
    assert response.send.state == pb.SEND_STATE_SENT


async def test_a_mailbox_full_is_retried_then_sent(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    sink[1].rcpt_replies["buyer@example.com"] = ["452 4.2.2 Mailbox full", "250 OK"]
    response = await receipt_to(clients, "buyer@example.com", "r-3")

    await reaches(clients, response.send.name, pb.SEND_STATE_SENT)
    got = await clients.delivery.GetSend(pb.GetSendRequest(name=response.send.name))
    assert got.send.attempts == 2


async def test_a_send_that_keeps_failing_is_parked_then_retried_by_command(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    sink[1].rcpt_replies["buyer@example.com"] = ["451 4.3.0 Try again later"]
    response = await receipt_to(clients, "buyer@example.com", "r-4")
    name = response.send.name

    got = await reaches(clients, name, pb.SEND_STATE_PARKED)
    assert got.reason.startswith("gave up after 3 attempts")
    assert got.attempts == 3
    del sink[1].rcpt_replies["buyer@example.com"]
    retried = await clients.delivery.RetrySends(
        pb.RetrySendsRequest(parent=PARENT, sends=[name], request_id="retry-1")
    )
    assert retried.requeued_count == 1

    await reaches(clients, name, pb.SEND_STATE_SENT)
    assert sink[0].received == 1


async def test_a_rejected_address_bounces_and_is_suppressed_at_once(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    sink[1].rcpt_replies["person3@example.com"] = ["550 5.1.1 No such user"]
    name = await send_campaign(clients, newsletter())

    async def finished() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(finished)
    bounced = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=name, state=pb.SEND_STATE_BOUNCED)
    )
    assert [s.profile_id for s in bounced.sends] == ["p3"]
    assert "<address>" in bounced.sends[0].reason or "5.1.1" in bounced.sends[0].reason
    listed = await clients.delivery.ListSuppressions(
        pb.ListSuppressionsRequest(parent=PARENT, reason=pb.SUPPRESSION_REASON_HARD_BOUNCE)
    )
    assert len(listed.suppressions) == 1


async def test_a_refused_message_is_parked_at_once_with_its_reason(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    sink[1].rcpt_replies["buyer@example.com"] = ["554 5.7.1 Message refused by policy"]
    response = await receipt_to(clients, "buyer@example.com", "r-554")
    assert response.send.state == pb.SEND_STATE_PARKED
    assert response.send.reason.startswith("rejected")
    assert response.send.attempts == 1


async def test_a_mailbox_that_stays_full_is_parked_and_suppressed_after_the_limit(
    clients: Clients, sink: tuple[SmtpSink, ScriptedWriter]
) -> None:
    sink[1].rcpt_replies["full@example.com"] = ["452 4.2.2 Mailbox full"]
    response = await receipt_to(clients, "full@example.com", "r-full")

    got = await reaches(clients, response.send.name, pb.SEND_STATE_PARKED)
    assert "soft bounces" in got.reason
    suppressed = await clients.delivery.ListSuppressions(
        pb.ListSuppressionsRequest(parent=PARENT, reason=pb.SUPPRESSION_REASON_SOFT_BOUNCES)
    )
    assert len(suppressed.suppressions) == 1
    assert sink[0].received == 0


class _Refusing:
    """An email provider that refuses every message because the person complained."""

    rate_limit = RateLimit(per_second=100, burst=10)
    max_batch_size = 1

    def __init__(self, config: object) -> None:
        self.config = config

    async def send(self, message: object) -> str:
        raise ProviderError(
            ErrorKind.REJECTED,
            "recipient marked mail as spam",
            code="reject:spam",
            suppress="complaint",
        )

    async def send_batch(self, messages: list[object]) -> list[SendOutcome]:
        outcomes = []
        for message in messages:
            try:
                await self.send(message)
            except ProviderError as error:
                outcomes.append(SendOutcome(message.send_id, error=error))  # type: ignore[attr-defined]
        return outcomes

    async def aclose(self) -> None:
        return None


class _RefusingPlugin:
    @hookimpl
    def mailwright_register_connectors(self, registry: ConnectorRegistry) -> None:
        registry.register(Connector("refusing-test", ConnectorConfig, email_provider=_Refusing))


async def test_a_provider_refusal_that_suppresses_adds_the_suppression(
    clients: Clients,
) -> None:
    plugins = get_plugins()
    if "refusing-test" not in plugins.connectors.names():
        plugins.register(_RefusingPlugin(), "refusing-test")
    response = await clients.delivery.SendTransactional(
        pb.SendTransactionalRequest(
            parent=PARENT,
            template="receipt",
            email="complainer@example.com",
            sender=pb.Sender(from_address="shop@shop.example", provider="refusing-test"),
            request_id="r-spam",
        )
    )
    assert response.send.state == pb.SEND_STATE_SKIPPED
    assert "spam" in response.send.reason
    listed = await clients.delivery.ListSuppressions(
        pb.ListSuppressionsRequest(parent=PARENT, reason=pb.SUPPRESSION_REASON_COMPLAINT)
    )
    assert len(listed.suppressions) == 1
