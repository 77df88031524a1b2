"""Delivery with the real render service on the same Platform (profile and segment are
still the small stand-ins): templates created and published through render's API."""

from __future__ import annotations

import email.policy
import re
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from delivery_fakes import World, fake_definitions
from delivery_harness import campaign_state, eventually, settings, sink_messages, start_sink

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.render.v1 import render_pb2
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright_smtp.sink import SmtpSink

PARENT = "workspaces/acme"
FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, SmtpSink]]:
    world = World()
    for n in range(4):
        world.person(f"p{n}", f"person{n}@example.com", first_name=f"Name{n}")
    world.segment("everyone", [f"p{n}" for n in range(4)])
    sink, _ = await start_sink(tmp_path / "outbox")
    config = settings(tmp_path, sink.port).model_copy(
        update={"public_base_url": "https://t.shop.example"}
    )
    fakes = [d for d in fake_definitions(world) if d.name != "render"]
    running = Platform(config, [*fakes, *resolve_services(["render", "delivery"])])
    await running.start()
    yield running, sink
    await running.stop()
    await sink.stop()


@pytest.fixture
async def clients(platform: tuple[Platform, SmtpSink]) -> AsyncIterator[Clients]:
    made = platform[0].clients()
    yield made
    await made.close()


async def publish(clients: Clients, template_id: str, *, marketing: bool) -> str:
    body = '<p>Hi {{ first_name }}, <a href="https://shop.example/sale">see the sale</a></p>'
    content = render_pb2.TemplateContent(
        subjects=[
            render_pb2.TextVariant(key="a", template="Spring sale, {{ first_name }}"),
            render_pb2.TextVariant(key="b", template="{{ first_name }}, 20% off"),
        ],
        body=body + (FOOTER if marketing else ""),
        category=render_pb2.TEMPLATE_CATEGORY_MARKETING
        if marketing
        else render_pb2.TEMPLATE_CATEGORY_TRANSACTIONAL,
        postal_address="1 Main Street, Springfield" if marketing else "",
    )
    made = await clients.render.CreateTemplate(
        render_pb2.CreateTemplateRequest(parent=PARENT, template_id=template_id, content=content)
    )
    await clients.render.PublishTemplate(render_pb2.PublishTemplateRequest(name=made.version.name))
    return made.template.name


async def test_a_campaign_rendered_by_render_reaches_everyone_with_tracking_and_unsubscribe(
    clients: Clients, platform: tuple[Platform, SmtpSink], tmp_path: Path
) -> None:
    await publish(clients, "spring", marketing=True)
    experiment = pb.Experiment(
        kind=pb.EXPERIMENT_KIND_SPLIT,
        variants=[
            pb.ExperimentVariant(key="a", subject_variant="a"),
            pb.ExperimentVariant(key="b", subject_variant="b"),
        ],
    )
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id="spring",
            campaign=pb.Campaign(
                audience=pb.Audience(include_segments=["everyone"]),
                template="spring",
                sender=pb.Sender(from_address="news@shop.example", from_name="Shop"),
                category=pb.CATEGORY_MARKETING,
                experiment=experiment,
            ),
        )
    )
    name = created.campaign.name
    await clients.delivery.ScheduleCampaign(pb.ScheduleCampaignRequest(name=name))

    async def sent() -> bool:
        return await campaign_state(clients, name) == pb.CAMPAIGN_STATE_SENT

    await eventually(sent, within=20)
    messages = sink_messages(tmp_path / "outbox")
    assert sorted(str(m["To"]) for m in messages) == [f"person{n}@example.com" for n in range(4)]
    sends = (
        await clients.delivery.ListSends(pb.ListSendsRequest(parent=PARENT, campaign=name))
    ).sends
    variants = {s.profile_id: s.variant for s in sends}
    for message in messages:
        person = str(message["To"]).split("@")[0].removeprefix("person")
        subject = str(message["Subject"])
        expected = "Spring sale" if variants[f"p{person}"] == "a" else "20% off"
        assert expected in subject
        assert f"Name{person}" in subject
        assert "https://t.shop.example/u/" in str(message["List-Unsubscribe"])
        html = message.get_body(preferencelist=("html",))
        assert html is not None
        assert re.search(r"https://t\.shop\.example/t/c/", html.get_content())
    ids = {str(m["Message-ID"]) for m in messages}
    assert ids == {f"<{s.provider_message_id}>" for s in sends}


async def test_a_marketing_campaign_with_a_transactional_template_is_refused(
    clients: Clients,
) -> None:
    await publish(clients, "receipt", marketing=False)
    created = await clients.delivery.CreateCampaign(
        pb.CreateCampaignRequest(
            parent=PARENT,
            campaign_id="wrong",
            campaign=pb.Campaign(
                audience=pb.Audience(include_segments=["everyone"]),
                template="receipt",
                sender=pb.Sender(from_address="news@shop.example"),
                category=pb.CATEGORY_MARKETING,
            ),
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await clients.delivery.ScheduleCampaign(
            pb.ScheduleCampaignRequest(name=created.campaign.name)
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "unsubscribe" in (caught.value.details() or "")


async def test_a_transactional_email_rendered_by_render_with_its_context(
    clients: Clients, platform: tuple[Platform, SmtpSink], tmp_path: Path
) -> None:
    await publish(clients, "receipt", marketing=False)
    request = pb.SendTransactionalRequest(
        parent=PARENT,
        template="receipt",
        profile=f"{PARENT}/profiles/p2",
        sender=pb.Sender(from_address="orders@shop.example"),
        request_id="order-77",
    )
    response = await clients.delivery.SendTransactional(request)
    assert response.send.state == pb.SEND_STATE_SENT
    (message,) = sink_messages(tmp_path / "outbox")
    assert "Name2" in str(message["Subject"])
    assert message.policy is not None
    assert isinstance(message.policy, email.policy.EmailPolicy)
