"""`mailwright segments`: apply, preview, explain, list members, recompute — over gRPC.

    mailwright segments apply -f segments.yaml
    mailwright segments preview 'event "Order Completed" count >= 3 in last 30 days' --members
    mailwright segments explain loyal-buyers PROFILE_ID
    mailwright segments members loyal-buyers
    mailwright segments recompute loyal-buyers        (or --all)

Every command talks to a running service: `--address` (or `MAILWRIGHT_ADDRESS`, default
127.0.0.1:50051) and a bearer token `--token` (or `MAILWRIGHT_TOKEN`); the workspace is the
token's unless `--workspace` says otherwise.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import grpc
import jwt
from google.rpc import error_details_pb2, status_pb2
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mailwright.names import resource_name
from mailwright.rules.errors import RuleError
from mailwright.rules.grammar import parse
from mailwright.rules.library import SegmentDefinition, load_definitions
from mailwright.rules.printer import to_text
from mailwright.rules.tree import segment_references
from mailwright.runtime.clients import open_channel
from mailwright.runtime.settings import Settings
from mailwright.segment.v1 import segment_pb2, segment_pb2_grpc

T = TypeVar("T")

__all__ = ["segments"]


@dataclass
class Target:
    address: str
    token: str
    workspace: str

    def name(self, segment: str) -> str:
        """A segment's resource name from its id (or its full name)."""
        if segment.startswith("workspaces/"):
            return segment
        return resource_name(self.workspace, "segments", segment)

    @property
    def parent(self) -> str:
        return f"workspaces/{self.workspace}"


def _workspace_of(token: str) -> str:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return ""
    workspace = claims.get("ws")
    return workspace if isinstance(workspace, str) and workspace != "*" else ""


def describe(error: grpc.aio.AioRpcError) -> str:
    """The status and, for bad input, each field violation on its own line."""
    lines = [f"{error.code().name}: {error.details()}"]
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                lines[0] = f"{error.code().name}:"
                lines.extend(f"  {v.field}: {v.description}" for v in bad.field_violations)
    return "\n".join(lines)


def _run(target: Target, work: Callable[[Any], Awaitable[T]]) -> T:
    async def main() -> T:
        channel = open_channel(target.address, target.token, Settings())
        try:
            return await work(segment_pb2_grpc.SegmentServiceStub(channel))
        finally:
            await channel.close()

    try:
        return asyncio.run(main())
    except grpc.aio.AioRpcError as error:
        raise click.ClickException(describe(error)) from None


@click.group("segments")
@click.option(
    "--address", envvar="MAILWRIGHT_ADDRESS", default="127.0.0.1:50051", show_default=True,
    help="gRPC address of the segment service.",
)  # fmt: skip
@click.option("--token", envvar="MAILWRIGHT_TOKEN", help="Bearer token (or MAILWRIGHT_TOKEN).")
@click.option(
    "--workspace", envvar="MAILWRIGHT_WORKSPACE", default="",
    help="Workspace id (default: the token's).",
)  # fmt: skip
@click.pass_context
def segments(ctx: click.Context, address: str, token: str | None, workspace: str) -> None:
    """Segments: apply definitions, preview rules, explain, list members, recompute."""
    ctx.obj = Options(address, token or "", workspace)


@dataclass
class Options:
    """The group's options, checked when a command runs (so that --help needs none)."""

    address: str
    token: str
    workspace: str

    def target(self) -> Target:
        if not self.token:
            raise click.UsageError("a token is needed: --token or MAILWRIGHT_TOKEN")
        workspace = self.workspace or _workspace_of(self.token)
        if not workspace:
            raise click.UsageError("the token names no single workspace; give --workspace")
        return Target(self.address, self.token, workspace)


# ---------------------------------------------------------------------------------------
# apply


def _in_dependency_order(definitions: tuple[SegmentDefinition, ...]) -> list[SegmentDefinition]:
    by_id = {d.id: d for d in definitions}
    done: list[SegmentDefinition] = []
    placed: set[str] = set()

    def place(definition: SegmentDefinition, path: tuple[str, ...]) -> None:
        if definition.id in placed or definition.id in path:
            return
        for ref in sorted(segment_references(definition.rule)):
            if ref in by_id:
                place(by_id[ref], (*path, definition.id))
        placed.add(definition.id)
        done.append(definition)

    for definition in definitions:
        place(definition, ())
    return done


