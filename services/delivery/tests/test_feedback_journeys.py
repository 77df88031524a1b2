"""Feedback from the bus, erasure, attribution, and journeys with durable timers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from delivery_fakes import World
from delivery_harness import (
    campaign_state,
    eventually,
    message_ids_by_recipient,
    newsletter,
    settings,
    sink_messages,
    start,
)
from google.protobuf import duration_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Message
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.segment.v1 import segment_pb2
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"


@pytest.fixture
def world() -> World:
    w = World()
    for n in range(5):
        w.person(f"p{n}", f"person{n}@example.com")
    w.segment("everyone", [f"p{n}" for n in range(5)])
    w.template("news")
    w.template("cart-reminder")
    w.template("cart-incentive")
    return w


@pytest.fixture
async def platform(tmp_path: Path, world: World, sink: SmtpSink) -> AsyncIterator[Platform]:
    running = await start(world, settings(tmp_path, sink.port))
    yield running
    await running.stop()


def email_event(name: str, send_id: str, message_id: str, **props: object) -> bytes:
    event = event_pb2.Event(
        workspace="acme",
        message_id=message_id,
        type=event_pb2.EVENT_TYPE_TRACK,
        event=name,
        source="http",
        family="email",
    )
    event.properties.update({"send_id": send_id, **props})
    event.timestamp.GetCurrentTime()
    return event.SerializeToString()


def changed(
    profile_id: str, name: str, message_id: str, *, backfill: bool = False, **props: object
) -> bytes:
    event = event_pb2.Event(
        workspace="acme",
        message_id=message_id,
        type=event_pb2.EVENT_TYPE_TRACK,
        event=name,
        profile_id=profile_id,
        source="http",
        backfill=backfill,
    )
    event.properties.update(props)
    event.timestamp.GetCurrentTime()
    change = profile_pb2.ProfileChanged(workspace="acme", profile_id=profile_id, events=[event])
    return change.SerializeToString()


async def sent_campaign(clients: Clients, sink: SmtpSink, campaign_id: str) -> dict[str, str]:
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(parent=PARENT, campaign_id=campaign_id, campaign=newsletter())
    )
    name = created.campaign.name
    await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name))

    async def done() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(done)
    sends = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    return {s.profile_id: s.name.rsplit("/", 1)[-1] for s in sends.sends}


async def report_total(clients: Clients, campaign_id: str) -> pb.ReportRow:
    report = await clients.delivery.GetCampaignReport(
        pb.GetCampaignReportRequest(name=f"{PARENT}/campaigns/{campaign_id}")
    )
    return report.report.rows[0]


async def test_feedback_updates_sends_reports_and_suppressions(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    sends = await sent_campaign(clients, sink, "first")
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish(
        "events.email", email_event("Email Opened", sends["p0"], "o0", machine=True), key="acme:p0"
    )
    await bus.publish("events.email", email_event("Email Opened", sends["p1"], "o1"), key="acme:p1")
    await bus.publish("events.email", email_event("Email Opened", sends["p1"], "o1"), key="acme:p1")
    await bus.publish(
        "events.email",
        email_event("Email Link Clicked", sends["p1"], "c1", url="https://x"),
        key="acme:p1",
    )
    await bus.publish(
        "events.email",
        email_event("Email Bounced", sends["p2"], "b2", bounce_type="hard"),
        key="acme:p2",
    )
    await bus.publish("events.email", email_event("Unsubscribed", sends["p3"], "u3"), key="acme:p3")

    async def applied() -> bool:
        row = await report_total(clients, "first")
        return (
            row.unique_opens,
            row.machine_opens,
            row.unique_clicks,
            row.bounces,
            row.unsubscribes,
        ) == (1, 1, 1, 1, 1)

    await eventually(applied)
    row = await report_total(clients, "first")
    assert row.click_to_open == 1.0
    suppressed = await clients.delivery.ListSuppressions(pb.ListSuppressionsRequest(parent=PARENT))
    assert sorted(s.reason for s in suppressed.suppressions) == [
        pb.SUPPRESSION_REASON_UNSUBSCRIBED,
        pb.SUPPRESSION_REASON_HARD_BOUNCE,
    ]
    again = await sent_campaign(clients, sink, "second")
    skipped = await clients.delivery.ListSends(
        pb.ListSendsRequest(parent=PARENT, campaign="second", state=pb.SEND_STATE_SKIPPED)
    )
    assert sorted(s.profile_id for s in skipped.sends) == ["p2", "p3"]
    assert len(again) == 5


async def test_delivery_publishes_email_sent_once_per_send(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    seen: list[event_pb2.Event] = []

    async def observe(message: Message) -> None:
        seen.append(event_pb2.Event.FromString(message.value))

    bus = platform.runtime.bus  # type: ignore[union-attr]
    async with bus.subscribe("events.email", "observer", observe):
        sends = await sent_campaign(clients, sink, "first")

        async def published() -> bool:
            return len([e for e in seen if e.event == "Email Sent"]) >= 5

        await eventually(published)
    sent = [e for e in seen if e.event == "Email Sent"]
    assert sorted(e.properties["send_id"] for e in sent) == sorted(sends.values())
    assert all(e.message_id.endswith(":sent") and e.profile_id for e in sent)


async def test_an_order_after_a_click_is_credited_to_the_campaign(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    sends = await sent_campaign(clients, sink, "first")
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish("events.email", email_event("Email Link Clicked", sends["p1"], "c1"), key="k")
    await asyncio.sleep(0.3)
    await bus.publish(
        "profiles.changed",
        changed("p1", "Order Completed", "order-1", revenue="49.90", currency="EUR"),
        key="acme:p1",
    )

    async def credited() -> bool:
        row = await report_total(clients, "first")
        return row.conversions == 1

    await eventually(credited)
    row = await report_total(clients, "first")
    assert (row.revenue.amount, row.revenue.currency_code) == ("49.9", "EUR")


async def test_an_erased_person_leaves_only_a_hashed_suppression(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    await sent_campaign(clients, sink, "first")
    bus = platform.runtime.bus  # type: ignore[union-attr]
    deleted = profile_pb2.ProfileDeleted(workspace="acme", profile_id="p4", email_hashes=["a" * 64])
    await bus.publish("profiles.deleted", deleted.SerializeToString(), key="acme:p4")

    async def erased() -> bool:
        listed = await clients.delivery.ListSends(
            pb.ListSendsRequest(parent=PARENT, profile_id="p4")
        )
        return not listed.sends

    await eventually(erased)
    listed = await clients.delivery.ListSuppressions(
        pb.ListSuppressionsRequest(parent=PARENT, reason=pb.SUPPRESSION_REASON_ERASED)
    )
    assert [s.email_hash for s in listed.suppressions] == ["a" * 64]
    assert (await report_total(clients, "first")).sent == 5


def seconds(value: float) -> duration_pb2.Duration:
    result = duration_pb2.Duration()
    result.FromMilliseconds(int(value * 1000))
    return result


def cart_journey(wait: float = 0.5) -> pb.Journey:
    return pb.Journey(
        display_name="Cart abandonment",
        trigger=pb.JourneyTrigger(
            event=pb.EventTrigger(event="Checkout Started", where="total > 20")
        ),
        steps=[
            pb.JourneyStep(id="wait-1h", next="ordered", wait=pb.WaitStep(duration=seconds(wait))),
            pb.JourneyStep(
                id="ordered",
                branch=pb.BranchStep(
                    rule_text='did not perform "Order Completed" in last 1 hour',
                    then_step="reminder",
                    else_step="",
                ),
            ),
            pb.JourneyStep(
                id="reminder",
                next="wait-1d",
                send=pb.SendStep(
                    template="cart-reminder", sender=pb.Sender(from_address="shop@shop.example")
                ),
            ),
            pb.JourneyStep(
                id="wait-1d", next="incentive", wait=pb.WaitStep(duration=seconds(wait))
            ),
            pb.JourneyStep(
                id="incentive",
                send=pb.SendStep(
                    template="cart-incentive", sender=pb.Sender(from_address="shop@shop.example")
                ),
            ),
        ],
        goal=pb.EventTrigger(event="Order Completed"),
        reentry=pb.REENTRY_POLICY_AFTER_EXIT,
    )


async def activate(clients: Clients, journey: pb.Journey, journey_id: str = "cart") -> str:
    created = await clients.delivery.CreateJourney(
        pb.CreateJourneyRequest(parent=PARENT, journey_id=journey_id, journey=journey)
    )
    await clients.delivery.ActivateJourney(pb.ActivateJourneyRequest(name=created.journey.name))
    return created.journey.name


async def test_cart_abandonment_sends_the_reminder_then_the_incentive(
    clients: Clients, platform: Platform, sink: SmtpSink, tmp_path: Path
) -> None:
    name = await activate(clients, cart_journey())
    bus = platform.runtime.bus  # type: ignore[union-attr]
    trigger = changed("p0", "Checkout Started", "checkout-1", total=35)
    await bus.publish("profiles.changed", trigger, key="acme:p0")
    await bus.publish("profiles.changed", trigger, key="acme:p0")  # redelivered
    await bus.publish("profiles.changed", changed("p1", "Checkout Started", "x", total=5), key="k")
    # an imported (backfilled) checkout is history: it starts nothing
    history = changed("p2", "Checkout Started", "old", total=35, backfill=True)
    await bus.publish("profiles.changed", history, key="acme:p2")
    files = await sink.wait_for(2, within=15)
    await asyncio.sleep(0.5)
    assert len(files) == 2
    subjects = sorted(m for m in message_ids_by_recipient(tmp_path / "outbox"))
    assert subjects == ["person0@example.com"]
    report = await clients.delivery.GetJourneyReport(pb.GetJourneyReportRequest(name=name))
    assert (report.entered, report.exited, report.goals_reached) == (1, 1, 0)
    steps = {row.dimension: row.sent for row in report.report.rows}
    assert steps["step:reminder"] == 1
    assert steps["step:incentive"] == 1


async def test_the_goal_ends_the_journey_early(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    name = await activate(clients, cart_journey(wait=1.0))
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish("profiles.changed", changed("p0", "Checkout Started", "c", total=35), key="k")

    async def entered() -> bool:
        report = await clients.delivery.GetJourneyReport(pb.GetJourneyReportRequest(name=name))
        return report.entered == 1

    await eventually(entered)
    await bus.publish(
        "profiles.changed", changed("p0", "Order Completed", "o", revenue=10), key="k"
    )

    async def goal() -> bool:
        report = await clients.delivery.GetJourneyReport(pb.GetJourneyReportRequest(name=name))
        return report.goals_reached == 1

    await eventually(goal)
    await asyncio.sleep(1.5)
    assert sink.received == 0


async def test_a_segment_entry_starts_a_journey(
    clients: Clients, platform: Platform, sink: SmtpSink
) -> None:
    journey = pb.Journey(
        display_name="VIP preview",
        trigger=pb.JourneyTrigger(segment_entered="loyal-buyers"),
        steps=[
            pb.JourneyStep(
                id="preview",
                send=pb.SendStep(
                    template="news", sender=pb.Sender(from_address="vip@shop.example")
                ),
            )
        ],
        reentry=pb.REENTRY_POLICY_NEVER,
    )
    await activate(clients, journey, "vip")
    change = segment_pb2.MembershipChange(
        workspace="acme",
        segment=f"{PARENT}/segments/loyal-buyers",
        profile_id="p2",
        transition=segment_pb2.TRANSITION_ENTERED,
        rule_version=1,
    )
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish("segments.membership", change.SerializeToString(), key="acme:p2")
    change.occur_time.GetCurrentTime()
    await bus.publish("segments.membership", change.SerializeToString(), key="acme:p2")
    await sink.wait_for(1)
    await asyncio.sleep(0.5)
    assert sink.received == 1  # never re-enters


async def test_waiting_people_survive_a_restart_and_their_timer_fires_once(
    tmp_path: Path, world: World, sink: SmtpSink
) -> None:
    config = settings(tmp_path, sink.port)
    first = await start(world, config)
    clients = first.clients()
    try:
        await activate(clients, cart_journey(wait=1.5))
        bus = first.runtime.bus  # type: ignore[union-attr]
        await bus.publish(
            "profiles.changed", changed("p0", "Checkout Started", "c", total=35), key="k"
        )

        async def waiting() -> bool:
            report = await clients.delivery.GetJourneyReport(
                pb.GetJourneyReportRequest(name=f"{PARENT}/journeys/cart")
            )
            return report.waiting.get("wait-1h", 0) == 1

        await eventually(waiting)
    finally:
        await clients.close()
        await first.stop()
    assert sink.received == 0
    second = await start(world, config.model_copy(update={"bus_url": "memory://again"}))
    try:
        await sink.wait_for(2, within=15)
        await asyncio.sleep(0.5)
        assert sink.received == 2
    finally:
        await second.stop()


async def test_a_journey_with_a_broken_rule_is_refused_naming_the_field(clients: Clients) -> None:
    journey = cart_journey()
    journey.steps[1].branch.rule_text = "did not perform Order"
    import grpc

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.CreateJourney(
            pb.CreateJourneyRequest(parent=PARENT, journey_id="bad", journey=journey)
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "journey.steps[1].branch.rule_text" in (caught.value.details() or "")


def _unused() -> common_pb2.Identity:
    return common_pb2.Identity()


async def test_waiting_for_an_event_moves_on_when_it_comes_or_times_out(
    clients: Clients, platform: Platform, sink: SmtpSink, tmp_path: Path
) -> None:
    sender = pb.Sender(from_address="hello@shop.example")
    journey = pb.Journey(
        display_name="Win-back",
        trigger=pb.JourneyTrigger(segment_entered="inactive"),
        steps=[
            pb.JourneyStep(
                id="miss-you", next="await-open", send=pb.SendStep(template="news", sender=sender)
            ),
            pb.JourneyStep(
                id="await-open",
                next="done",
                wait=pb.WaitStep(
                    event=pb.EventTrigger(event="Email Opened"),
                    timeout=seconds(1.5),
                    timeout_step="offer",
                ),
            ),
            pb.JourneyStep(id="offer", send=pb.SendStep(template="cart-incentive", sender=sender)),
            pb.JourneyStep(id="done", exit=pb.ExitStep()),
        ],
    )
    name = await activate(clients, journey, "win-back")
    bus = platform.runtime.bus  # type: ignore[union-attr]
    for person in ("p0", "p1"):
        change = segment_pb2.MembershipChange(
            workspace="acme",
            segment=f"{PARENT}/segments/inactive",
            profile_id=person,
            transition=segment_pb2.TRANSITION_ENTERED,
        )
        await bus.publish("segments.membership", change.SerializeToString(), key=f"acme:{person}")
    await sink.wait_for(2)
    await bus.publish("profiles.changed", changed("p0", "Email Opened", "open-p0"), key="acme:p0")
    await sink.wait_for(3, within=10)
    await asyncio.sleep(2.0)
    by_recipient = message_ids_by_recipient(tmp_path / "outbox")
    assert len(by_recipient["person0@example.com"]) == 1  # opened: no offer
    assert len(by_recipient["person1@example.com"]) == 2  # timed out: the offer
    report = await clients.delivery.GetJourneyReport(pb.GetJourneyReportRequest(name=name))
    assert (report.entered, report.exited) == (2, 2)


async def test_people_inside_finish_on_the_version_they_entered(
    clients: Clients, platform: Platform, sink: SmtpSink, tmp_path: Path
) -> None:
    sender = pb.Sender(from_address="hello@shop.example")

    def version(template: str) -> pb.Journey:
        return pb.Journey(
            trigger=pb.JourneyTrigger(event=pb.EventTrigger(event="Signed Up")),
            steps=[
                pb.JourneyStep(id="pause", next="mail", wait=pb.WaitStep(duration=seconds(1.0))),
                pb.JourneyStep(id="mail", send=pb.SendStep(template=template, sender=sender)),
            ],
        )

    name = await activate(clients, version("cart-reminder"), "welcome")
    bus = platform.runtime.bus  # type: ignore[union-attr]
    await bus.publish("profiles.changed", changed("p0", "Signed Up", "s0"), key="acme:p0")

    async def waiting() -> bool:
        report = await clients.delivery.GetJourneyReport(pb.GetJourneyReportRequest(name=name))
        return report.entered == 1

    await eventually(waiting)
    second = version("news")
    second.name = name
    updated = await clients.delivery.UpdateJourney(pb.UpdateJourneyRequest(journey=second))
    assert updated.journey.version == 2
    await bus.publish("profiles.changed", changed("p1", "Signed Up", "s1"), key="acme:p1")
    await sink.wait_for(2, within=10)
    subjects = {str(m["To"]): str(m["Subject"]) for m in sink_messages(tmp_path / "outbox")}
    assert subjects["person0@example.com"].startswith("[cart-reminder:")
    assert subjects["person1@example.com"].startswith("[news:")


async def test_new_work_goes_at_once_without_waiting_for_a_poll(
    tmp_path: Path, world: World, sink: SmtpSink
) -> None:
    # Polls every minute: what arrives in seconds was started by the writes themselves.
    running = await start(world, settings(tmp_path, sink.port, poll_interval="60s"))
    clients = running.clients()
    try:
        journey = pb.Journey(
            trigger=pb.JourneyTrigger(event=pb.EventTrigger(event="Signed Up")),
            steps=[
                pb.JourneyStep(
                    id="hello",
                    send=pb.SendStep(
                        template="news", sender=pb.Sender(from_address="hi@shop.example")
                    ),
                )
            ],
        )
        await activate(clients, journey, "hello")
        bus = running.runtime.bus  # type: ignore[union-attr]
        await bus.publish("profiles.changed", changed("p0", "Signed Up", "s0"), key="acme:p0")
        await sink.wait_for(1, within=10)
        await sent_campaign(clients, sink, "now")
        assert sink.received == 6
    finally:
        await clients.close()
        await running.stop()


def welcome_journey() -> pb.Journey:
    return pb.Journey(
        trigger=pb.JourneyTrigger(event=pb.EventTrigger(event="Signed Up")),
        steps=[
            pb.JourneyStep(
                id="hello",
                send=pb.SendStep(template="news", sender=pb.Sender(from_address="hi@shop.example")),
            )
        ],
    )


async def journey_sends(clients: Clients, name: str) -> list[pb.Send]:
    reply = await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, journey=name))
    return list(reply.sends)


async def test_an_address_that_arrives_later_wakes_the_journey_send_waiting_for_it(
    tmp_path: Path, world: World, sink: SmtpSink
) -> None:
    # Polls every minute: the send that waits goes in seconds only if the profile
    # change that brings the address wakes it.
    world.person("p7", "")
    running = await start(world, settings(tmp_path, sink.port, poll_interval="60s"))
    clients = running.clients()
    try:
        name = await activate(clients, welcome_journey(), "hello")
        bus = running.runtime.bus  # type: ignore[union-attr]
        await bus.publish("profiles.changed", changed("p7", "Signed Up", "s7"), key="acme:p7")

        async def waiting() -> bool:
            sends = await journey_sends(clients, name)
            return [s.reason for s in sends] == ["waiting for an email address"]

        await eventually(waiting)
        world.profiles["p7"].traits.update({"email": "person7@example.com"})
        change = profile_pb2.ProfileChanged(workspace="acme", profile_id="p7")
        change.traits.update({"email": "person7@example.com"})
        await bus.publish("profiles.changed", change.SerializeToString(), key="acme:p7")
        await sink.wait_for(1, within=10)
        assert list(message_ids_by_recipient(tmp_path / "outbox")) == ["person7@example.com"]
    finally:
        await clients.close()
        await running.stop()


async def test_a_journey_send_is_skipped_when_no_address_comes_within_the_wait(
    tmp_path: Path, world: World, sink: SmtpSink
) -> None:
    world.person("p8", "")
    world.segment("no-address", ["p8"])
    running = await start(world, settings(tmp_path, sink.port, address_wait="1s"))
    clients = running.clients()
    try:
        name = await activate(clients, welcome_journey(), "hello")
        bus = running.runtime.bus  # type: ignore[union-attr]
        await bus.publish("profiles.changed", changed("p8", "Signed Up", "s8"), key="acme:p8")

        async def skipped() -> bool:
            sends = await journey_sends(clients, name)
            return bool(sends) and sends[0].state == pb.SEND_STATE_SKIPPED

        await eventually(skipped)
        (send,) = await journey_sends(clients, name)
        assert send.reason == "no email address within 0:00:01"
        # A campaign's audience is who is in the segment when it starts: no wait.
        created = await clients.delivery.CreateCampaign(
            pb.CreateCampaignRequest(
                parent=PARENT, campaign_id="news", campaign=newsletter(segment="no-address")
            )
        )
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )

        async def done() -> bool:
            return await campaign_state(clients, created.campaign.name) == pb.CAMPAIGN_STATE_SENT

        await eventually(done)
        listed = await clients.delivery.ListSends(
            pb.ListSendsRequest(parent=PARENT, campaign=created.campaign.name)
        )
        assert [(s.state, s.reason) for s in listed.sends] == [
            (pb.SEND_STATE_SKIPPED, "no email address")
        ]
        assert sink.received == 0
    finally:
        await clients.close()
        await running.stop()
