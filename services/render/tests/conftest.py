"""Builders shared by the render tests: the domain's (`kit`) and the service's (`svc`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mailwright.render.v1 import render_pb2, render_pb2_grpc
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright.tracking import SigningKey, TrackingSigner
from mailwright_render import (
    CompiledTemplate,
    CompileOptions,
    Delivery,
    Recipient,
    RenderedEmail,
    Renderer,
    RenderLimits,
    Sender,
    TemplateKind,
    TemplateSource,
    TrackingConfig,
    Variant,
    compile_template,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SIGNER = TrackingSigner([SigningKey("k1", b"k" * 32)])
TRACKING = TrackingConfig("https://t.example", SIGNER, unsubscribe_mailto="unsub@t.example")
SENDER = Sender("Shop", "news@shop.example", "1 Main Street\nSpringfield 12345", "Shop Inc")
FOOTER = '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>'


def source(
    html: str | None = None,
    *,
    subject: str = "Hello",
    kind: TemplateKind = TemplateKind.TRANSACTIONAL,
    **fields: Any,
) -> TemplateSource:
    if html is None and "mjml" not in fields:
        html = "<p>Hi</p>"
    return TemplateSource(
        name="t", subject=(Variant("a", subject),), html=html, kind=kind, **fields
    )


def build(
    html: str | None = None, options: CompileOptions | None = None, **fields: Any
) -> CompiledTemplate:
    return compile_template(source(html, **fields), options)


def recipient(traits: Mapping[str, object] | None = None, **fields: Any) -> Recipient:
    return Recipient("p1", fields.pop("email", "ann@example.com"), traits or {}, **fields)


def delivery(**fields: Any) -> Delivery:
    return Delivery("ws1", fields.pop("send_id", "send1"), **fields)


def renderer(**fields: Any) -> Renderer:
    fields.setdefault("clock", lambda: NOW)
    return Renderer(**fields)


def render(
    compiled: CompiledTemplate,
    traits: Mapping[str, object] | None = None,
    *,
    tracking: bool = False,
    limits: RenderLimits | None = None,
    recipient_fields: Mapping[str, Any] | None = None,
    delivery_fields: Mapping[str, Any] | None = None,
    **renderer_fields: Any,
) -> RenderedEmail:
    engine = renderer(tracking=TRACKING if tracking else None, limits=limits, **renderer_fields)
    return engine.render(
        compiled,
        recipient(traits, **dict(recipient_fields or {})),
        delivery(**dict(delivery_fields or {})),
        SENDER,
    )


@pytest.fixture
def kit() -> SimpleNamespace:
    return SimpleNamespace(
        NOW=NOW,
        SIGNER=SIGNER,
        TRACKING=TRACKING,
        SENDER=SENDER,
        FOOTER=FOOTER,
        source=source,
        build=build,
        recipient=recipient,
        delivery=delivery,
        renderer=renderer,
        render=render,
    )


# The service over gRPC --------------------------------------------------------------------


def platform_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "grpc_port": 0,
        "http_port": 0,
        "auth_secret": "s" * 48,
        "bus_url": f"memory://render-{tmp_path.name}",
        "shutdown_grace": 1,
        "public_base_url": "https://t.example",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(
    settings: Settings, services: Sequence[str] = ("render",)
) -> AsyncIterator[Platform]:
    platform = Platform(settings, resolve_services(services))
    async with platform:
        yield platform


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    async with running(platform_settings(tmp_path)) as started:
        yield started


def token(
    platform: Platform, workspace: str = "acme", scopes: Sequence[str] = ("templates:*",)
) -> str:
    assert platform.runtime is not None
    return platform.runtime.authority.issue(workspace, list(scopes))


@pytest.fixture
def rpc(platform: Platform) -> render_pb2_grpc.RenderServiceAsyncStub:
    """A RenderService stub with a templates:* token for workspace acme."""
    return platform.clients(token(platform)).render


def content(
    body: str = "<p>Hi {{ first_name|default('there') }}</p>",
    *,
    subjects: Sequence[str] = ("Hello {{ first_name|default('you') }}",),
    marketing: bool = False,
    **fields: Any,
) -> render_pb2.TemplateContent:
    return render_pb2.TemplateContent(
        subjects=[
            render_pb2.TextVariant(key=chr(97 + i), template=s) for i, s in enumerate(subjects)
        ],
        body=body,
        category=render_pb2.TEMPLATE_CATEGORY_MARKETING
        if marketing
        else render_pb2.TEMPLATE_CATEGORY_TRANSACTIONAL,
        **fields,
    )


def recipient_message(number: int = 1, **traits: Any) -> render_pb2.Recipient:
    message = render_pb2.Recipient(
        send_id=f"send-{number}", profile_id=f"p{number}", email=f"p{number}@example.com"
    )
    message.traits.update(traits)
    return message


async def published(
    rpc: render_pb2_grpc.RenderServiceAsyncStub,
    template_id: str = "welcome",
    body: str | None = None,
    **fields: Any,
) -> render_pb2.PublishTemplateResponse:
    made = await rpc.CreateTemplate(
        render_pb2.CreateTemplateRequest(
            parent="workspaces/acme",
            template_id=template_id,
            content=content(body, **fields) if body is not None else content(**fields),
        )
    )
    return await rpc.PublishTemplate(render_pb2.PublishTemplateRequest(name=made.version.name))


def violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The field violations of an INVALID_ARGUMENT status."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str]] = []
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


@pytest.fixture
def svc() -> SimpleNamespace:
    return SimpleNamespace(
        content=content,
        recipient=recipient_message,
        published=published,
        violations=violations,
        token=token,
        running=running,
        settings=platform_settings,
    )
