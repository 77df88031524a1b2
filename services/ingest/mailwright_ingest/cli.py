"""The ingest commands of `mailwright` (entry-point group `mailwright.cli`):

- `mailwright ingest FILE.jsonl` (or `-` for stdin): one Segment-format call per line,
  sent in batches through `IngestBatch` with a progress bar; prints the accepted,
  duplicate and rejected counts, and each rejected line's number and reason. Exit status
  1 when a line was rejected, 2 when the service could not be reached or refused.
- `mailwright taxonomy apply -f taxonomy.yaml [--prune] [--dry-run]`.
- `mailwright write-keys create|list|revoke`.

Every command takes `--address` (default: the ingest address of the settings) and
`--token` (or `MAILWRIGHT_TOKEN`); the workspace comes from `--workspace` or else from
the token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

import click
import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.names import workspace_prefix
from mailwright.runtime.clients import open_channel
from mailwright.runtime.commands import settings_from_options
from mailwright.taxonomy import TaxonomyError, load_taxonomy
from mailwright_ingest.convert import spec_to_proto
from mailwright_ingest.importer import Batch, Rejection, batches, describe
from mailwright_ingest.values import Limits

__all__ = ["ingest", "taxonomy", "write_keys"]

T = TypeVar("T")
MAX_SHOWN = 1000
RETRIES = 8


@dataclass
class Connection:
    address: str
    token: str
    workspace: str
    settings: Any

    @property
    def parent(self) -> str:
        return f"workspaces/{self.workspace}"

    def stub(self) -> tuple[grpc.aio.Channel, ingest_pb2_grpc.IngestServiceAsyncStub]:
        channel = open_channel(self.address, self.token, self.settings)
        return channel, ingest_pb2_grpc.IngestServiceStub(channel)


def _token_workspace(token: str) -> str | None:
    """The workspace a bearer token names (read, not verified: the server verifies)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    workspace = claims.get("ws") if isinstance(claims, dict) else None
    return workspace if isinstance(workspace, str) and workspace != "*" else None


def connection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--address", help="host:port of the ingest service (default: settings)."),
        click.option(
            "--token", envvar="MAILWRIGHT_TOKEN", help="Bearer token (or MAILWRIGHT_TOKEN)."
        ),
        click.option("--workspace", help="Workspace id (default: the token's workspace)."),
        click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _connect(
    address: str | None, token: str | None, workspace: str | None, config: str | None
) -> Connection:
    if not token:
        raise click.UsageError("a token is required: --token or MAILWRIGHT_TOKEN")
    settings = settings_from_options(config)
    chosen = workspace or _token_workspace(token)
    if not chosen:
        raise click.UsageError("--workspace is required (the token names no single workspace)")
    return Connection(address or settings.address_of("ingest"), token, chosen, settings)


class ServiceError(click.ClickException):
    """The service could not be reached or refused the call (exit status 2)."""

    exit_code = 2


def _fail(error: grpc.aio.AioRpcError) -> click.ClickException:
    message = f"{error.code().name}: {error.details()}"
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            message += "".join(f"\n  {v.field}: {v.description}" for v in bad.field_violations)
    return ServiceError(message)


