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
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from mailwright.common.v1 import event_pb2
from mailwright.errors import MailwrightError
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.commands import common_options, print_banner, settings_from_options
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import SERVICE_NAMES, Settings
from mailwright.runtime.telemetry import configure_logging

from . import engagement, load, report, workspace
from .generate import DemoShop, generate
from .workspace import PARENT, WORKSPACE

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
    # Bigger reads let the profile consumer apply a loaded history in fewer transactions.
    services["profile"] = {"read_batch": 500, "max_batch": 1000, **services.get("profile", {})}
    services["segment"] = {"timer_poll": "100ms", **services.get("segment", {})}
    return base.model_copy(
        update={
            "data_dir": base.data_dir / "demo",
            "http_port": http_port,
            "connectors": connectors,
            "services": services,
        }
    )


def _progress(console: Console, *extra: Any) -> Progress:
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra,
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class Demo:
    """One run of the demo on a started platform."""

    def __init__(self, platform: Platform, shop: DemoShop, outbox: Path, console: Console) -> None:
        self.platform = platform
        self.shop = shop
        self.outbox = outbox
        self.console = console
        self.clients = platform.clients()
        assert platform.runtime is not None
        self.bus = platform.runtime.bus

    async def run(self) -> report.DemoReport:
        console, clients = self.console, self.clients
        definitions = await workspace.prepare_ingest(clients)
        console.print(f"taxonomy: {definitions} event definitions applied to {PARENT}")
        suppressed = await workspace.suppress(clients, self.shop.customers)
        console.print(f"suppressions: {suppressed} earlier unsubscribes")
        await self._load()
        segments = await self._segments()
        # Sizes before the campaign: its sends, opens and clicks move people between
        # engagement segments afterwards.
        sizes = await workspace.segment_sizes(clients, segments)
        templates = await workspace.publish_templates(clients)
        console.print(f"templates: {', '.join(t.rsplit('/', 1)[-1] for t in templates)}")
        journeys = await workspace.create_journeys(clients)
        console.print(f"journeys: {', '.join(j.rsplit('/', 1)[-1] for j in journeys)} (active)")
        campaign = await self._campaign()
        await self._drain("email events")
        chosen = await self._engage(campaign.name)
        await self._live_shoppers()
        found = await report.gather(
            clients,
            segments=sizes,
            campaign=campaign.name,
            journeys=journeys,
            messages=chosen.messages,
        )
        report.show(console, found)
        return found

    async def _load(self) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.monotonic()
        with _progress(self.console, TextColumn("{task.fields[events]:>9,} events")) as bar:
            task = bar.add_task("loading history", total=len(self.shop.customers), events=0)
            sent = 0

            def advance(customers: int, events: int) -> None:
                nonlocal sent
                sent += events
                bar.update(task, advance=customers, events=sent)

            counts = await load.ingest(self.clients, PARENT, load.batches(self.shop, now), advance)
        took = time.monotonic() - started
        self.console.print(
            f"ingest: {counts.accepted:,} accepted, {counts.duplicate:,} duplicate,"
            f" {counts.rejected:,} rejected in {took:.0f} s ({counts.sent / took:,.0f} events/s)"
        )
        if counts.rejected:
            self.console.print(f"[yellow]first rejection:[/] {counts.first_rejection}")
        await self._drain("profiles and segments")
        took = time.monotonic() - started
        rate = counts.accepted / max(took, 1e-3)
        self.console.print(
            f"profiles and segments up to date {took:.0f} s after the first event"
            f" ({rate:,.0f} events/s end to end; the profile consumer sets the pace)"
        )

    async def _drain(self, what: str) -> None:
        first = await load.backlog(self.bus)
        with _progress(self.console) as bar:
            task = bar.add_task(f"digesting {what}", total=max(first, 1))

            def advance(left: int) -> None:
                total = max(bar.tasks[0].total or 0, left)
                bar.update(task, total=total, completed=total - left)

            await load.wait_for_consumers(self.bus, advance)

    async def _segments(self) -> list[str]:
        with _progress(self.console) as bar:
            task = bar.add_task("computing segments", total=len(workspace.segment_library()))

            def advance(name: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"segment {name}")

            names = await workspace.create_segments(self.clients, advance)
        await self._drain("segment changes")
        return names

    async def _campaign(self) -> workspace.CampaignRun:
        with _progress(self.console) as bar:
            task = bar.add_task("sending weekend-sale", total=None)

            def advance(_: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total or None)

            return await workspace.send_campaign(self.clients, advance)

    async def _engage(self, campaign: str) -> engagement.Engagement:
        edge = self.platform.settings.effective_public_base_url
        messages = engagement.outbox_messages(self.outbox, edge)
        chosen = engagement.choose(self.shop.seed, messages)
        with _progress(self.console) as bar:
            task = bar.add_task(
                "readers open and click", total=len(chosen.opened) + len(chosen.clicked)
            )
            await engagement.engage(chosen, lambda: bar.advance(task))
        await self._orders(chosen.buyers)
        await self._await_engagement(campaign, len(chosen.opened), len(chosen.clicked))
        return chosen

    async def _orders(self, buyers: list[str]) -> None:
        """Some clickers buy what they clicked: an order now, attributed to the email."""
        by_email = {c.email: c for c in self.shop.customers}
        products = self.shop.products
        events = []
        for n, address in enumerate(sorted(buyers)):
            customer = by_email.get(address)
            if customer is None:
                continue
            product = products[n % len(products)]
            event = event_pb2.Event(
                type=event_pb2.EVENT_TYPE_TRACK,
                event="Order Completed",
                user_id=customer.user_id,
                message_id=f"demo-sale-order-{customer.user_id}",
            )
            event.timestamp.FromDatetime(datetime.now(UTC))
            event.properties.update(
                {
                    "order_id": f"sale-{customer.user_id}",
                    "revenue": str(product.price),
                    "currency": "EUR",
                    "products": [{"product_id": product.product_id, "quantity": 1}],
                }
            )
            events.append(event)
        if events:
            await self.clients.ingest.IngestBatch(
                ingest_pb2.IngestBatchRequest(parent=PARENT, events=events)
            )

    async def _await_engagement(self, campaign: str, opens: int, clicks: int) -> None:
        """Until delivery has counted every simulated open and click (or 60 s passed)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            total, _, _ = await report.campaign_rows(self.clients, campaign)
            if total.opens >= opens and total.clicks >= clicks:
                break
            await asyncio.sleep(0.25)
        await self._drain("opens, clicks and orders")

    async def _live_shoppers(self) -> None:
        """Shoppers on the site right now, through the HTTP edge with a write key: their
        checkouts enter the cart-abandonment journey (its first wait is an hour)."""
        key = await self.clients.ingest.CreateWriteKey(
            ingest_pb2.CreateWriteKeyRequest(
                parent=PARENT, display_name="demo website", request_id="demo-write-key"
            )
        )
        shoppers = engagement.live_shoppers(self.shop.customers)
        body = engagement.checkout_batch(shoppers, self.shop.products)
        edge = self.platform.settings.effective_public_base_url
        answer = await engagement.post_batch(edge, key.write_key.key, body)
        self.console.print(
            f"HTTP edge: {len(shoppers)} shoppers started a checkout"
            f" ({answer.get('accepted', 0)} events accepted)"
        )
        await self._drain("live checkouts")

    async def close(self) -> None:
        await self.clients.close()


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
