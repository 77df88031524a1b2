"""RenderBatch (the delivery path) and PreviewRender over gRPC."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import grpc
import pytest
from google.protobuf import struct_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2 as pb
from mailwright.runtime.server import Platform
from mailwright.runtime.signing import tracking_signer
from mailwright.tracking import TokenKind

if TYPE_CHECKING:
    from mailwright.render.v1.render_pb2_grpc import RenderServiceAsyncStub as Stub

FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'
SENDER = pb.RenderOptions(from_address="news@shop.example", from_name="Shop")


async def _batch(
    rpc: Stub, version: str, *recipients: pb.Recipient, **options: object
) -> pb.RenderBatchResponse:
    merged = pb.RenderOptions()
    merged.CopyFrom(SENDER)
    for key, value in options.items():
        setattr(merged, key, value)
    return await rpc.RenderBatch(
        pb.RenderBatchRequest(version=version, recipients=list(recipients), options=merged)
    )


async def test_failing_recipients_get_an_error_and_the_others_render(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(
        rpc,
        body="<p>{{ first_name }} {{ (first_name|attr(key)) if key else '' }}"
        "{% for i in range(count|default(1)) %}.{% endfor %}</p>",
        missing=pb.MISSING_VALUE_ERROR,
    )
    reply = await _batch(
        rpc,
        made.version.name,
        svc.recipient(1, first_name="Ann", key="", count=1),
        svc.recipient(2, key=""),
        svc.recipient(3, first_name="Sandbox", key="__class__"),
        svc.recipient(4, first_name="Loop", key="", count=10**6),
        svc.recipient(5, first_name="Bea", key="", count=2),
    )
    outcomes = [(r.send_id, r.error_code) for r in reply.results]
    assert outcomes == [
        ("send-1", ""),
        ("send-2", "render"),
        ("send-3", "sandbox"),
        ("send-4", "limit_range"),
        ("send-5", ""),
    ]
    assert "first_name" in reply.results[1].error
    assert "<p>Bea ..</p>" in reply.results[4].message.html


async def test_an_unknown_subject_variant_fails_only_that_recipient(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(rpc, subjects=("A", "B"))
    chosen, unknown = svc.recipient(1), svc.recipient(2)
    chosen.subject_variant, unknown.subject_variant = "b", "zzz"
    reply = await _batch(rpc, made.version.name, chosen, unknown)
    assert (reply.results[0].message.subject, reply.results[0].message.subject_variant) == (
        "B",
        "b",
    )
    assert reply.results[1].error_code == "render"


async def test_whole_numbers_render_as_whole_numbers(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc, body="<p>{{ orders|default(0) }} {{ ratio|default(0) }}</p>")
    reply = await _batch(rpc, made.version.name, svc.recipient(1, orders=3, ratio=0.5))
    assert "<p>3 0.5</p>" in reply.results[0].message.html


async def test_tracked_links_pixel_and_unsubscribe_verify_at_the_edge(
    platform: Platform, rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(
        rpc,
        body='<p><a href="https://shop.example/new">New</a> <a href="{{ link }}">Yours</a></p>'
        + FOOTER,
        marketing=True,
        postal_address="1 Main Street",
    )
    reply = await _batch(
        rpc,
        made.version.name,
        svc.recipient(7, link="https://shop.example/p/7"),
        track=True,
        unsubscribe_mailto="unsub@shop.example",
    )
    message = reply.results[0].message
    signer = tracking_signer(platform.settings)
    clicks = re.findall(r'href="https://t\.example/t/c/([^"]+)"', message.html)
    claims = [signer.verify(token, kind=TokenKind.CLICK) for token in clicks]
    assert [c.url for c in claims] == ["https://shop.example/new", "https://shop.example/p/7"]
    assert {(c.workspace, c.send_id) for c in claims} == {("acme", "send-7")}
    (pixel,) = re.findall(r'src="https://t\.example/t/o/([^"]+)\.gif"', message.html)
    assert signer.verify(pixel, kind=TokenKind.OPEN).send_id == "send-7"
    unsubscribe = re.search(r"<https://t\.example/u/([^>]+)>", message.headers["List-Unsubscribe"])
    assert unsubscribe is not None
    assert signer.verify(unsubscribe.group(1), kind=TokenKind.UNSUBSCRIBE).send_id == "send-7"
    assert "mailto:unsub@shop.example" in message.headers["List-Unsubscribe"]
    assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "1 Main Street" in message.html


async def test_without_tracking_links_stay_but_unsubscribe_is_still_signed(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(
        rpc,
        body='<p><a href="https://shop.example/new">New</a></p>' + FOOTER,
        marketing=True,
        postal_address="1 Main Street",
    )
    reply = await _batch(rpc, made.version.name, svc.recipient())
    message = reply.results[0].message
    assert 'href="https://shop.example/new"' in message.html
    assert "/t/o/" not in message.html
    assert 'href="https://t.example/u/' in message.html
    assert message.headers["List-Unsubscribe"].startswith("<https://t.example/u/")


async def test_a_complete_mime_message_when_asked_for(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    reply = await _batch(rpc, made.version.name, svc.recipient(1, first_name="Ann"), mime=True)
    parsed = email.message_from_bytes(reply.results[0].message.mime, policy=email.policy.SMTP)
    assert parsed["To"] == "p1@example.com"
    assert parsed["From"] == "Shop <news@shop.example>"
    assert parsed["Subject"] == "Hello Ann"
    assert parsed.get_content_type() == "multipart/alternative"


async def test_content_blocks_choose_by_segment_and_rule_and_say_which(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(
        rpc,
        body='<div>{% content_block "hero" %}</div>',
        blocks=[
            pb.ContentBlock(
                name="hero",
                default_content="<p>All</p>",
                variants=[
                    pb.BlockVariant(
                        key="vip", segment="workspaces/acme/segments/vip", content="<p>VIP</p>"
                    ),
                    pb.BlockVariant(
                        key="gold", rule_text='trait plan = "gold"', content="<p>Gold</p>"
                    ),
                ],
            )
        ],
    )
    vip, gold, anyone = svc.recipient(1), svc.recipient(2, plan="gold"), svc.recipient(3)
    vip.segments.append("vip")
    reply = await _batch(rpc, made.version.name, vip, gold, anyone)
    shown = [
        (re.search(r"<p>(\w+)</p>", r.message.html).group(1), r.message.block_variants["hero"])  # type: ignore[union-attr]
        for r in reply.results
    ]
    assert shown == [("VIP", "vip"), ("Gold", "gold"), ("All", "")]


async def test_context_feeds_content_links_and_campaign(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(
        rpc,
        body="<p>{% for item in content.recommendations|default([]) %}{{ item.name }};"
        "{% endfor %} {{ view_in_browser_url }} {{ send.campaign.name }}</p>",
    )
    person = svc.recipient()
    person.context.update(
        {
            "recommendations": [{"name": "Boots"}, {"name": "Hat"}],
            "links": {"view_in_browser": "https://shop.example/v/1"},
        }
    )
    reply = await _batch(rpc, made.version.name, person, campaign="spring")
    assert "<p>Boots;Hat; https://shop.example/v/1 spring</p>" in reply.results[0].message.html


async def test_a_batch_larger_than_allowed_is_refused(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _batch(rpc, made.version.name, *[svc.recipient(i) for i in range(1001)])
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.violations(raised.value)[0][0] == "recipients"


async def test_recipients_without_a_send_id_are_named(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    anonymous = svc.recipient(2)
    anonymous.send_id = ""
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _batch(rpc, made.version.name, svc.recipient(1), anonymous)
    assert svc.violations(raised.value) == [("recipients[1].send_id", "is required")]


async def test_a_response_over_the_message_limit_is_resource_exhausted(
    tmp_path: Path, svc: SimpleNamespace
) -> None:
    async with svc.running(svc.settings(tmp_path, max_message_bytes=64 * 1024)) as platform:
        rpc = platform.clients(svc.token(platform)).render
        made = await svc.published(rpc, body="<p>{{ 'x' * 4000 }}</p>")
        small = await _batch(rpc, made.version.name, svc.recipient(1))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _batch(rpc, made.version.name, *[svc.recipient(i) for i in range(40)])
    assert small.results[0].message.html
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fewer recipients" in (raised.value.details() or "")


async def test_a_batch_over_its_time_budget_is_resource_exhausted(
    tmp_path: Path, svc: SimpleNamespace
) -> None:
    settings = svc.settings(tmp_path, services={"render": {"batch_timeout": "50ms"}})
    async with svc.running(settings) as platform:
        rpc = platform.clients(svc.token(platform)).render
        made = await svc.published(
            rpc,
            body="<p>{% for i in range(9000) %}{% for j in range(15) %}{% endfor %}"
            "{% endfor %}</p>",
        )
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await _batch(rpc, made.version.name, *[svc.recipient(i) for i in range(20)])
        alive = await rpc.GetTemplate(pb.GetTemplateRequest(name=made.template.name))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert alive.template.published_version == 1


# Previews -------------------------------------------------------------------------------


async def test_a_preview_of_inline_content_for_an_inline_recipient(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    person = pb.Recipient(email="ann@example.com")
    person.traits.update({"first_name": "Ann"})
    reply = await rpc.PreviewRender(
        pb.PreviewRenderRequest(
            parent="workspaces/acme",
            content=svc.content("<p>Hi {{ first_name }}</p>"),
            recipient=person,
        )
    )
    assert reply.message.subject == "Hello Ann"
    assert "<p>Hi Ann</p>" in reply.message.html
    assert "missing_fallback" in {issue.code for issue in reply.issues}


async def test_a_preview_of_a_template_uses_its_draft_until_one_is_published(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    await rpc.CreateTemplate(
        pb.CreateTemplateRequest(
            parent="workspaces/acme", template_id="t", content=svc.content("<p>Draft</p>")
        )
    )
    reply = await rpc.PreviewRender(
        pb.PreviewRenderRequest(
            parent="workspaces/acme",
            template="workspaces/acme/templates/t",
            recipient=svc.recipient(),
        )
    )
    assert "<p>Draft</p>" in reply.message.html


async def test_a_preview_that_cannot_render_says_why(rpc: Stub, svc: SimpleNamespace) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.PreviewRender(
            pb.PreviewRenderRequest(
                parent="workspaces/acme",
                content=svc.content("<p>{{ 'x' * 10**8 }}</p>"),
                recipient=svc.recipient(),
            )
        )
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.PreviewRender(
            pb.PreviewRenderRequest(
                parent="workspaces/acme",
                content=svc.content("<p>{{ first_name }}</p>", missing=pb.MISSING_VALUE_ERROR),
                recipient=svc.recipient(),
            )
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "first_name" in (raised.value.details() or "")


async def test_a_preview_by_profile_reads_the_traits_from_the_profile_service(
    tmp_path: Path, svc: SimpleNamespace
) -> None:
    async with svc.running(svc.settings(tmp_path), ["ingest", "profile", "render"]) as platform:
        assert platform.runtime is not None
        token = platform.runtime.authority.issue(
            "acme", ["events:write", "profiles:read", "templates:*"]
        )
        clients = platform.clients(token)
        traits = struct_pb2.Struct()
        traits.update({"first_name": "Ada", "email": "ada@example.com"})
        await clients.ingest.Identify(
            ingest_pb2.IdentifyRequest(
                parent="workspaces/acme", event=event_pb2.Event(user_id="u-1", traits=traits)
            )
        )
        profile = await _wait_for_profile(clients, "u-1")
        reply = await clients.render.PreviewRender(
            pb.PreviewRenderRequest(
                parent="workspaces/acme",
                content=svc.content("<p>Hi {{ first_name|default('?') }}, {{ email }}</p>"),
                profile=profile,
            )
        )
        await clients.close()
    assert "<p>Hi Ada, ada@example.com</p>" in reply.message.html


async def _wait_for_profile(clients: object, user_id: str) -> str:
    for _ in range(200):
        try:
            reply = await clients.profile.LookupProfile(  # type: ignore[attr-defined]
                profile_pb2.LookupProfileRequest(
                    parent="workspaces/acme",
                    identity=common_pb2.Identity(type="user_id", value=user_id),
                )
            )
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
            continue
        name: str = reply.profile.name
        return name
    raise AssertionError(f"profile of {user_id} never appeared")


async def test_previewing_a_profile_needs_the_profiles_read_scope(
    platform: Platform, rpc: Stub, svc: SimpleNamespace
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.PreviewRender(
            pb.PreviewRenderRequest(
                parent="workspaces/acme",
                content=svc.content(),
                profile="workspaces/acme/profiles/p1",
            )
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_preview_by_profile_is_unavailable_without_the_profile_service(
    platform: Platform, svc: SimpleNamespace
) -> None:
    rpc = platform.clients(svc.token(platform, scopes=["templates:*", "profiles:read"])).render
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.PreviewRender(
            pb.PreviewRenderRequest(
                parent="workspaces/acme",
                content=svc.content(),
                profile="workspaces/acme/profiles/p1",
            )
        )
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


# Merge fields ---------------------------------------------------------------------------


async def test_the_merge_field_map_starts_with_the_defaults(rpc: Stub) -> None:
    reply = await rpc.GetMergeFieldMap(
        pb.GetMergeFieldMapRequest(name="workspaces/acme/mergeFieldMap")
    )
    assert reply.map.name == "workspaces/acme/mergeFieldMap"
    assert reply.map.fields["FNAME"] == "first_name"


async def test_a_workspaces_merge_fields_shape_what_it_publishes(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    await rpc.UpdateMergeFieldMap(
        pb.UpdateMergeFieldMapRequest(
            map=pb.MergeFieldMap(
                name="workspaces/acme/mergeFieldMap", fields={"given": "given_name"}
            )
        )
    )
    made = await svc.published(rpc, body="<p>Hi *|GIVEN|*</p>")
    reply = await _batch(rpc, made.version.name, svc.recipient(1, given_name="Ann"))
    assert "<p>Hi Ann</p>" in reply.results[0].message.html
    stored = await rpc.GetMergeFieldMap(
        pb.GetMergeFieldMapRequest(name="workspaces/acme/mergeFieldMap")
    )
    assert dict(stored.map.fields) == {"GIVEN": "given_name"}


async def test_a_bad_merge_tag_name_is_refused(rpc: Stub, svc: SimpleNamespace) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.UpdateMergeFieldMap(
            pb.UpdateMergeFieldMapRequest(
                map=pb.MergeFieldMap(name="workspaces/acme/mergeFieldMap", fields={"a b": "x"})
            )
        )
    assert svc.violations(raised.value)[0][0] == "map.fields[a b]"


async def test_a_version_is_loaded_and_compiled_once_however_many_batches(
    platform: Platform, rpc: Stub, svc: SimpleNamespace
) -> None:
    made = await svc.published(rpc)
    for number in range(3):
        await _batch(rpc, made.version.name, svc.recipient(number))
    (app,) = platform.apps
    batch = app.batch  # type: ignore[attr-defined]
    assert (batch.cache.misses, batch.cache.hits) == (1, 2)
    # The artefact itself is not read or parsed again either: the same object comes back.
    first = await batch.published("acme", "welcome", 1)
    assert await batch.published("acme", "welcome", 1) is first