def _run(call: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(call)
    except grpc.aio.AioRpcError as error:
        raise _fail(error) from None


# -- mailwright ingest ------------------------------------------------------------------------


@dataclass
class Tally:
    accepted: int = 0
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@click.command("ingest")
@click.argument("source", metavar="FILE.jsonl", type=click.File("rb"))
@connection_options
@click.option(
    "--batch-size", type=click.IntRange(1, 1000), default=500, show_default=True,
    help="Events per IngestBatch call.",
)  # fmt: skip
@click.option(
    "--backfill", is_flag=True,
    help="The file is history: accept events up to 3650 days old; they trigger no journeys.",
)  # fmt: skip
def ingest(
    source: IO[bytes],
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
    batch_size: int,
    backfill: bool,
) -> None:
    """Send the events of FILE.jsonl (one Segment-format call per line; - for stdin)."""
    connection = _connect(address, token, workspace, config)
    console = Console(stderr=True)
    total = _size_of(source)
    tally = _run(_ingest(connection, source, batch_size, total, console, backfill))
    out = Console()
    out.print(f"accepted   {tally.accepted:,}")
    out.print(f"duplicate  {tally.duplicate:,}")
    out.print(f"rejected   {len(tally.rejected):,}")
    ordered = sorted(tally.rejected, key=lambda r: r.line)
    for rejection in ordered[:MAX_SHOWN]:
        out.print(f"line {rejection.line}: {rejection.reason}", markup=False, highlight=False)
    if len(ordered) > MAX_SHOWN:
        out.print(f"… and {len(ordered) - MAX_SHOWN:,} more rejected lines")
    if tally.rejected:
        raise SystemExit(1)


def _size_of(source: IO[bytes]) -> int | None:
    try:
        return os.fstat(source.fileno()).st_size or None
    except (OSError, ValueError):
        return None


async def _ingest(
    connection: Connection,
    source: IO[bytes],
    batch_size: int,
    total: int | None,
    console: Console,
    backfill: bool = False,
) -> Tally:
    tally = Tally()
    channel, stub = connection.stub()
    columns = (
        TextColumn("sending"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("ingest", total=total, events=0)
            sent = 0
            for batch in batches(_lines(source), Limits(), max_events=batch_size):
                tally.rejected.extend(batch.rejections)
                if batch.events:
                    await _send(stub, connection.parent, batch, tally, backfill)
                sent += len(batch.events)
                progress.update(task, advance=batch.read_bytes, events=sent)
    finally:
        await channel.close()
    return tally


def _lines(source: IO[bytes]) -> Iterator[bytes]:
    yield from source


async def _send(
    stub: ingest_pb2_grpc.IngestServiceAsyncStub,
    parent: str,
    batch: Batch,
    tally: Tally,
    backfill: bool = False,
) -> None:
    request = ingest_pb2.IngestBatchRequest(parent=parent, events=batch.events, backfill=backfill)
    for attempt in range(RETRIES):
        try:
            reply = await stub.IngestBatch(request)
            break
        except grpc.aio.AioRpcError as error:
            wait = _retry_wait(error, attempt)
            if wait is None or attempt == RETRIES - 1:
                raise
            await asyncio.sleep(wait)
    tally.accepted += reply.accepted_count
    tally.duplicate += reply.duplicate_count
    for result in reply.results:
        if result.status == ingest_pb2.EVENT_STATUS_REJECTED:
            prefix = f"events[{result.index}]."
            problems = [
                _Problem(v.field.removeprefix(prefix), v.description) for v in result.violations
            ]
            tally.rejected.append(Rejection(batch.lines[result.index], describe(problems)))


@dataclass(frozen=True)
class _Problem:
    field: str
    description: str


def _retry_wait(error: grpc.aio.AioRpcError, attempt: int) -> float | None:
    """How long to wait before retrying, or None when retrying cannot help."""
    code = error.code()
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status is not None else []:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                delay: float = info.retry_delay.ToTimedelta().total_seconds()
                return max(0.05, delay)
        return 1.0
    if code in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE):
        return min(10.0, 0.5 * 2.0**attempt)
    return None


# -- mailwright taxonomy --------------------------------------------------------------------


@click.group("taxonomy")
def taxonomy() -> None:
    """The workspace's event taxonomy."""


@taxonomy.command("apply")
@click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Taxonomy YAML (see docs/ingest.md).",
)  # fmt: skip
@click.option("--prune", is_flag=True, help="Delete definitions the file does not name.")
@click.option("--dry-run", is_flag=True, help="Check and count; change nothing.")
@connection_options
def apply(
    path: Path,
    prune: bool,
    dry_run: bool,
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
) -> None:
    """Create or replace the event definitions of a taxonomy file."""
    try:
        document = load_taxonomy(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: {error}") from error
    except TaxonomyError as error:
        raise click.ClickException(f"{path}: {error}") from error
    connection = _connect(address, token, workspace, config)
    request = ingest_pb2.ApplyTaxonomyRequest(
        parent=connection.parent,
        definitions=[spec_to_proto(spec) for spec in document.events],
        prune=prune,
        validate_only=dry_run,
        request_id=str(uuid.uuid4()),
    )

    async def call() -> ingest_pb2.ApplyTaxonomyResponse:
        channel, stub = connection.stub()
        try:
            return await stub.ApplyTaxonomy(request)
        finally:
            await channel.close()

    reply = _run(call())
    verb = "would be" if dry_run else ""
    click.echo(f"created {reply.created_count} {verb}".rstrip())
    click.echo(f"updated {reply.updated_count} {verb}".rstrip())
    click.echo(f"deleted {reply.deleted_count} {verb}".rstrip())
    if document.traits:
        click.echo(
            f"traits: {len(document.traits)} declared; the segment rule checker reads them,"
            " ingest does not store them"
        )


# -- mailwright write-keys ------------------------------------------------------------------


@click.group("write-keys")
def write_keys() -> None:
    """Write keys of the HTTP tracking API."""


def _call(connection: Connection, method: str, request: Any) -> Any:
    async def call() -> Any:
        channel, stub = connection.stub()
        try:
            return await getattr(stub, method)(request)
        finally:
            await channel.close()

    return _run(call())


@write_keys.command("create")
@click.option("--name", "display_name", default="write key", show_default=True)
@connection_options
def create_key(
    display_name: str,
    address: str | None,
    token: str | None,
    workspace: str | None,
    config: str | None,
) -> None:
    """Create a write key and print it (it is shown only now)."""
    connection = _connect(address, token, workspace, config)
    request = ingest_pb2.CreateWriteKeyRequest(
        parent=connection.parent, display_name=display_name, request_id=str(uuid.uuid4())
    )
    reply = _call(connection, "CreateWriteKey", request)
    click.echo(reply.write_key.key)
    click.echo(f"name: {reply.write_key.name}", err=True)


@write_keys.command("list")
@connection_options
def list_keys(
    address: str | None, token: str | None, workspace: str | None, config: str | None
) -> None:
    """List the write keys (their prefixes, never the keys)."""
    connection = _connect(address, token, workspace, config)
    token_page = ""
    while True:
        request = ingest_pb2.ListWriteKeysRequest(
            parent=connection.parent, page_size=1000, page_token=token_page
        )
        reply = _call(connection, "ListWriteKeys", request)
        for key in reply.write_keys:
            state = "revoked" if key.HasField("revoke_time") else "active"
            click.echo(f"{key.name}\t{key.key_prefix}…\t{state}\t{key.display_name}")
        token_page = reply.next_page_token
        if not token_page:
            return


@write_keys.command("revoke")
@click.argument("name")
@connection_options
def revoke_key(
    name: str, address: str | None, token: str | None, workspace: str | None, config: str | None
) -> None:
    """Revoke a write key by its name (workspaces/…/writeKeys/…)."""
    connection = _connect(address, token, workspace or workspace_prefix(name), config)
    reply = _call(connection, "RevokeWriteKey", ingest_pb2.RevokeWriteKeyRequest(name=name))
    click.echo(f"revoked {reply.write_key.name}")
