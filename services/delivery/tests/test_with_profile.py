"""Delivery with the real profile and render services on one Platform (segment is still
the stand-in): people are built from events on the bus, a campaign reaches them, a
tracked event starts a journey through `profiles.changed`, consent and erasure flow from
the profile service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from delivery_fakes import World, fake_definitions
from delivery_harness import campaign_state, eventually, settings, sink_messages, start_sink

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright_delivery.directory import Directory
from mailwright_profile.simulate import identify, track
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"
PROFILE_FAST = {
    "retry_backoff": 0.05,
    "claim_idle": 0.3,
    "lease_ttl": 0.6,
    "outbox_interval": 0.1,
    "outbox_grace": 0.0,
}
FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'


class Stack:
    def __init__(self, platform: Platform, world: World, sink: SmtpSink) -> None:
        self.platform = platform
        self.world = world
        self.sink = sink
        self.clients = platform.clients()

    async def publish(self, *events: event_pb2.Event) -> None:
        bus = self.platform.runtime.bus  # type: ignore[union-attr]
        for event in events:
            key = f"{event.workspace}:{event.user_id or event.anonymous_id}"
            await bus.publish(f"events.{event.family}", event.SerializeToString(), key=key)

    async def person(self, user_id: str, **traits: Any) -> str:
        await self.publish(identify(user_id=user_id, traits=traits, message_id=f"id-{user_id}"))

        async def known() -> bool:
            try:
                await self.profile_id(user_id)
            except Exception:
                return False
            return True

        await eventually(known)
        return await self.profile_id(user_id)

    async def profile_id(self, user_id: str) -> str:
        reply = await self.clients.profile.LookupProfile(
            profile_pb2.LookupProfileRequest(
                parent=PARENT, identity=common_pb2.Identity(type="user_id", value=user_id)
            )
        )
        return reply.profile.profile_id

    async def template(self, template_id: str, subject: str) -> None:
        content = render_pb2.TemplateContent(
            subjects=[render_pb2.TextVariant(key="a", template=subject)],
            body="<p>Hello {{ first_name }}</p>" + FOOTER,
            category=render_pb2.TEMPLATE_CATEGORY_MARKETING,
            postal_address="1 Main Street, Springfield",
        )
        made = await self.clients.render.CreateTemplate(
            render_pb2.CreateTemplateRequest(
                parent=PARENT, template_id=template_id, content=content
            )
        )
        await self.clients.render.PublishTemplate(
            render_pb2.PublishTemplateRequest(name=made.version.name)
        )


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    world = World()
    sink, _ = await start_sink(tmp_path / "outbox")
    config = settings(tmp_path, sink.port).model_copy(
        update={
            "public_base_url": "https://t.shop.example",
            "services": {**settings(tmp_path, sink.port).services, "profile": PROFILE_FAST},
        }
    )
    segments = [d for d in fake_definitions(world) if d.name == "segment"]
    platform = Platform(config, [*segments, *resolve_services(["profile", "render", "delivery"])])
    await platform.start()
    made = Stack(platform, world, sink)
    try:
        yield made
    finally:
        await made.clients.close()
        await platform.stop()
        await sink.stop()


async def test_people_built_from_events_receive_a_campaign_with_their_traits(
    stack: Stack, tmp_path: Path
) -> None:
    ann = await stack.person("u-ann", email="ann@example.com", first_name="Ann")
    bob = await stack.person("u-bob", email="bob@example.com", first_name="Bob")
    stack.world.segment("everyone", [ann, bob])
    await stack.template("news", "News for {{ first_name }}")
    created = await stack.clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id="news",
            campaign=pb.Campaign(
                audience=pb.Audience(include_segments=["everyone"]),
                template="news",
                sender=pb.Sender(from_address="news@shop.example"),
                category=pb.CATEGORY_MARKETING,
            ),
        )
    )
    await stack.clients.delivery.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=created.campaign.name)
    )

    async def sent() -> bool:
        state = await campaign_state(stack.clients, created.campaign.name)
        return state == pb.CAMPAIGN_STATE_SENT

    await eventually(sent, within=20)
    subjects = {str(m["To"]): str(m["Subject"]) for m in sink_messages(tmp_path / "outbox")}
    assert subjects == {"ann@example.com": "News for Ann", "bob@example.com": "News for Bob"}


async def welcome_journey(stack: Stack, trigger: pb.EventTrigger) -> str:
    """An active journey "welcome" of one step, the "welcome" template at once; its name."""
    journey = pb.Journey(
        trigger=pb.JourneyTrigger(event=trigger),
        steps=[
            pb.JourneyStep(
                id="welcome",
                send=pb.SendStep(
                    template="welcome", sender=pb.Sender(from_address="hi@shop.example")
                ),
            )
        ],
    )
    created = await stack.clients.delivery.CreateJourney(
        pb.CreateJourneyRequest(parent=PARENT, journey_id="welcome", journey=journey)
    )
    await stack.clients.delivery.ActivateJourney(
        pb.ActivateJourneyRequest(name=created.journey.name)
    )
    return created.journey.name


async def test_a_tracked_event_starts_a_journey_through_the_profile_service(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.person("u-cy", email="cy@example.com", first_name="Cy")
    await stack.template("welcome", "Welcome, {{ first_name }}")
    await welcome_journey(stack, pb.EventTrigger(event="Signed Up", where='plan = "pro"'))
    await stack.publish(
        track("Signed Up", user_id="u-cy", properties={"plan": "free"}, message_id="t1"),
        track("Signed Up", user_id="u-cy", properties={"plan": "pro"}, message_id="t2"),
    )
    await stack.sink.wait_for(1, within=20)
    await asyncio.sleep(0.5)  # the "free" sign-up, published first, must not have sent
    (message,) = sink_messages(tmp_path / "outbox")
    assert str(message["Subject"]) == "Welcome, Cy"


async def test_a_journey_email_waits_for_an_address_applied_after_its_trigger(
    stack: Stack, tmp_path: Path
) -> None:
    """A visitor's product view and sign-up travel on two topics (`events.track`,
    `events.identify`) and may be applied in either order. Here the view is applied, and
    its journey's send looked at, before the sign-up: the send waits for the address
    rather than being skipped, and goes once the sign-up is applied (test_e2e's
    distributed run lost its email this way on loaded machines)."""
    await stack.template("welcome", "Welcome, {{ first_name }}")
    journey = await welcome_journey(stack, pb.EventTrigger(event="Product Viewed"))
    await stack.publish(track("Product Viewed", anonymous_id="anon-fay", message_id="v1"))
    looked_at: list[pb.Send] = []

    async def seen_without_address() -> bool:
        listed = await stack.clients.delivery.ListSends(
            pb.ListSendsRequest(parent=PARENT, journey=journey)
        )
        looked_at[:] = [s for s in listed.sends if s.reason or s.state != pb.SEND_STATE_QUEUED]
        return bool(looked_at)

    await eventually(seen_without_address, within=20)
    (waiting,) = looked_at
    assert (waiting.state, waiting.reason) == (
        pb.SEND_STATE_QUEUED,
        "waiting for an email address",
    )
    await stack.publish(
        identify(
            user_id="u-fay",
            anonymous_id="anon-fay",
            traits={"email": "fay@example.com", "first_name": "Fay"},
            message_id="i1",
        )
    )
    await stack.sink.wait_for(1, within=20)
    (message,) = sink_messages(tmp_path / "outbox")
    assert (str(message["To"]), str(message["Subject"])) == ("fay@example.com", "Welcome, Fay")

    async def recorded() -> bool:  # the sink has the message before the outcome is stored
        got = await stack.clients.delivery.GetSend(pb.GetSendRequest(name=waiting.name))
        return got.send.state == pb.SEND_STATE_SENT and got.send.reason == ""

    await eventually(recorded)


async def test_an_unsubscribe_recorded_by_the_profile_service_stops_marketing(
    stack: Stack, tmp_path: Path
) -> None:
    dee = await stack.person("u-dee", email="dee@example.com", first_name="Dee")
    await stack.clients.profile.UpdateConsent(
        profile_pb2.UpdateConsentRequest(
            name=f"{PARENT}/profiles/{dee}",
            consent=profile_pb2.Consent(
                channel=profile_pb2.CHANNEL_EMAIL,
                status=profile_pb2.CONSENT_STATUS_UNSUBSCRIBED,
                source="form",
            ),
        )
    )
    stack.world.segment("everyone", [dee])
    await stack.template("news", "News")
    created = await stack.clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id="news",
            campaign=pb.Campaign(
                audience=pb.Audience(include_segments=["everyone"]),
                template="news",
                sender=pb.Sender(from_address="news@shop.example"),
                category=pb.CATEGORY_MARKETING,
            ),
        )
    )
    await stack.clients.delivery.ScheduleCampaign(
        pb.ScheduleCampaignRequest(name=created.campaign.name)
    )

    async def sent() -> bool:
        state = await campaign_state(stack.clients, created.campaign.name)
        return state == pb.CAMPAIGN_STATE_SENT

    await eventually(sent, within=20)
    (skipped,) = (
        await stack.clients.delivery.ListSends(
            pb.ListSendsRequest(parent=PARENT, campaign=created.campaign.name)
        )
    ).sends
    assert (skipped.state, skipped.reason) == (pb.SEND_STATE_SKIPPED, "no consent: unsubscribed")
    assert stack.sink.received == 0


async def test_erasing_a_person_at_the_profile_service_erases_their_sends(
    stack: Stack,
) -> None:
    eve = await stack.person("u-eve", email="eve@example.com", first_name="Eve")
    await stack.template("receipt", "Receipt")
    sent = await stack.clients.delivery.SendTransactional(
        pb.SendTransactionalRequest(
            parent=PARENT,
            template="receipt",
            profile=f"{PARENT}/profiles/{eve}",
            sender=pb.Sender(from_address="shop@shop.example"),
            request_id="r-eve",
        )
    )
    assert sent.send.state == pb.SEND_STATE_SENT
    await stack.clients.profile.DeleteProfile(
        profile_pb2.DeleteProfileRequest(name=f"{PARENT}/profiles/{eve}")
    )

    async def erased() -> bool:
        listed = await stack.clients.delivery.ListSends(
            pb.ListSendsRequest(parent=PARENT, profile_id=eve)
        )
        return not listed.sends

    await eventually(erased, within=20)
    suppressions = await stack.clients.delivery.ListSuppressions(
        pb.ListSuppressionsRequest(parent=PARENT, reason=pb.SUPPRESSION_REASON_ERASED)
    )
    assert len(suppressions.suppressions) == 1


async def test_more_people_than_one_batch_read_are_read_in_concurrent_calls(
    stack: Stack,
) -> None:
    ann = await stack.person("u-ann", email="ann@example.com", first_name="Ann", age=41)
    bob = await stack.person("u-bob", email="Bob@Example.com", tags=["a", {"b": None}])
    ghosts = [f"ghost-{n}" for n in range(2400)]
    asked = [ann, *ghosts[:1500], bob, *ghosts[1500:], ann]  # three calls of at most 1,000
    directory = Directory(stack.clients)
    found = await directory.recipients("acme", asked)
    assert sorted(found) == sorted([ann, bob])
    assert found[ann].traits["age"] == 41.0
    assert found[ann].email == "ann@example.com"
    assert found[bob].traits["tags"] == ["a", {"b": None}]
    keys = ["first_name", "lifecycle_stage", "orders_count", "tags", "missing"]
    members = await directory.audience_members("acme", asked, keys)
    assert sorted(members) == sorted([ann, bob])
    for person in (ann, bob):  # what the full read of the person says
        held = found[person].traits
        assert members[person].traits == {k: held[k] for k in keys if k in held}
    assert members[ann].traits["first_name"] == "Ann"
    assert members[ann].traits["lifecycle_stage"] == "prospect"
    assert members[bob].email == "bob@example.com"