@segments.command("apply")
@click.option(
    "-f", "--file", "path", required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Segment definitions (YAML, the format of the segment library).",
)  # fmt: skip
@click.pass_obj
def apply(options: Options, path: Path) -> None:
    """Create or update the segments defined in a YAML file."""
    target = options.target()
    try:
        definitions = load_definitions(path.read_text("utf-8"))
    except (RuleError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: {error}") from None

    async def work(stub: Any) -> list[str]:
        lines = []
        for definition in _in_dependency_order(definitions):
            lines.append(await _apply_one(stub, target, definition))
            click.echo(lines[-1])
        return lines

    _run(target, work)


async def _apply_one(stub: Any, target: Target, definition: SegmentDefinition) -> str:
    name = target.name(definition.id)
    try:
        current = (await stub.GetSegment(segment_pb2.GetSegmentRequest(name=name))).segment
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        created = await stub.CreateSegment(
            segment_pb2.CreateSegmentRequest(
                parent=target.parent,
                segment_id=definition.id,
                segment=segment_pb2.Segment(
                    display_name=definition.name,
                    description=definition.description,
                    rule_text=definition.text,
                ),
                request_id=uuid.uuid4().hex,
            )
        )
        return f"created  {definition.id} (version {created.segment.version})"
    same_rule = current.rule_text == _canonical(definition)
    if (
        same_rule
        and current.display_name == definition.name
        and current.description == definition.description
    ):
        return f"unchanged {definition.id} (version {current.version})"
    mask = ["display_name", "description"] + ([] if same_rule else ["rule_text"])
    updated = await stub.UpdateSegment(
        segment_pb2.UpdateSegmentRequest(
            segment=segment_pb2.Segment(
                name=name,
                display_name=definition.name,
                description=definition.description,
                rule_text=definition.text,
            ),
            update_mask=mask,
            request_id=uuid.uuid4().hex,
        )
    )
    return f"updated  {definition.id} (version {updated.segment.version})"


def _canonical(definition: SegmentDefinition) -> str:
    return to_text(definition.rule)


# ---------------------------------------------------------------------------------------
# preview, explain, members


@segments.command("preview")
@click.argument("rule_text", metavar="'RULE TEXT'")
@click.option("--members", is_flag=True, help="Print the matching profile ids, one a line.")
@click.option(
    "--sample", type=click.IntRange(1, 1000), default=1000, show_default=True,
    help="How many members --members prints at most.",
)  # fmt: skip
@click.pass_obj
def preview(options: Options, rule_text: str, members: bool, sample: int) -> None:
    """How many people match a rule now (and who, with --members)."""
    target = options.target()

    async def work(stub: Any) -> Any:
        return await stub.PreviewSegment(
            segment_pb2.PreviewSegmentRequest(
                parent=target.parent, rule_text=rule_text, sample_size=sample if members else 1
            )
        )

    reply = _run(target, work)
    for found in reply.issues:
        click.echo(f"warning: {_position(found)}{found.message}", err=True)
    click.echo(f"{reply.count} matching", err=members)
    if members:
        for profile_id in reply.sample_profile_ids:
            click.echo(profile_id)
        if reply.count > len(reply.sample_profile_ids):
            click.echo(f"(first {len(reply.sample_profile_ids)} shown)", err=True)


def _position(found: Any) -> str:
    return f"{found.line}:{found.column}: " if found.line else ""


@segments.command("explain")
@click.argument("segment")
@click.argument("profile")
@click.pass_obj
def explain(options: Options, segment: str, profile: str) -> None:
    """Why a person is in a segment or not: each condition with what it compared."""
    target = options.target()

    async def work(stub: Any) -> Any:
        return await stub.ExplainMembership(
            segment_pb2.ExplainMembershipRequest(segment=target.name(segment), profile_id=profile)
        )

    reply = _run(target, work)
    click.echo(f"member       {'yes' if reply.member else 'no'}")
    click.echo(f"evaluated at {reply.evaluate_time.ToJsonString()}")
    if reply.HasField("next_change_time"):
        click.echo(f"next change  {reply.next_change_time.ToJsonString()}")
    else:
        click.echo("next change  none by time alone")
    for line in _tree(reply.root):
        click.echo(line)


def _tree(node: Any, level: int = 0) -> list[str]:
    mark = "[x]" if node.value else "[ ]"
    label = node.text
    if node.children:
        last = node.children[0].path.rsplit(".", 1)[-1]
        label = "not" if last == "not" else "all of" if last.startswith("all") else "any of"
    detail = f"  ({node.detail})" if node.detail else ""
    lines = [f"{'  ' * level}{mark} {label}{detail}"]
    for child in node.children:
        lines.extend(_tree(child, level + 1))
    return lines


@segments.command("members")
@click.argument("segment")
@click.option("--limit", type=click.IntRange(1), default=None, help="Stop after this many.")
@click.pass_obj
def members(options: Options, segment: str, limit: int | None) -> None:
    """The current members of a segment, one profile id a line."""
    target = options.target()

    async def work(stub: Any) -> int:
        token, shown, total = "", 0, 0
        while True:
            reply = await stub.ListMembers(
                segment_pb2.ListMembersRequest(
                    parent=target.name(segment), page_size=1000, page_token=token
                )
            )
            total = int(reply.total_size)
            for member in reply.members:
                click.echo(member.profile_id)
                shown += 1
                if limit is not None and shown >= limit:
                    return total
            token = reply.next_page_token
            if not token:
                return total

    total = _run(target, work)
    click.echo(f"{total} members", err=True)


# ---------------------------------------------------------------------------------------
# recompute


@segments.command("recompute")
@click.argument("names", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every segment, dependencies first.")
@click.option("--poll", type=float, default=0.5, show_default=True, hidden=True)
@click.pass_obj
def recompute(options: Options, names: tuple[str, ...], every: bool, poll: float) -> None:
    """Recompute segments from the projection (compiled SQL), with a progress bar."""
    if bool(names) == every:
        raise click.UsageError("name segments to recompute, or give --all")
    target = options.target()
    console = Console(stderr=True)

    async def work(stub: Any) -> None:
        order = list(names) if names else await _all_in_order(stub, target)
        for segment in order:
            await _recompute_one(stub, target, segment, console, poll)

    _run(target, work)


async def _all_in_order(stub: Any, target: Target) -> list[str]:
    found: dict[str, str] = {}
    token = ""
    while True:
        reply = await stub.ListSegments(
            segment_pb2.ListSegmentsRequest(parent=target.parent, page_size=1000, page_token=token)
        )
        for s in reply.segments:
            found[s.name.rsplit("/", 1)[-1]] = s.rule_text
        token = reply.next_page_token
        if not token:
            break
    definitions = tuple(
        SegmentDefinition(sid, sid, "", text, parse(text)) for sid, text in found.items()
    )
    return [d.id for d in _in_dependency_order(definitions)]


async def _recompute_one(
    stub: Any, target: Target, segment: str, console: Console, poll: float
) -> None:
    reply = await stub.RecomputeSegment(
        segment_pb2.RecomputeSegmentRequest(name=target.name(segment), request_id=uuid.uuid4().hex)
    )
    job = reply.job
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>10,.0f} / {task.total:<10,.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(segment.rsplit("/", 1)[-1], total=max(job.progress.total, 1))
        while job.state == segment_pb2.JOB_STATE_RUNNING:
            bar.update(task, completed=job.progress.done, total=max(job.progress.total, 1))
            await asyncio.sleep(poll)
            job = (
                await stub.GetRecomputeJob(segment_pb2.GetRecomputeJobRequest(name=job.name))
            ).job
        bar.update(task, completed=job.progress.done, total=max(job.progress.total, 1))
    if job.state == segment_pb2.JOB_STATE_FAILED:
        raise click.ClickException(f"recompute of {segment} failed: {job.error}")
    click.echo(f"{segment}: {job.entered_count} entered, {job.exited_count} exited")
