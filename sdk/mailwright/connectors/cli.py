"""`mailwright connectors`: run a connector's source into ingest, and look after its cursors.

    mailwright connectors sync shopify --stream orders --workspace acme \\
        --address ingest.mailwright:50051 --token "$MAILWRIGHT_TOKEN"
    mailwright connectors cursors --workspace acme
    mailwright connectors reset shopify --stream orders --workspace acme

`sync` pulls the stream from the cursor stored by the last run (the `connectors` database
of the deployment, see `mailwright.connectors.state`), sends the events to ingest with
`IngestBatch`, and saves each batch's cursor once its events were accepted: interrupted
anywhere, it resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mailwright.connectors.capability import Capability
from mailwright.connectors.errors import ConnectorError, ProviderError
from mailwright.connectors.registry import ConnectorRegistry
from mailwright.connectors.state import CursorKey, CursorStore
from mailwright.connectors.sync import IngestPublisher, SyncError, SyncProgress, run_sync
from mailwright.names import WORKSPACE_ID
from mailwright.plugins import get_plugins
from mailwright.runtime.clients import Clients
from mailwright.runtime.settings import Settings, SettingsError, load_settings
from mailwright.runtime.telemetry import configure_logging

TOKEN_VARIABLE = "MAILWRIGHT_TOKEN"  # noqa: S105 (the variable's name, not a token)


@click.group()
def connectors() -> None:
    """Run connector sources and manage their sync cursors."""


def _settings(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except SettingsError as error:
        raise click.ClickException(f"bad setting: {error}") from error


def _workspace(value: str) -> str:
    if not WORKSPACE_ID.match(value):
        raise click.BadParameter(
            f"{value!r} is not a workspace id (lower-case letters, digits and dashes)",
            param_hint="--workspace",
        )
    return value


@contextmanager
def _store(settings: Settings, state_url: str | None) -> Iterator[CursorStore]:
    store = CursorStore.open(state_url or settings.database_url_for("connectors"))
    try:
        yield store
    finally:
        store.close()


@connectors.command("sync")
@click.argument("name")
@click.option("--stream", help="The stream to pull (e.g. customers, orders); required.")
@click.option("--workspace", required=True, help="The workspace the events belong to.")
@click.option("--address", help="Ingest's gRPC address (default: MAILWRIGHT_ADDRESSES__INGEST).")
@click.option(
    "--token",
    envvar=TOKEN_VARIABLE,
    help=f"Bearer token with events:write on the workspace (or ${TOKEN_VARIABLE}).",
)
@click.option("--full", is_flag=True, help="Ignore the stored cursor and pull everything.")
@click.option("--state-url", help="SQLAlchemy URL of the cursor database (default: settings).")
@click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file.")
def sync(
    name: str,
    stream: str | None,
    workspace: str,
    address: str | None,
    token: str | None,
    full: bool,
    state_url: str | None,
    config: str | None,
) -> None:
    """Pull STREAM of connector NAME into ingest, resuming where the last sync stopped.

    Audience syncs go the other way and run in the delivery service: resync an audience
    destination with `mailwright audiences resync DESTINATION`.
    """
    workspace = _workspace(workspace)
    settings = _settings(config)
    plugins = get_plugins(settings)
    _explain_audience(plugins.connectors, name)
    if not stream:
        raise click.UsageError("Missing option '--stream'.")
    if not token:
        raise click.UsageError(
            f"--token or ${TOKEN_VARIABLE} is required "
            f"(mailwright tokens create --workspace {workspace} --scope events:write)"
        )
    if not logging.getLogger().handlers:  # embedded (a test, a script): leave logging be
        configure_logging("WARNING", settings.log_format)
    # httpx logs every request's full URL at INFO; some providers put keys in queries.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if address:
        addresses = {**settings.addresses, "ingest": address}
        settings = settings.model_copy(update={"addresses": addresses})
    try:
        source = plugins.connectors.open_source(name, settings.connectors.get(name))
    except (ConnectorError, TypeError) as error:
        raise click.ClickException(str(error)) from error
    if stream not in source.streams:
        asyncio.run(source.aclose())
        raise click.BadParameter(
            f"{name} has no stream {stream!r} (it has: {', '.join(source.streams)})",
            param_hint="--stream",
        )
    key = CursorKey(workspace, name, stream)
    console = Console(stderr=True)
    with _store(settings, state_url) as store:
        progress = asyncio.run(_sync(source, key, store, settings, token, full, console))
    _report(progress, console)
    if progress.rejected or progress.skipped:
        raise click.exceptions.Exit(1)


def _explain_audience(registry: ConnectorRegistry, name: str) -> None:
    """A connector that only syncs audiences has nothing to pull: say where that runs."""
    try:
        capabilities = registry.get(name).capabilities
    except ConnectorError:
        return
    if Capability.SOURCE not in capabilities and Capability.AUDIENCE_SYNC in capabilities:
        raise click.UsageError(
            f"{name} has no source to pull; its audience sync runs in the delivery service, "
            f"driven by segment membership. Set up an audience destination "
            f"(mailwright audiences apply -f FILE) and resync it with "
            f"`mailwright audiences resync DESTINATION`."
        )


async def _sync(
    source: Any,
    key: CursorKey,
    store: CursorStore,
    settings: Settings,
    token: str,
    full: bool,
    console: Console,
) -> SyncProgress:
    clients = Clients(settings, token)
    publisher = IngestPublisher(clients.ingest, key.workspace)
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as bar:
            task: TaskID = bar.add_task(f"{key.connector}/{key.stream}", total=None, detail="")

            def show(progress: SyncProgress) -> None:
                bar.update(
                    task,
                    completed=progress.events,
                    total=progress.total,
                    detail=f"{progress.accepted} accepted, {progress.duplicates} duplicate, "
                    f"{progress.rejected} rejected",
                )

            return await run_sync(
                source,
                key.stream,
                key=key,
                store=store,
                publisher=publisher,
                full=full,
                on_progress=show,
            )
    except ProviderError as error:
        raise click.ClickException(
            f"{key.connector}: {error} (code {error.code or '-'}); the cursor of every batch "
            "already sent is saved: run the same command again to resume"
        ) from error
    except (SyncError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    finally:
        await source.aclose()
        await clients.close()


def _report(progress: SyncProgress, console: Console) -> None:
    console.print(
        f"{progress.connector}/{progress.stream}: {progress.events} events in "
        f"{progress.batches} batches — {progress.accepted} accepted, "
        f"{progress.duplicates} duplicate, {progress.rejected} rejected"
    )
    for rejection in progress.rejections:
        console.print(f"  rejected {rejection.message_id}: {rejection.reason}", style="red")
    if progress.rejected > len(progress.rejections):
        console.print(f"  … and {progress.rejected - len(progress.rejections)} more", style="red")
    if progress.skipped:
        console.print(f"{progress.skipped} records skipped by the source:", style="red")
        for skip in progress.skips:
            console.print(f"  skipped {skip}", style="red")
        if progress.skipped > len(progress.skips):
            console.print(f"  … and {progress.skipped - len(progress.skips)} more", style="red")


@connectors.command("cursors")
@click.option("--workspace", help="Only this workspace.")
@click.option("--state-url", help="SQLAlchemy URL of the cursor database (default: settings).")
@click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file.")
def list_cursors(workspace: str | None, state_url: str | None, config: str | None) -> None:
    """Where each connector stream will resume."""
    settings = _settings(config)
    with _store(settings, state_url) as store:
        entries = asyncio.run(store.entries(workspace))
    if not entries:
        click.echo("No sync has stored a cursor yet.")
        return
    table = Table("Workspace", "Connector", "Stream", "Cursor", "Saved at", title="Sync cursors")
    for entry in entries:
        shown = entry.cursor or "(end of a full pull)"
        if len(shown) > 60:
            shown = shown[:57] + "…"
        table.add_row(
            entry.key.workspace,
            entry.key.connector,
            entry.key.stream,
            shown,
            entry.updated_at.isoformat(timespec="seconds"),
        )
    Console().print(table)


@connectors.command("reset")
@click.argument("name")
@click.option("--stream", required=True)
@click.option("--workspace", required=True)
@click.option("--state-url", help="SQLAlchemy URL of the cursor database (default: settings).")
@click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file.")
def reset(
    name: str, stream: str, workspace: str, state_url: str | None, config: str | None
) -> None:
    """Forget a stream's cursor: its next sync pulls everything again."""
    settings = _settings(config)
    with _store(settings, state_url) as store:
        cleared = asyncio.run(store.clear(CursorKey(_workspace(workspace), name, stream)))
    outcome = "cursor forgotten" if cleared else "no cursor was stored"
    click.echo(f"{name}/{stream} of {workspace}: {outcome}")
