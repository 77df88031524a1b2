"""`mailwright render TEMPLATE_FILE --context CONTEXT.json [--part …]`: render without a server.

Compiles the template file exactly as publishing would (merge tags and Jinja, MJML, CSS
inlining, validation; warnings on stderr) and prints one part of the message rendered
for the context. Links are not tracked: this is a preview.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from mailwright_render.compile import CompileOptions, compile_template
from mailwright_render.context import Delivery, Recipient, Sender
from mailwright_render.errors import RenderError, TemplateInvalid
from mailwright_render.fileformat import TemplateFileError, read_template_file
from mailwright_render.mime import to_mime
from mailwright_render.render import Renderer

PARTS = ("html", "text", "subject", "preheader", "headers", "mime")


@click.command(name="render")
@click.argument("template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--context",
    "context_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON: profile, traits, content, send, sender (see docs/templates.md).",
)
@click.option("--part", type=click.Choice(PARTS), default="html", show_default=True)
@click.option("--subject-variant", default=None, help="Key of the subject variant to render.")
@click.option("--preheader-variant", default=None, help="Key of the preheader variant.")
def render(
    template_file: Path,
    context_file: Path | None,
    part: str,
    subject_variant: str | None,
    preheader_variant: str | None,
) -> None:
    """Render TEMPLATE_FILE for the recipient in --context and print one part."""
    context = _read_context(context_file)
    recipient, delivery, sender = context_objects(context, subject_variant, preheader_variant)
    try:
        document = read_template_file(template_file)
        if not sender.postal_address and document.postal_address:
            sender = replace(sender, postal_address=document.postal_address)
        compiled = compile_template(
            document.source, CompileOptions(postal_address=sender.postal_address)
        )
    except TemplateFileError as error:
        raise click.ClickException(str(error)) from None
    except TemplateInvalid as invalid:
        for issue in invalid.issues:
            click.echo(str(issue), err=True)
        raise click.ClickException(f"{template_file} does not compile") from None
    for warning in compiled.warnings:
        click.echo(str(warning), err=True)
    try:
        rendered = Renderer().render(compiled, recipient, delivery, sender)
    except RenderError as error:
        raise click.ClickException(f"render failed: {error}") from None
    if part == "mime":
        message = to_mime(rendered, sender, recipient.email or "preview@example.invalid")
        sys.stdout.write(message.as_string())
    elif part == "headers":
        for name, value in rendered.headers:
            click.echo(f"{name}: {value}")
    else:
        text = getattr(rendered, part)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _read_context(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--context") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a JSON object", param_hint="--context")
    return data


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, dict):
        raise click.BadParameter(f"{name}: expected an object", param_hint="--context")
    return value


def context_objects(
    data: Mapping[str, Any],
    subject_variant: str | None = None,
    preheader_variant: str | None = None,
) -> tuple[Recipient, Delivery, Sender]:
    """Recipient, delivery and sender from the CLI's context document."""
    profile = _section(data, "profile")
    send = _section(data, "send")
    sender = _section(data, "sender")
    traits = _section(data, "traits")
    try:
        recipient = Recipient(
            profile_id=str(profile.get("id", "preview")),
            email=str(profile.get("email", traits.get("email", ""))),
            traits=traits,
            segments=frozenset(str(s) for s in profile.get("segments", [])),
            locale=profile.get("locale"),
            timezone=profile.get("timezone"),
            content=_section(data, "content"),
        )
        delivery = Delivery(
            workspace=str(send.get("workspace", "preview")),
            send_id=str(send.get("id", "preview")),
            campaign=send.get("campaign") or {},
            links={
                # A preview has no signed unsubscribe URL; show where it would go.
                "unsubscribe": "https://unsubscribe.invalid/preview",
                **{str(k): str(v) for k, v in (send.get("links") or {}).items()},
            },
            subject_variant=subject_variant or send.get("subject_variant"),
            preheader_variant=preheader_variant or send.get("preheader_variant"),
        )
        sending = Sender(
            name=str(sender.get("name", "Mailwright preview")),
            email=str(sender.get("email", "preview@example.invalid")),
            postal_address=str(sender.get("postal_address", "")),
            company=str(sender.get("company", "")),
            reply_to=sender.get("reply_to"),
        )
    except (ValueError, TypeError) as error:
        raise click.BadParameter(str(error), param_hint="--context") from None
    return recipient, delivery, sending
