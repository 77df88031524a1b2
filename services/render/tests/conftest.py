"""Builders shared by the render domain's tests, handed out as the `kit` fixture."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

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
