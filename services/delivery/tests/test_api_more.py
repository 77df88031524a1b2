"""Hooks, bandits, local-time schedules, a profile service that is down, request ids,
workspace isolation, and the pipeline on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from delivery_fakes import World
from delivery_harness import campaign_state, eventually, newsletter, settings, start, start_sink

from mailwright.connectors import OutboundMessage, SendOutcome
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.extensions import SendVeto
from mailwright.plugins import get_plugins, hookimpl
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"


@pytest.fixture
def world() -> World:
    w = World()
    w.person("p0", "ann@example.com", timezone="Europe/Paris", best_send_hour=19)
    w.person("p1", "bob@competitor.example", timezone="Asia/Tokyo")
    w.person("p2", "cy@example.com", timezone="America/New_York")
    w.segment("everyone", ["p0", "p1", "p2"])
    w.template("news")
    return w


@pytest.fixture
async def platform(tmp_path: Path, world: World, sink: SmtpSink) -> AsyncIterator[Platform]:
    running = await start(world, settings(tmp_path, sink.port))
    yield running
    await running.stop()


async def create(clients: Clients, campaign: pb.Campaign, campaign_id: str, **extra: Any) -> str:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id=campaign_id, campaign=campaign)
    )
    await clients.delivery.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=created.campaign.name, **extra)
    )
    return created.campaign.name


async def until_sent(clients: Clients, name: str) -> None:
    async def done() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(done)


class Guard:
    """A plugin: vetoes mail to competitors, and watches outcomes."""

    def __init__(self) -> None:
        self.outcomes: list[SendOutcome] = []

    @hookimpl
    def mailwright_before_send(self, message: OutboundMessage) -> SendVeto | None:
        if message.to_address.endswith("@competitor.example"):
            return SendVeto("no mail to competitors", code="competitor")
        return None

    @hookimpl
    def mailwright_after_send(self, message: OutboundMessage, outcome: SendOutcome) -> None:
        self.outcomes.append(outcome)


async def test_a_veto_skips_the_send_and_after_send_sees_every_outcome(
    clients: Clients, sink: SmtpSink
) -> None:
    guard = Guard()
    plugins = get_plugins()
    plugins.register(guard, "guard-test")
    try:
        name = await create(clients, newsletter(), "guarded")
        await until_sent(clients, name)
    finally:
        plugins.manager.unregister(guard, name="guard-test")
    skipped = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=name, state=pb.SEND_STATE_SKIPPED)
    )
    assert [(s.profile_id, s.reason) for s in skipped.sends] == [
        ("p1", "vetoed (competitor): no mail to competitors")
    ]
    assert sink.received == 2
    assert len(guard.outcomes) == 2
    assert all(o.ok for o in guard.outcomes)


async def test_a_bandit_gives_every_send_a_variant_and_keeps_it(clients: Clients) -> None:
    experiment = pb.Experiment(
        kind=pb.EXPERIMENT_KIND_BANDIT,
        variants=[
            pb.ExperimentVariant(key="a", subject_variant="a"),
            pb.ExperimentVariant(key="b", subject_variant="b"),
        ],
    )
    name = await create(clients, newsletter(experiment=experiment), "bandit")
    await until_sent(clients, name)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    assert sorted(s.variant in ("a", "b") for s in sends) == [True, True, True]


async def test_local_time_makes_each_send_due_at_that_hour_in_its_zone(clients: Clients) -> None:
    now = datetime.now(UTC)
    # A day whose 23:30 has come somewhere (the campaign starts) and not everywhere.
    day = (now - timedelta(hours=9, minutes=30)).date()
    when = pb.Schedule(local_time=pb.LocalTime(date=day.isoformat(), hour=23, minute=30))
    name = await create(clients, newsletter(), "night-owls", schedule=when)

    async def snapshotted() -> bool:
        listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
        return len(listed.sends) == 3

    await eventually(snapshotted)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    zones = {"p0": "Europe/Paris", "p1": "Asia/Tokyo", "p2": "America/New_York"}
    for send in sends:
        local = datetime.combine(day, time(23, 30), tzinfo=ZoneInfo(zones[send.profile_id]))
        due = send.due_time.ToDatetime(tzinfo=UTC)
        if local > now + timedelta(minutes=2):
            assert due == local  # later today in that zone: due then
        else:
            # already past there (due at once), or passing while the snapshot was taken
            assert due <= max(local, datetime.now(UTC))


async def test_best_time_uses_the_computed_best_hour(clients: Clients) -> None:
    start_time = datetime.now(UTC)
    when = pb.Schedule(best_time=pb.BestTime())
    when.best_time.start_time.FromDatetime(start_time)
    when.best_time.window.FromTimedelta(timedelta(days=1))
    name = await create(clients, newsletter(), "best", schedule=when)

    async def snapshotted() -> bool:
        listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
        return len(listed.sends) == 3

    await eventually(snapshotted, within=15)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    ann = next(s for s in sends if s.profile_id == "p0")
    due = ann.due_time.ToDatetime(tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert (due.hour, due.minute) == (19, 0)


async def test_sends_wait_while_the_profile_service_is_down(
    clients: Clients, world: World, sink: SmtpSink
) -> None:
    world.profiles_down = True
    name = await create(clients, newsletter(), "outage")
    await asyncio.sleep(1.0)
    assert sink.received == 0
    queued = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=name, state=pb.SEND_STATE_QUEUED)
    )
    assert len(queued.sends) == 3
    world.profiles_down = False
    await sink.wait_for(3, within=15)


async def test_a_retried_request_id_gets_the_first_answer(clients: Clients) -> None:
    request = pb.CreateCampaignRequest(
        parent=PARENT, campaign_id="once", campaign=newsletter(), request_id="req-1"
    )
    first = await clients.delivery.CreateCampaign(request)
    again = await clients.delivery.CreateCampaign(request)
    assert again == first
    other = pb.CreateCampaignRequest(
        parent=PARENT, campaign_id="twice", campaign=newsletter(), request_id="req-1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.CreateCampaign(other)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in (caught.value.details() or "")


async def test_another_workspace_sees_nothing(platform: Platform, clients: Clients) -> None:
    name = (
        await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(parent=PARENT, campaign_id="mine", campaign=newsletter())
        )
    ).campaign.name
    runtime = platform.runtime
    assert runtime is not None
    stranger = platform.clients(runtime.authority.issue("other", ["*"], subject="stranger"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stranger.delivery.GetCampaign(pb.GetCampaignRequest(name=name))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        mine = await stranger.delivery.ListCampaigns(
            pb.ListCampaignsRequest(parent="workspaces/other")
        )
        assert list(mine.campaigns) == []
    finally:
        await stranger.close()


async def test_a_page_token_is_refused_with_other_filters(clients: Clients) -> None:
    for n in range(3):
        await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(parent=PARENT, campaign_id=f"c{n}", campaign=newsletter())
        )
    page = await clients.delivery.ListCampaigns(pb.ListCampaignsRequest(parent=PARENT, page_size=2))
    assert len(page.campaigns) == 2
    rest = await clients.delivery.ListCampaigns(
        pb.ListCampaignsRequest(parent=PARENT, page_size=2, page_token=page.next_page_token)
    )
    assert [c.name for c in rest.campaigns] == [f"{PARENT}/campaigns/c2"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.ListCampaigns(
            pb.ListCampaignsRequest(
                parent=PARENT,
                page_token=page.next_page_token,
                state=pb.CAMPAIGN_STATE_SENT,
            )
        )
    assert "page_token" in (caught.value.details() or "")


@pytest.mark.postgres
async def test_a_campaign_goes_out_on_postgresql(
    tmp_path: Path, world: World, postgres_url: str
) -> None:
    sink, _ = await start_sink(tmp_path / "pg-outbox")
    config = settings(tmp_path, sink.port).model_copy(update={"database_url": postgres_url})
    running = await start(world, config)
    clients = running.clients()
    try:
        name = await create(clients, newsletter(), "pg")
        await until_sent(clients, name)
        assert sink.received == 3
    finally:
        await clients.close()
        await running.stop()
        await sink.stop()


async def test_a_draft_is_updated_and_a_sent_campaign_is_not(clients: Clients) -> None:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id="edit", campaign=newsletter())
    )
    change = pb.Campaign(name=created.campaign.name, display_name="Renamed", throttle_per_hour=60)
    updated = await clients.delivery.UpdateCampaign(
        pb.UpdateCampaignRequest(campaign=change, update_mask=["display_name"])
    )
    assert updated.campaign.display_name == "Renamed"
    assert updated.campaign.throttle_per_hour == 0
    await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=created.campaign.name))
    await until_sent(clients, created.campaign.name)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.UpdateCampaign(
            pb.UpdateCampaignRequest(campaign=change, update_mask=["display_name"])
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_updating_a_scheduled_campaign_checks_it_again(clients: Clients) -> None:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id="later", campaign=newsletter())
    )
    later = pb.Schedule()
    later.send_time.FromDatetime(datetime.now(UTC) + timedelta(days=2))
    await clients.delivery.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=created.campaign.name, schedule=later)
    )
    broken = pb.Campaign(name=created.campaign.name, template="missing")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.UpdateCampaign(
            pb.UpdateCampaignRequest(campaign=broken, update_mask=["template"])
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    kept = await clients.delivery.GetCampaign(pb.GetCampaignRequest(name=created.campaign.name))
    assert kept.campaign.template == "news"
    assert kept.campaign.state == pb.CAMPAIGN_STATE_SCHEDULED


async def test_a_bounce_quoting_only_the_message_id_finds_its_send(
    clients: Clients, platform: Platform
) -> None:
    name = await create(clients, newsletter(), "quoted")
    await until_sent(clients, name)
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    target = next(s for s in sends if s.profile_id == "p2")
    from mailwright.common.v1 import event_pb2

    event = event_pb2.Event(
        workspace="acme",
        message_id="dsn-1",
        type=event_pb2.EVENT_TYPE_TRACK,
        event="Email Bounced",
        source="smtp",
    )
    event.properties.update(
        {"provider_message_id": f"<{target.provider_message_id}>", "bounce_type": "hard"}
    )
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish("events.email", event.SerializeToString(), key="acme:dsn")

    async def bounced() -> bool:
        got = await clients.delivery.GetSend(pb.GetSendRequest(name=target.name))
        return got.send.state == pb.SEND_STATE_BOUNCED

    await eventually(bounced)
