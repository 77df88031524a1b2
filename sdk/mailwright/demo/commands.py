"""`mailwright demo`: the platform embedded, doing its whole job on a demo shop.

It starts every service in this process (SQLite, in-memory bus) beside a local SMTP sink,
then, through the public gRPC APIs and the HTTP edge only: applies the default taxonomy,
loads a year of a generated shop's history (`generate.py`), creates the case-study
segments, templates, journeys and an A/B-tested campaign with a holdout, sends it through
the SMTP plugin into `.eml` files, lets simulated readers open and click the tracked
links, prints a report, and keeps serving until Ctrl-C (`--once` exits instead).

The demo's databases live in `DATA_DIR/demo/` and are made afresh on every run, so a run
always tells the same story.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from mailwright.errors import MailwrightError
from mailwright.runtime.commands import common_options, print_banner, settings_from_options
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import SERVICE_NAMES, Settings
from mailwright.runtime.telemetry import configure_logging

from . import report
from .generate import DemoShop, generate
from .steps import Demo
from .workspace import WORKSPACE

T = TypeVar("T")
DEFAULT_CUSTOMERS = 10_000
DEFAULT_SEED = 2026


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def demo_settings(base: Settings, outbox: Path, sink_port: int) -> Settings:
    """The demo's own data directory, an HTTP port recipients can reach, and the SMTP
    plugin pointed at the sink."""
    http_port = base.http_port or _free_port(base.http_host)
    connectors = dict(base.connectors)
    connectors["smtp"] = {
        "host": "127.0.0.1",
        "port": sink_port,
        "security": "none",
        "rate_per_second": 2000,
        "burst": 500,
        "pool_size": 4,
    }
    services = dict(base.services)
    delivery = dict(services.get("delivery", {}))
    delivery.setdefault("poll_interval", "100ms")
    delivery.setdefault("batch_size", 500)
    services["delivery"] = delivery
    services["segment"] = {"timer_poll": "100ms", **services.get("segment", {})}
    return base.model_copy(
        update={
            "data_dir": base.data_dir / "demo",
            "http_port": http_port,
            "connectors": connectors,
            "services": services,
        }
    )


def _reset(data_dir: Path, outbox: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    for old in outbox.glob("*.eml"):
        old.unlink()


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) before the demo had finished setting up."""


async def _unless_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """`work`'s result, or `Interrupted` (with `work` cancelled) once `stop` is set."""
    task = asyncio.create_task(work)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted
    return task.result()


async def _demo(
    settings: Settings,
    shop: DemoShop,
    outbox: Path,
    once: bool,
    console: Console,
    report_file: Path | None,
) -> report.DemoReport:
    from mailwright_smtp.sink import SmtpSink

    config_dir = settings.data_dir / "demo"
    _reset(config_dir, outbox)
    sink = await SmtpSink(outbox).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    config = demo_settings(settings, outbox, sink.port)
    platform = Platform(config, resolve_services(list(SERVICE_NAMES)))
    try:
        async with platform:
            run = Demo(platform, shop, outbox, console)
            try:
                found = await _unless_stopped(run.run(), stop)
            finally:
                await run.close()
            if report_file is not None:
                text = json.dumps(found.as_json(), indent=2) + "\n"
                await asyncio.to_thread(report_file.write_text, text, "utf-8")
            print_banner(platform, WORKSPACE)
            click.echo(f"SMTP sink  127.0.0.1:{sink.port}", err=True)
            click.echo(f"outbox     {outbox}", err=True)
            if not once:
                click.echo("serving; Ctrl-C to stop", err=True)
                await stop.wait()
            return found
    finally:
        await sink.stop()


def run_demo(
    settings: Settings,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = DEFAULT_SEED,
    outbox: Path | None = None,
    once: bool = True,
    console: Console | None = None,
    report_file: Path | None = None,
) -> report.DemoReport:
    """Run the demo (in this process); returns its report."""
    shop = generate(customers, seed)
    target = (outbox if outbox is not None else settings.data_dir / "outbox").absolute()
    console = console or Console(stderr=True)
    return asyncio.run(_demo(settings, shop, target, once, console, report_file))


@click.command()
@click.option("--once", is_flag=True, help="Run the demo and exit instead of serving.")
@click.option(
    "--customers",
    type=click.IntRange(1, 1_000_000),
    default=DEFAULT_CUSTOMERS,
    show_default=True,
    help="Customers of the generated shop.",
)
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the generator."
)
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the SMTP sink writes .eml files (default: DATA_DIR/outbox).",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report's figures to this file as JSON.",
)
@common_options
def demo(
    once: bool,
    customers: int,
    seed: int,
    outbox: Path | None,
    report_file: Path | None,
    config: str | None,
    grpc_port: int | None,
    http_port: int | None,
    data_dir: str | None,
) -> None:
    """Start Mailwright embedded and run the demo shop through it."""
    settings = settings_from_options(
        config, grpc_port=grpc_port, http_port=http_port, data_dir=data_dir
    )
    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    try:
        run_demo(
            settings,
            customers=customers,
            seed=seed,
            outbox=outbox,
            once=once,
            report_file=report_file,
        )
    except Interrupted:
        click.echo("stopped before the demo was ready", err=True)
        raise click.exceptions.Exit(130) from None
    except MailwrightError as error:
        raise click.ClickException(error.message) from error
