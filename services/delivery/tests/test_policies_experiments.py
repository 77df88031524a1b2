"""Pause mid-send, quiet hours, frequency caps, and a winner experiment, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from delivery_fakes import World
from delivery_harness import (
    campaign_state,
    eventually,
    newsletter,
    settings,
    sink_messages,
    start,
)
from google.protobuf import duration_pb2

from mailwright.common.v1 import event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"
PEOPLE = 20


@pytest.fixture
def world() -> World:
    w = World()
    for n in range(PEOPLE):
        w.person(f"p{n:02d}", f"person{n:02d}@example.com", timezone="UTC")
    w.segment("everyone", [f"p{n:02d}" for n in range(PEOPLE)])
    w.template("news")
    w.template("receipt", marketing=False)
    return w


@pytest.fixture
async def platform(tmp_path: Path, world: World, sink: SmtpSink) -> AsyncIterator[Platform]:
    running = await start(world, settings(tmp_path, sink.port))
    yield running
    await running.stop()


async def schedule(clients: Clients, campaign: pb.Campaign, campaign_id: str) -> str:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id=campaign_id, campaign=campaign)
    )
    await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=created.campaign.name))
    return created.campaign.name


async def test_a_paused_campaign_sends_nothing_more_until_resumed(
    clients: Clients, sink: SmtpSink, tmp_path: Path
) -> None:
    name = await schedule(clients, newsletter(throttle_per_hour=6 * 3600), "slow")
    await sink.wait_for(2, within=10)
    await clients.delivery.PauseCampaign(pb.PauseCampaignRequest(name=name))
    at_pause = sink.received
    await asyncio.sleep(1.5)
    assert sink.received <= at_pause + 2  # at most what each worker had handed over
    assert await campaign_state(clients, name) == pb.CAMPAIGN_STATE_PAUSED
    await clients.delivery.ResumeCampaign(pb.ResumeCampaignRequest(name=name))

    async def sent() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(sent, within=20)
    recipients = [str(m["To"]) for m in sink_messages(tmp_path / "outbox")]
    assert sorted(recipients) == sorted(set(recipients))
    assert len(recipients) == PEOPLE


async def test_cancelling_mid_send_stops_the_rest(clients: Clients, sink: SmtpSink) -> None:
    name = await schedule(clients, newsletter(throttle_per_hour=3 * 3600), "cancelled")
    await sink.wait_for(1, within=10)
    await clients.delivery.CancelCampaign(pb.CancelCampaignRequest(name=name))
    await asyncio.sleep(1.0)
    cancelled = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=name, state=pb.SEND_STATE_CANCELLED)
    )
    assert len(cancelled.sends) >= PEOPLE - 3
    assert sink.received + len(cancelled.sends) == PEOPLE


async def policy(clients: Clients, **values: object) -> None:
    message = pb.DeliveryPolicy(name=f"{PARENT}/deliveryPolicy", **values)  # type: ignore[arg-type]
    await clients.delivery.UpdateDeliveryPolicy(pb.UpdateDeliveryPolicyRequest(policy=message))


async def test_quiet_hours_hold_marketing_but_not_transactional(
    clients: Clients, sink: SmtpSink
) -> None:
    hour = datetime.now(UTC).hour
    await policy(clients, quiet_hours=pb.QuietHours(start_hour=hour, end_hour=(hour + 2) % 24))
    name = await schedule(clients, newsletter(), "night")

    async def held() -> bool:
        listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
        return bool(listed.sends) and all(
            s.due_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC) for s in listed.sends
        )

    await eventually(held)
    assert sink.received == 0
    receipt = await clients.delivery.SendTransactional(
        pb.SendTransactionalRequest(
            parent=PARENT,
            template="receipt",
            email="buyer@example.com",
            sender=pb.Sender(from_address="shop@shop.example"),
            request_id="night-receipt",
        )
    )
    assert receipt.send.state == pb.SEND_STATE_SENT


async def test_a_frequency_cap_counts_across_campaigns(clients: Clients, sink: SmtpSink) -> None:
    window = duration_pb2.Duration(seconds=86400)
    await policy(clients, frequency_caps=[pb.FrequencyCap(max_sends=1, window=window)])
    first = await schedule(clients, newsletter(), "monday")

    async def done(name: str) -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(lambda: done(first))
    second = await schedule(clients, newsletter(), "tuesday")
    await eventually(lambda: done(second))
    skipped = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign=second, state=pb.SEND_STATE_SKIPPED)
    )
    assert len(skipped.sends) == PEOPLE
    assert all(s.reason.startswith("frequency cap: 1 per") for s in skipped.sends)
    assert sink.received == PEOPLE


async def test_a_bad_policy_names_the_field(clients: Clients) -> None:
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await policy(
            clients,
            quiet_hours=pb.QuietHours(start_hour=25, end_hour=3),
            default_sender=pb.Sender(provider="pigeon"),
        )
    details = caught.value.details() or ""
    assert "policy.quiet_hours.start_hour" in details
    assert "no email provider 'pigeon'" in details


async def test_the_winner_goes_to_the_rest_after_the_window(
    clients: Clients, platform: Platform, sink: SmtpSink, tmp_path: Path
) -> None:
    experiment = pb.Experiment(
        kind=pb.EXPERIMENT_KIND_WINNER,
        variants=[
            pb.ExperimentVariant(key="a", subject_variant="a"),
            pb.ExperimentVariant(key="b", subject_variant="b"),
        ],
        test_fraction=0.5,
        metric=pb.METRIC_OPENS,
    )
    experiment.window.FromSeconds(3)
    name = await schedule(clients, newsletter(experiment=experiment), "ab")

    async def test_cohort_sent() -> bool:
        listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
        cohort = [s for s in listed.sends if s.variant]
        return bool(cohort) and all(s.state == pb.SEND_STATE_SENT for s in cohort)

    await eventually(test_cohort_sent)
    listed = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    cohort = [s for s in listed.sends if s.variant]
    assert 0 < len(cohort) < PEOPLE
    bus = platform.runtime.bus  # type: ignore[union-attr]
    for send in cohort:
        if send.variant == "b":
            event = event_pb2.Event(
                workspace="acme",
                message_id=f"open-{send.name}",
                event="Email Opened",
                type=event_pb2.EVENT_TYPE_TRACK,
                source="http",
            )
            event.properties.update({"send_id": send.name.rsplit("/", 1)[-1]})
            await bus.publish("events.email", event.SerializeToString(), key="k")

    async def finished() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(finished, within=20)
    report = (
        await clients.delivery.GetCampaignReport(pb.GetCampaignReportRequest(name=name))
    ).report
    assert report.winner == "b"
    rest = [m for m in sink_messages(tmp_path / "outbox")]
    subjects = [str(m["Subject"]) for m in rest]
    assert len(subjects) == PEOPLE
    assert sum("[news:b]" in s for s in subjects) == PEOPLE - sum(
        1 for s in cohort if s.variant == "a"
    )
    # The report compares whole variants: the rest, sent b and not opened yet, dilute it.
    (comparison,) = [c for c in report.comparisons if c.left == "variant:b"]
    assert comparison.difference > 0
