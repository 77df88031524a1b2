"""`mailwright templates`: push template files to the render service, preview, list.

    mailwright templates push spring.yaml --publish
    mailwright templates preview spring-sale --profile 3f2a… --out preview.html
    mailwright templates preview spring-sale --context ann.json --part text
    mailwright templates list

They talk to a running render service over gRPC: `--address` (default: the settings'
address of render, `MAILWRIGHT_ADDRESSES__RENDER`) with a bearer token in `--token` or
`$MAILWRIGHT_TOKEN` (`mailwright tokens create --workspace acme --scope templates:*`).
The workspace is the token's unless `--workspace` says otherwise. `mailwright render`
renders a file locally, without a server.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
import jwt
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mailwright.names import WORKSPACE_ID, resource_name
from mailwright.render.v1 import render_pb2 as pb
from mailwright.runtime.clients import Clients
from mailwright.runtime.settings import Settings, SettingsError, load_settings
from mailwright_render import wire
from mailwright_render.fileformat import TemplateFileError, read_template_file
from mailwright_render.records import Authored

TOKEN_VARIABLE = "MAILWRIGHT_TOKEN"  # noqa: S105 (the variable's name, not a token)
PARTS = ("html", "text", "subject", "preheader", "mime")
T = TypeVar("T")


class Connection:
    """Where the render service is, who we are, and for which workspace."""

    def __init__(
        self, address: str | None, token: str | None, workspace: str | None, config: str | None
    ) -> None:
        if not token:
            raise click.UsageError(
                f"--token or ${TOKEN_VARIABLE} is required"
                " (mailwright tokens create --workspace WORKSPACE --scope 'templates:*')"
            )
        try:
            settings = load_settings(config)
        except SettingsError as error:
            raise click.ClickException(f"bad setting: {error}") from None
        if address:
            settings = settings.model_copy(
                update={"addresses": {**settings.addresses, "render": address}}
            )
        self.settings: Settings = settings
        self.token = token
        self.workspace = workspace or _token_workspace(token)
        if not WORKSPACE_ID.match(self.workspace):
            raise click.BadParameter(
                f"{self.workspace!r} is not a workspace id", param_hint="--workspace"
            )

    @property
    def parent(self) -> str:
        return f"workspaces/{self.workspace}"

    def call(self, work: Callable[[Clients], Awaitable[T]]) -> T:
        async def run() -> T:
            clients = Clients(self.settings, self.token)
            try:
                return await work(clients)
            finally:
                await clients.close()

        try:
            return asyncio.run(run())
        except grpc.aio.AioRpcError as error:
            raise click.ClickException(_describe(error)) from None


def _token_workspace(token: str) -> str:
    """The workspace a token names (read, not verified: the server verifies it)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        raise click.BadParameter("is not a Mailwright token", param_hint="--token") from None
    workspace = claims.get("ws")
    if not isinstance(workspace, str) or workspace == "*":
        raise click.UsageError("the token is valid for every workspace: give --workspace")
    return workspace


def _describe(error: grpc.aio.AioRpcError) -> str:
    lines = [f"{error.code().name}: {error.details()}"]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)


def connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        (
            click.option("--address", help="Render's gRPC address (default: from the settings)."),
            click.option(
                "--token",
                envvar=TOKEN_VARIABLE,
                help=f"Bearer token with templates:* (or ${TOKEN_VARIABLE}).",
            ),
            click.option("--workspace", help="Workspace id (default: the token's)."),
            click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file."),
        )
    ):
        function = option(function)
    return function


def _issue_line(issue: pb.TemplateIssue) -> str:
    where = issue.part
    if issue.line:
        where += f":{issue.line}" + (f":{issue.column}" if issue.column else "")
    severity = "error" if issue.severity == pb.ISSUE_SEVERITY_ERROR else "warning"
    return f"{where}: {severity}: {issue.message} [{issue.code}]"


@click.group()
def templates() -> None:
    """Push, preview and list templates on a render service."""


