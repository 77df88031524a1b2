"""Publishing validates: positions as field violations, compliance, schema, sandbox, rules."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import grpc
import pytest

from mailwright.render.v1 import render_pb2 as pb

if TYPE_CHECKING:
    from mailwright.render.v1.render_pb2_grpc import RenderServiceAsyncStub as Stub

FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'


async def _publish_error(
    rpc: Stub, svc: SimpleNamespace, content: pb.TemplateContent
) -> grpc.aio.AioRpcError:
    made = await rpc.CreateTemplate(
        pb.CreateTemplateRequest(parent="workspaces/acme", template_id="t", content=content)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.PublishTemplate(pb.PublishTemplateRequest(name=made.version.name))
    return raised.value


async def test_a_syntax_error_names_the_body_with_line_and_column(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    error = await _publish_error(rpc, svc, svc.content("<p>Hi</p>\n<p>{{ first_name }</p>"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    ((field, description),) = svc.violations(error)
    assert field == "content.body"
    assert description.startswith("line 2, column ")
    assert "[syntax]" in description


async def test_an_error_in_a_subject_variant_names_that_variant(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    error = await _publish_error(rpc, svc, svc.content(subjects=("Fine", "Broken {% if %}")))
    assert [field for field, _ in svc.violations(error)] == ["content.subjects[1].template"]


async def test_unbalanced_merge_tags_are_refused_where_they_are(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    error = await _publish_error(rpc, svc, svc.content("<p>*|IF:FNAME|* Hi</p>"))
    ((field, description),) = svc.violations(error)
    assert field == "content.body"
    assert "line 1, column 4" in description


async def test_marketing_mail_needs_an_unsubscribe_link_and_the_postal_address(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    error = await _publish_error(rpc, svc, svc.content("<p>Sale!</p>", marketing=True))
    descriptions = " ".join(description for _, description in svc.violations(error))
    assert "[missing-unsubscribe]" in descriptions
    assert "[missing-postal-address]" in descriptions


async def test_marketing_mail_with_both_publishes(rpc: Stub, svc: SimpleNamespace) -> None:
    published = await svc.published(
        rpc, body="<p>Sale!</p>" + FOOTER, marketing=True, postal_address="1 Main Street"
    )
    assert published.version.state == pb.VERSION_STATE_PUBLISHED


async def test_marketing_mail_must_say_what_the_postal_address_is(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    error = await _publish_error(rpc, svc, svc.content("<p>Sale!</p>" + FOOTER, marketing=True))
    ((field, description),) = svc.violations(error)
    assert field == "content.postal_address"
    assert "[missing-postal-address]" in description


async def test_without_the_profile_schema_unknown_variables_only_warn(
    tmp_path: Path, svc: SimpleNamespace
) -> None:
    # Only render runs here, so the profile service cannot be asked for its schema: even
    # the `error` policy publishes, and the version says why it could not check.
    settings = svc.settings(tmp_path, services={"render": {"unknown_variables": "error"}})
    async with svc.running(settings) as platform:
        rpc = platform.clients(svc.token(platform)).render
        published = await svc.published(
            rpc, body="<p>{{ favourite_colour|default('') }} {{ first_name|default('') }}</p>"
        )
    codes = {(issue.code, issue.severity) for issue in published.version.warnings}
    assert ("profile_schema", pb.ISSUE_SEVERITY_WARNING) in codes
    assert ("unknown_variable", pb.ISSUE_SEVERITY_WARNING) in codes
    unknown = [i for i in published.version.warnings if i.code == "unknown_variable"]
    assert ["favourite_colour" in issue.message for issue in unknown] == [True]


async def test_warnings_are_stored_on_the_version(rpc: Stub, svc: SimpleNamespace) -> None:
    published = await svc.published(
        rpc, body='<p>{{ first_name }} <a href="shop.example/x">shop</a></p>'
    )
    stored = await rpc.GetTemplateVersion(pb.GetTemplateVersionRequest(name=published.version.name))
    codes = {issue.code for issue in stored.version.warnings}
    assert {"missing_fallback", "broken_link"} <= codes
    link = next(i for i in stored.version.warnings if i.code == "broken_link")
    assert (link.part, link.line, link.column) == ("body", 1, 30)


async def test_validating_reports_every_issue_and_saves_nothing(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    reply = await rpc.ValidateTemplate(
        pb.ValidateTemplateRequest(
            parent="workspaces/acme", content=svc.content("<p>{{ x }</p>", marketing=True)
        )
    )
    assert not reply.valid
    assert {"syntax"} <= {issue.code for issue in reply.issues}
    listed = await rpc.ListTemplates(pb.ListTemplatesRequest(parent="workspaces/acme"))
    assert list(listed.templates) == []


async def test_validating_good_content_is_valid(rpc: Stub, svc: SimpleNamespace) -> None:
    reply = await rpc.ValidateTemplate(
        pb.ValidateTemplateRequest(parent="workspaces/acme", content=svc.content())
    )
    assert reply.valid


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ '%s' % first_name }}",
        "{{ '{0.__class__}'.format(first_name) }}",
        "{% include 'secrets.html' %}",
        "{{ lipsum() }}",
    ],
)
async def test_sandbox_escapes_are_refused_at_publish_and_the_service_lives_on(
    rpc: Stub, svc: SimpleNamespace, body: str
) -> None:
    error = await _publish_error(rpc, svc, svc.content(f"<p>{body}</p>"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert svc.violations(error)
    assert all(field == "content.body" for field, _ in svc.violations(error))
    alive = await rpc.GetTemplate(pb.GetTemplateRequest(name="workspaces/acme/templates/t"))
    assert alive.template.latest_version == 1


async def test_a_content_block_rule_about_history_is_refused_with_advice(
    rpc: Stub, svc: SimpleNamespace
) -> None:
    content = svc.content(
        '{% content_block "hero" %}',
        blocks=[
            pb.ContentBlock(
                name="hero",
                variants=[
                    pb.BlockVariant(
                        key="buyers",
                        rule_text='event "Order Completed" count >= 2 in last 30 days',
                        content="<p>Thanks</p>",
                    )
                ],
            )
        ],
    )
    error = await _publish_error(rpc, svc, content)
    ((field, description),) = svc.violations(error)
    assert field == "content.blocks[0].variants[0].content"
    assert "put it in a segment" in description


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (pb.TemplateContent(body="<p>x</p>"), "content.subjects"),
        (pb.TemplateContent(subjects=[pb.TextVariant(template="s")]), "content.body"),
        (
            pb.TemplateContent(
                subjects=[pb.TextVariant(template="s")],
                body="x",
                blocks=[pb.ContentBlock(name="b", variants=[pb.BlockVariant(content="x")])],
            ),
            "content.blocks[0].variants[0].condition",
        ),
        (
            pb.TemplateContent(
                subjects=[pb.TextVariant(key="a", template="s"), pb.TextVariant(key="a")],
                body="x",
            ),
            "content.subjects",
        ),
    ],
)
async def test_malformed_content_is_refused_on_save_naming_the_field(
    rpc: Stub, content: pb.TemplateContent, field: str, svc: SimpleNamespace
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await rpc.CreateTemplate(
            pb.CreateTemplateRequest(parent="workspaces/acme", template_id="t", content=content)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [f for f, _ in svc.violations(raised.value)]
