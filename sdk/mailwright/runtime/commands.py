"""`mailwright serve`, `mailwright up` and `mailwright tokens`: the platform commands."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from mailwright.errors import MailwrightError
from mailwright.runtime.auth import SCOPES, TokenAuthority, load_or_create_secret
from mailwright.runtime.server import Platform
from mailwright.runtime.service import UnknownService, resolve_services, service_definitions
from mailwright.runtime.settings import SERVICE_NAMES, Settings, SettingsError, load_settings
from mailwright.runtime.telemetry import configure_logging


def settings_from_options(config: str | None, **overrides: Any) -> Settings:
    """Settings with command-line overrides; a bad setting exits with a one-line error."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return load_settings(config, **given)
    except SettingsError as error:
        raise click.ClickException(f"bad setting: {error}") from error


def common_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file."),
            click.option("--grpc-port", type=int, help="gRPC port (MAILWRIGHT_GRPC_PORT)."),
            click.option("--http-port", type=int, help="HTTP edge port (MAILWRIGHT_HTTP_PORT)."),
            click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory."),
        ]
    ):
        function = option(function)
    return function


async def run_until_signalled(platform: Platform, on_ready: Any = None) -> None:
    """Start the platform, wait for SIGINT or SIGTERM, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await platform.start()
        if on_ready is not None:
            await on_ready(platform)
        await stop.wait()
        click.echo("shutting down (draining in-flight work)…", err=True)
    finally:
        await platform.stop()


def _run(services: Sequence[str], settings: Settings, banner: bool) -> None:
    configure_logging(settings.log_level, settings.log_format)
    try:
        definitions = resolve_services(services)
    except UnknownService as error:
        raise click.ClickException(str(error)) from error
    platform = Platform(settings, definitions)

    async def ready(p: Platform) -> None:
        if banner:
            print_banner(p)

    try:
        asyncio.run(run_until_signalled(platform, ready))
    except MailwrightError as error:
        raise click.ClickException(error.message) from error


def print_banner(platform: Platform, workspace: str = "demo") -> None:
    runtime = platform.runtime
    assert runtime is not None
    token = runtime.authority.issue(workspace, ["*"], subject="development")
    settings = platform.settings
    host = settings.grpc_host if settings.grpc_host not in ("0.0.0.0", "[::]") else "127.0.0.1"  # noqa: S104
    served = ", ".join(d.name for d in platform.definitions)
    lines = [
        f"gRPC       {host}:{platform.grpc_port}  ({served})",
        f"HTTP edge  {settings.effective_public_base_url if platform.http_port else '(none)'}",
        f"data       {settings.data_dir.resolve()}",
        f"workspace  {workspace}",
        f"token      {token}",
    ]
    click.echo("\n".join(lines), err=True)


@click.command()
@click.argument("service")
@common_options
def serve(
    service: str,
    config: str | None,
    grpc_port: int | None,
    http_port: int | None,
    data_dir: str | None,
) -> None:
    """Run one service (ingest, profile, segment, render or delivery)."""
    if service not in SERVICE_NAMES and service not in service_definitions():
        raise click.ClickException(
            f"unknown service {service!r} (known: {', '.join(SERVICE_NAMES)})"
        )
    settings = settings_from_options(
        config, grpc_port=grpc_port, http_port=http_port, data_dir=data_dir
    )
    _run([service], settings, banner=False)


@click.command()
@common_options
def up(
    config: str | None, grpc_port: int | None, http_port: int | None, data_dir: str | None
) -> None:
    """Run all five services in one process on one port, plus the HTTP edge."""
    settings = settings_from_options(
        config, grpc_port=grpc_port, http_port=http_port, data_dir=data_dir
    )
    _run(list(SERVICE_NAMES), settings, banner=True)


@click.group()
def tokens() -> None:
    """Issue bearer tokens."""


@tokens.command("create")
@click.option("--workspace", required=True, help="Workspace id, or * for every workspace.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    default=["*"],
    show_default=True,
    help=f"Repeatable. One of: {', '.join(SCOPES)}; family:* or *.",
)
@click.option("--subject", default="cli", show_default=True, help="Who the token is for.")
@click.option("--ttl", type=int, default=None, help="Lifetime in seconds (default: none).")
@click.option("--config", type=click.Path(dir_okay=False))
def create_token(
    workspace: str, scopes: tuple[str, ...], subject: str, ttl: int | None, config: str | None
) -> None:
    """Print a new token signed with this deployment's auth secret."""
    settings = settings_from_options(config)
    secret = load_or_create_secret(settings.auth_secret, Path(settings.data_dir))
    try:
        token = TokenAuthority(secret).issue(workspace, scopes, subject=subject, ttl_seconds=ttl)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(token)


if __name__ == "__main__":
    sys.exit(serve())