@templates.command("push")
@click.argument("template_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Publish the pushed version (validates it).")
@click.option("--id", "template_id", help="Template id (default: the file's name field or stem).")
@click.option("--postal-address", help="The sender's postal address (default: the file's).")
@connection_options
def push(
    template_file: Path,
    publish: bool,
    template_id: str | None,
    postal_address: str | None,
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
) -> None:
    """Save TEMPLATE_FILE as the next version of its template (created if new)."""
    connection = Connection(address, token, workspace, config)
    try:
        document = read_template_file(template_file)
    except TemplateFileError as error:
        raise click.ClickException(str(error)) from None
    template_id = template_id or document.source.name
    address_text = document.postal_address if postal_address is None else postal_address
    content = wire.content_to_proto(Authored(document.source, address_text))
    name = resource_name(connection.workspace, "templates", template_id)

    async def work(clients: Any) -> tuple[str, pb.TemplateVersion]:
        render = clients.render
        try:
            current = await render.GetTemplate(pb.GetTemplateRequest(name=name))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            created = await render.CreateTemplate(
                pb.CreateTemplateRequest(
                    parent=connection.parent,
                    template_id=template_id,
                    content=content,
                    request_id=uuid.uuid4().hex,
                )
            )
            version, what = created.version, "created"
        else:
            latest = await render.GetTemplateVersion(
                pb.GetTemplateVersionRequest(
                    name=f"{name}/versions/{current.template.latest_version}"
                )
            )
            if latest.version.content == content:
                version, what = latest.version, "unchanged"
            else:
                updated = await render.UpdateTemplate(
                    pb.UpdateTemplateRequest(
                        name=name, content=content, request_id=uuid.uuid4().hex
                    )
                )
                version, what = updated.version, "saved"
        if publish:
            published = await render.PublishTemplate(
                pb.PublishTemplateRequest(name=version.name, request_id=uuid.uuid4().hex)
            )
            version, what = published.version, f"{what} and published"
        return what, version

    what, version = connection.call(work)
    for issue in version.warnings:
        click.echo(_issue_line(issue), err=True)
    click.echo(f"{template_id}: version {version.version} {what} ({version.name})")


@templates.command("preview")
@click.argument("name")
@click.option("--profile", help="Profile id (or workspaces/…/profiles/…) to render for.")
@click.option(
    "--context",
    "context_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Or a JSON recipient: traits, segments, email, locale, timezone, context.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@click.option("--part", type=click.Choice(PARTS), default="html", show_default=True)
@click.option("--track", is_flag=True, help="Show tracked links and the open pixel.")
@connection_options
def preview(
    name: str,
    profile: str | None,
    context_file: Path | None,
    out: Path | None,
    part: str,
    track: bool,
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
) -> None:
    """Render template NAME (its published version, else its latest; or NAME/versions/N)."""
    connection = Connection(address, token, workspace, config)
    if (profile is None) == (context_file is None):
        raise click.UsageError("give one of --profile and --context")
    request = pb.PreviewRenderRequest(
        parent=connection.parent,
        template=name
        if name.startswith("workspaces/")
        else resource_name(connection.workspace, "templates", name),
        options=pb.RenderOptions(
            track=track, mime=part == "mime", from_address="preview@example.invalid"
        ),
    )
    if profile is not None:
        request.profile = (
            profile
            if profile.startswith("workspaces/")
            else resource_name(connection.workspace, "profiles", profile)
        )
    else:
        assert context_file is not None
        request.recipient.CopyFrom(_recipient(context_file))

    async def work(clients: Any) -> pb.PreviewRenderResponse:
        reply: pb.PreviewRenderResponse = await clients.render.PreviewRender(request)
        return reply

    reply = connection.call(work)
    for issue in reply.issues:
        click.echo(_issue_line(issue), err=True)
    message = reply.message
    data = message.mime if part == "mime" else str(getattr(message, part)).encode()
    if out is None:
        sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out} ({len(data)} bytes)", err=True)


def _recipient(path: Path) -> pb.Recipient:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--context") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a JSON object", param_hint="--context")
    known = {"traits", "segments", "email", "locale", "timezone", "context", "profile_id"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise click.BadParameter(f"{path}: unknown fields {unknown}", param_hint="--context")
    recipient = pb.Recipient(
        profile_id=str(data.get("profile_id", "preview")),
        email=str(data.get("email", "")),
        locale=str(data.get("locale", "")),
        timezone=str(data.get("timezone", "")),
        segments=[str(s) for s in data.get("segments", [])],
    )
    try:
        recipient.traits.update(data.get("traits", {}))
        recipient.context.update(data.get("context", {}))
    except (TypeError, ValueError, AttributeError) as error:
        raise click.BadParameter(f"{path}: {error}", param_hint="--context") from None
    return recipient


@templates.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per template.")
@connection_options
def list_templates(
    as_json: bool,
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
) -> None:
    """List the workspace's templates: id, name, kind, latest and published version."""
    connection = Connection(address, token, workspace, config)

    async def work(clients: Any) -> list[pb.Template]:
        found: list[pb.Template] = []
        page_token = ""
        while True:
            reply = await clients.render.ListTemplates(
                pb.ListTemplatesRequest(
                    parent=connection.parent, page_size=1000, page_token=page_token
                )
            )
            found.extend(reply.templates)
            page_token = reply.next_page_token
            if not page_token:
                return found

    for template in connection.call(work):
        template_id = template.name.rsplit("/", 1)[-1]
        kind = (
            "marketing" if template.category == pb.TEMPLATE_CATEGORY_MARKETING else "transactional"
        )
        published = str(template.published_version) if template.published_version else "-"
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "id": template_id,
                        "display_name": template.display_name,
                        "kind": kind,
                        "latest_version": template.latest_version,
                        "published_version": template.published_version,
                        "update_time": template.update_time.ToJsonString(),
                    }
                )
            )
        else:
            click.echo(
                f"{template_id}\t{template.display_name or '-'}\t{kind}"
                f"\tlatest {template.latest_version}\tpublished {published}"
            )
