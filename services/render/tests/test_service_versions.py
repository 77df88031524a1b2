"""The render service over gRPC: templates, versions, publishing and rollback."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import grpc
import pytest

from mailwright.render.v1 import render_pb2 as pb

if TYPE_CHECKING:
    from mailwright.render.v1.render_pb2_grpc import RenderServiceAsyncStub as Stub


async def test_create_update_publish_then_render_a_batch(
    tmp_path: Path, database_url: str, svc: SimpleNamespace
) -> None:
    async with svc.running(svc.settings(tmp_path, database_url=database_url)) as platform:
        rpc = platform.clients(svc.token(platform)).render
        created = await rpc.CreateTemplate(
            pb.CreateTemplateRequest(
                parent="workspaces/acme",
                template_id="welcome",
                template=pb.Template(display_name="Welcome"),
                content=svc.content("<p>Draft</p>"),
            )
        )
        assert created.template.name == "workspaces/acme/templates/welcome"
        assert created.version.name == "workspaces/acme/templates/welcome/versions/1"
        assert created.version.state == pb.VERSION_STATE_DRAFT

        updated = await rpc.UpdateTemplate(
            pb.UpdateTemplateRequest(
                name=created.template.name,
                content=svc.content("<p>Hi {{ first_name|default('there') }}</p>"),
            )
        )
        assert updated.version.version == 2
        assert updated.template.latest_version == 2
        assert updated.template.published_version == 0

        published = await rpc.PublishTemplate(pb.PublishTemplateRequest(name=updated.version.name))
        assert published.version.state == pb.VERSION_STATE_PUBLISHED
        assert published.version.html_size > 0
        assert published.template.published_version == 2

        reply = await rpc.RenderBatch(
            pb.RenderBatchRequest(
                version=published.version.name,
                recipients=[svc.recipient(1, first_name="Ann"), svc.recipient(2)],
                options=pb.RenderOptions(from_address="news@shop.example", from_name="Shop"),
            )
        )
    assert [r.send_id for r in reply.results] == ["send-1", "send-2"]
    assert [r.message.subject for r in reply.results] == ["Hello Ann", "Hello you"]
    assert "<p>Hi Ann</p>" in reply.results[0].message.html
    assert "<p>Hi there</p>" in reply.results[1].message.html
    assert reply.results[0].message.text.strip() == "Hi Ann"


async def test_a_published_version_keeps_its_content_and_artefact(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    first = await svc.published(rpc, body="<p>One</p>")
    await rpc.UpdateTemplate(
        pb.UpdateTemplateRequest(name=first.template.name, content=svc.content("<p>Two</p>"))
    )
    again = await rpc.PublishTemplate(pb.PublishTemplateRequest(name=first.version.name))
    stored = await rpc.GetTemplateVersion(pb.GetTemplateVersionRequest(name=first.version.name))
    assert stored.version.content.body == "<p>One</p>"
    assert stored.version.publish_time == first.version.publish_time
    assert again.version.publish_time == first.version.publish_time


async def test_publishing_an_older_version_rolls_back_what_sends_use(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    first = await svc.published(rpc, body="<p>One</p>")
    second = await rpc.UpdateTemplate(
        pb.UpdateTemplateRequest(name=first.template.name, content=svc.content("<p>Two</p>"))
    )
    await rpc.PublishTemplate(pb.PublishTemplateRequest(name=second.version.name))
    rolled = await rpc.PublishTemplate(pb.PublishTemplateRequest(name=first.version.name))
    assert rolled.template.published_version == 1
    reply = await rpc.RenderBatch(
        pb.RenderBatchRequest(version=first.template.name, recipients=[svc.recipient()])
    )
    assert "<p>One</p>" in reply.results[0].message.html


async def test_a_draft_cannot_be_rendered_for_a_send(rpc: Stub, svc: SimpleNamespace) -> None:
    created = await rpc.CreateTemplate(
        pb.CreateTemplateRequest(
            parent="workspaces/acme", template_id="draft", content=svc.content()
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.RenderBatch(
            pb.RenderBatchRequest(version=created.version.name, recipients=[svc.recipient()])
        )
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "publish it first" in (raised.value.details() or "")


async def test_templates_list_in_pages_with_opaque_tokens(rpc: Stub, svc: SimpleNamespace) -> None:
    for name in ("c", "a", "b"):
        await rpc.CreateTemplate(
            pb.CreateTemplateRequest(
                parent="workspaces/acme", template_id=name, content=svc.content()
            )
        )
    first = await rpc.ListTemplates(pb.ListTemplatesRequest(parent="workspaces/acme", page_size=2))
    rest = await rpc.ListTemplates(
        pb.ListTemplatesRequest(
            parent="workspaces/acme", page_size=2, page_token=first.next_page_token
        )
    )
    names = [t.name.rsplit("/", 1)[-1] for t in [*first.templates, *rest.templates]]
    assert names == ["a", "b", "c"]
    assert rest.next_page_token == ""


async def test_a_page_token_of_another_listing_is_refused(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    for _ in range(2):
        await rpc.UpdateTemplate(
            pb.UpdateTemplateRequest(name=made.template.name, content=svc.content())
        )
    page = await rpc.ListTemplateVersions(
        pb.ListTemplateVersionsRequest(parent=made.template.name, page_size=1)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.ListTemplates(
            pb.ListTemplatesRequest(parent="workspaces/acme", page_token=page.next_page_token)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.violations(raised.value)[0][0] == "page_token"


async def test_versions_list_newest_first_without_content(rpc: Stub, svc: SimpleNamespace) -> None:
    made = await svc.published(rpc)
    await rpc.UpdateTemplate(
        pb.UpdateTemplateRequest(name=made.template.name, content=svc.content())
    )
    first = await rpc.ListTemplateVersions(
        pb.ListTemplateVersionsRequest(parent=made.template.name, page_size=1)
    )
    rest = await rpc.ListTemplateVersions(
        pb.ListTemplateVersionsRequest(
            parent=made.template.name, page_size=1, page_token=first.next_page_token
        )
    )
    versions = [*first.versions, *rest.versions]
    assert [(v.version, v.state) for v in versions] == [
        (2, pb.VERSION_STATE_DRAFT),
        (1, pb.VERSION_STATE_PUBLISHED),
    ]
    assert not any(v.HasField("content") for v in versions)


async def test_the_content_round_trips_through_the_contract(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    content = svc.content(
        '<div>{% content_block "hero" %}</div>',
        subjects=("A {{ first_name|default('x') }}", "B"),
        preheaders=[pb.TextVariant(key="p", template="Pre", weight=2)],
        text="Plain {{ first_name|default('x') }}",
        missing=pb.MISSING_VALUE_ERROR,
        postal_address="1 Main Street",
        blocks=[
            pb.ContentBlock(
                name="hero",
                default_content="<p>All</p>",
                variants=[
                    pb.BlockVariant(key="vip", segment="vip", content="<p>VIP</p>"),
                    pb.BlockVariant(
                        key="gold", rule_text='trait plan = "gold"', content="<p>G</p>"
                    ),
                ],
            )
        ],
    )
    made = await rpc.CreateTemplate(
        pb.CreateTemplateRequest(parent="workspaces/acme", template_id="full", content=content)
    )
    stored = await rpc.GetTemplateVersion(pb.GetTemplateVersionRequest(name=made.version.name))
    expected = pb.TemplateContent()
    expected.CopyFrom(content)
    expected.format = pb.SOURCE_FORMAT_HTML
    for subject in expected.subjects:
        subject.weight = 1.0
    assert stored.version.content == expected


async def test_an_unknown_template_is_not_found(rpc: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.GetTemplate(pb.GetTemplateRequest(name="workspaces/acme/templates/nope"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_taken_template_id_already_exists(rpc: Stub, svc: SimpleNamespace) -> None:
    request = pb.CreateTemplateRequest(
        parent="workspaces/acme", template_id="dup", content=svc.content()
    )
    await rpc.CreateTemplate(request)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.CreateTemplate(request)
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_a_retried_request_id_gets_the_first_answer_and_does_nothing_twice(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    create = pb.CreateTemplateRequest(
        parent="workspaces/acme", template_id="once", content=svc.content(), request_id="r1"
    )
    assert await rpc.CreateTemplate(create) == await rpc.CreateTemplate(create)
    update = pb.UpdateTemplateRequest(
        name="workspaces/acme/templates/once", content=svc.content("<p>2</p>"), request_id="r2"
    )
    first = await rpc.UpdateTemplate(update)
    assert await rpc.UpdateTemplate(update) == first
    template = await rpc.GetTemplate(pb.GetTemplateRequest(name="workspaces/acme/templates/once"))
    assert template.template.latest_version == 2


async def test_a_request_id_reused_for_another_request_is_refused(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    await rpc.CreateTemplate(
        pb.CreateTemplateRequest(
            parent="workspaces/acme", template_id="one", content=svc.content(), request_id="r"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.CreateTemplate(
            pb.CreateTemplateRequest(
                parent="workspaces/acme", template_id="two", content=svc.content(), request_id="r"
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.violations(raised.value)[0][0] == "request_id"


async def test_another_workspaces_templates_are_invisible(
    platform: object, rpc: Stub, svc: SimpleNamespace
) -> None:
    await svc.published(rpc)
    other = platform.clients(svc.token(platform, "globex")).render  # type: ignore[attr-defined]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await other.GetTemplate(pb.GetTemplateRequest(name="workspaces/acme/templates/welcome"))
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await other.RenderBatch(
            pb.RenderBatchRequest(
                version="workspaces/acme/templates/welcome/versions/1",
                recipients=[svc.recipient()],
            )
        )
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await other.ListTemplates(pb.ListTemplatesRequest(parent="workspaces/globex"))
    assert list(listed.templates) == []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await other.GetTemplate(pb.GetTemplateRequest(name="workspaces/globex/templates/welcome"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_names_are_invalid_arguments_naming_the_field(rpc: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.GetTemplateVersion(
            pb.GetTemplateVersionRequest(name="workspaces/acme/templates/t/versions/zero")
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in (raised.value.details() or "")
