"""`mailwright files export`: profiles, events and sends as Parquet for the warehouse.

    mailwright files export --out /data/mailwright --since 2026-03-01 --workspace acme \\
        [--until 2026-03-02] [--only events] [--token …] [--profile-address …]

Imports are the connector's source: `mailwright connectors sync files --stream customers`.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import click
import grpc
from rich.console import Console

from mailwright.names import WORKSPACE_ID
from mailwright.runtime.clients import Clients
from mailwright.runtime.settings import Settings, SettingsError, load_settings
from mailwright.runtime.telemetry import configure_logging
from mailwright_files.export import DATASETS, Exporter, ExportResult

TOKEN_VARIABLE = "MAILWRIGHT_TOKEN"  # noqa: S105 (the variable's name)


def moment(value: str, option: str) -> datetime:
    """A date (`2026-03-01`, midnight UTC) or an ISO 8601 time; naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), time())
        except ValueError:
            raise click.BadParameter(
                f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 time", param_hint=option
            ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.group()
def files() -> None:
    """Files connector tools: export to Parquet (imports: `connectors sync files`)."""


@files.command("export")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--since", required=True, help="Start of the window: a date or ISO 8601 time.")
@click.option("--until", help="End of the window (exclusive); default: now.")
@click.option("--workspace", required=True)
@click.option("--only", multiple=True, type=click.Choice(sorted(DATASETS)), help="Datasets.")
@click.option("--token", envvar=TOKEN_VARIABLE, help="profiles:read and sends:read token.")
@click.option("--profile-address", help="Profile service address (default: settings).")
@click.option("--delivery-address", help="Delivery service address (default: settings).")
@click.option("--page-size", default=500, type=click.IntRange(1, 1000))
@click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file.")
def export(
    out: Path,
    since: str,
    until: str | None,
    workspace: str,
    only: tuple[str, ...],
    token: str | None,
    profile_address: str | None,
    delivery_address: str | None,
    page_size: int,
    config: str | None,
) -> None:
    """Write profiles, events and sends of a window as date-partitioned Parquet under OUT."""
    if not WORKSPACE_ID.match(workspace):
        raise click.BadParameter(f"{workspace!r} is not a workspace id", param_hint="--workspace")
    if not token:
        raise click.UsageError(f"--token or ${TOKEN_VARIABLE} is required")
    start = moment(since, "--since")
    end = moment(until, "--until") if until else datetime.now(UTC) + timedelta(seconds=1)
    if start >= end:
        raise click.BadParameter("must be before --until", param_hint="--since")
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(f"bad setting: {error}") from error
    if not logging.getLogger().handlers:
        configure_logging("WARNING", settings.log_format)
    addresses = dict(settings.addresses)
    if profile_address:
        addresses["profile"] = profile_address
    if delivery_address:
        addresses["delivery"] = delivery_address
    settings = settings.model_copy(update={"addresses": addresses})
    console = Console(stderr=True)
    result = asyncio.run(
        _export(
            settings, token, workspace, out, start, end, only or tuple(DATASETS), page_size, console
        )
    )
    for dataset, count in result.counts.items():
        console.print(f"{dataset}: {count} rows")
    console.print(f"{len(result.files)} files under {out}")


async def _export(
    settings: Settings,
    token: str,
    workspace: str,
    out: Path,
    since: datetime,
    until: datetime,
    datasets: tuple[str, ...],
    page_size: int,
    console: Console,
) -> ExportResult:
    clients = Clients(settings, token)
    exporter = Exporter(
        profiles=clients.profile,
        delivery=clients.delivery,
        workspace=workspace,
        out=out,
        since=since,
        until=until,
        page_size=page_size,
    )
    try:
        with console.status("exporting") as status:
            return await exporter.run(
                datasets, lambda name, count: status.update(f"{name}: {count} rows")
            )
    except grpc.aio.AioRpcError as error:
        raise click.ClickException(_explain(error)) from error
    finally:
        await clients.close()


def _explain(error: grpc.aio.AioRpcError) -> str:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"the service does not offer this listing yet ({details})"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"the token was refused ({details}); pass --token or set {TOKEN_VARIABLE}"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"the token may not read this workspace ({details}); needs profiles:read, sends:read"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"Mailwright is unreachable ({details}); files already written are complete"
    return f"Mailwright answered {code.name}: {details}"
