"""`mailwright campaigns …`, `mailwright journeys …`, `mailwright sends …`: delivery from
the command line, through the gRPC API of a running deployment.

    mailwright campaigns create -f campaign.yaml
    mailwright campaigns send spring-sale          # schedules now, follows with a bar
    mailwright campaigns report spring-sale --chart report.png
    mailwright journeys apply -f cart-abandonment.yaml --activate
    mailwright sends retry --campaign spring-sale

`--address` (MAILWRIGHT_ADDRESS, default 127.0.0.1:50051), `--token` (MAILWRIGHT_TOKEN)
and `--workspace` (MAILWRIGHT_WORKSPACE) say where and as whom.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

import click
import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.delivery.v1 import delivery_pb2_grpc
from mailwright.errors import InvalidArgument
from mailwright.runtime.clients import open_channel
from mailwright.runtime.settings import Settings
from mailwright_delivery import charts, yamlfile

FINISHED = {pb.CAMPAIGN_STATE_SENT, pb.CAMPAIGN_STATE_CANCELLED}
STATE_NAMES = {v: k.removeprefix("CAMPAIGN_STATE_").lower() for k, v in pb.CampaignState.items()}


@dataclass(frozen=True)
class Target:
    address: str
    token: str
    workspace: str

    @property
    def parent(self) -> str:
        return f"workspaces/{self.workspace}"

    def name(self, collection: str, ident: str) -> str:
        return ident if ident.startswith("workspaces/") else f"{self.parent}/{collection}/{ident}"


def connection(function: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Adds --address/--token/--workspace, opens the stub, runs the coroutine, and turns
    gRPC errors into one clear line."""

    @click.option(
        "--address",
        envvar="MAILWRIGHT_ADDRESS",
        default="127.0.0.1:50051",
        show_default=True,
        help="gRPC address of delivery (MAILWRIGHT_ADDRESS).",
    )
    @click.option(
        "--token", envvar="MAILWRIGHT_TOKEN", default="", help="Bearer token (MAILWRIGHT_TOKEN)."
    )
    @click.option(
        "--workspace",
        envvar="MAILWRIGHT_WORKSPACE",
        default="demo",
        show_default=True,
        help="Workspace id (MAILWRIGHT_WORKSPACE).",
    )
    @wraps(function)
    def wrapper(address: str, token: str, workspace: str, **kwargs: Any) -> None:
        if not token:
            raise click.ClickException("no token: pass --token or set MAILWRIGHT_TOKEN")
        target = Target(address, token, workspace)

        async def run() -> None:
            channel = open_channel(address, token, Settings())
            try:
                stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
                await function(stub, target, **kwargs)
            finally:
                await channel.close()

        try:
            asyncio.run(run())
        except grpc.aio.AioRpcError as error:
            raise click.ClickException(f"{error.code().name}: {error.details()}") from None
        except InvalidArgument as error:
            raise click.ClickException(error.message) from None

    return wrapper


Stub = Any

file_option = click.option(
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The YAML file.",
)


@click.group()
def campaigns() -> None:
    """Create, send and report on campaigns."""


@campaigns.command("create")
@file_option
@connection
async def create_campaign(stub: Stub, target: Target, path: Path) -> None:
    """Create a campaign from a YAML file (its `id` names it)."""
    ident, campaign = yamlfile.load(path, pb.Campaign)
    if not ident:
        raise click.ClickException(f"{path}: give the campaign an `id`")
    response = await stub.CreateCampaign(
        pb.CreateCampaignRequest(
            parent=target.parent, campaign_id=ident, campaign=campaign, request_id=uuid.uuid4().hex
        )
    )
    click.echo(f"created {response.campaign.name} ({STATE_NAMES[response.campaign.state]})")


@campaigns.command("send")
@click.argument("campaign")
@click.option("--no-follow", is_flag=True, help="Schedule and return at once.")
@connection
async def send_campaign(stub: Stub, target: Target, campaign: str, no_follow: bool) -> None:
    """Send CAMPAIGN now and follow its progress."""
    name = target.name("campaigns", campaign)
    current = (await stub.GetCampaign(pb.GetCampaignRequest(name=name))).campaign
    if current.state == pb.CAMPAIGN_STATE_DRAFT:
        await stub.ScheduleCampaign(
            pb.ScheduleCampaignRequest(
                name=name, schedule=pb.Schedule(now=True), request_id=uuid.uuid4().hex
            )
        )
    if no_follow:
        click.echo(f"{name} scheduled")
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=None)
        while True:
            current = (await stub.GetCampaign(pb.GetCampaignRequest(name=name))).campaign
            total = current.progress.total or None
            progress.update(
                task,
                description=STATE_NAMES[current.state],
                completed=current.progress.done,
                total=total,
            )
            if current.state in FINISHED or current.state == pb.CAMPAIGN_STATE_PAUSED:
                break
            await asyncio.sleep(0.5)
    click.echo(
        f"{name}: {STATE_NAMES[current.state]}, {current.progress.done} of "
        f"{current.progress.total} sends done"
    )


@campaigns.command("report")
@click.argument("campaign")
@click.option("--by-segment", is_flag=True, help="A row per audience segment too.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a chart: .png, or .html with the table.",
)
@connection
async def report_campaign(
    stub: Stub, target: Target, campaign: str, by_segment: bool, chart: Path | None
) -> None:
    """Print CAMPAIGN's report and write its chart."""
    name = target.name("campaigns", campaign)
    report = (
        await stub.GetCampaignReport(pb.GetCampaignReportRequest(name=name, by_segment=by_segment))
    ).report
    console = Console()
    table = Table(title=f"{name}" + (f" — winner {report.winner}" if report.winner else ""))
    for column in (
        "row",
        "audience",
        "sent",
        "delivered",
        "opens",
        "machine",
        "clicks",
        "CTO",
        "conv.",
        "revenue",
        "unsubs",
        "bounces",
        "complaints",
        "skipped",
    ):
        table.add_column(column, justify="left" if column == "row" else "right")
    for row in report.rows:
        table.add_row(
            row.dimension,
            str(row.audience),
            str(row.sent),
            str(row.delivered),
            f"{row.unique_opens} ({100 * row.open_rate:.1f}%)",
            str(row.machine_opens),
            f"{row.unique_clicks} ({100 * row.click_rate:.1f}%)",
            f"{100 * row.click_to_open:.1f}%",
            str(row.conversions),
            f"{row.revenue.amount} {row.revenue.currency_code}".strip(),
            str(row.unsubscribes),
            str(row.bounces),
            str(row.complaints),
            str(row.skipped),
        )
    console.print(table)
    for comparison in report.comparisons:
        metric = pb.Metric.Name(comparison.metric).removeprefix("METRIC_").lower()
        low, high = comparison.confidence_interval.low, comparison.confidence_interval.high
        console.print(
            f"{comparison.left} vs {comparison.right} ({metric}): "
            f"{comparison.difference:+.4f} [{low:+.4f}, {high:+.4f}], p={comparison.p_value:.4f}, "
            f"lift {100 * comparison.lift:+.1f}%"
        )
    if chart is not None:
        charts.write(report, name, chart)
        click.echo(f"chart written to {chart}")


@click.group()
def journeys() -> None:
    """Create and update journeys from files."""


@journeys.command("apply")
@file_option
@click.option("--activate", is_flag=True, help="Activate it after saving.")
@connection
async def apply_journey(stub: Stub, target: Target, path: Path, activate: bool) -> None:
    """Create the journey in the file, or save it as a new version."""
    ident, journey = yamlfile.load(path, pb.Journey)
    if not ident:
        raise click.ClickException(f"{path}: give the journey an `id`")
    name = target.name("journeys", ident)
    try:
        await stub.GetJourney(pb.GetJourneyRequest(name=name))
        exists = True
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        exists = False
    if exists:
        journey.name = name
        saved = (
            await stub.UpdateJourney(
                pb.UpdateJourneyRequest(journey=journey, request_id=uuid.uuid4().hex)
            )
        ).journey
    else:
        saved = (
            await stub.CreateJourney(
                pb.CreateJourneyRequest(
                    parent=target.parent,
                    journey_id=ident,
                    journey=journey,
                    request_id=uuid.uuid4().hex,
                )
            )
        ).journey
    if activate:
        saved = (
            await stub.ActivateJourney(
                pb.ActivateJourneyRequest(name=saved.name, request_id=uuid.uuid4().hex)
            )
        ).journey
    state = pb.JourneyState.Name(saved.state).removeprefix("JOURNEY_STATE_").lower()
    click.echo(f"{saved.name} version {saved.version} ({state})")


@click.group()
def sends() -> None:
    """Inspect and retry sends."""


@sends.command("retry")
@click.argument("send_ids", nargs=-1)
@click.option("--campaign", default="", help="Every parked send of this campaign.")
@connection
async def retry_sends(stub: Stub, target: Target, send_ids: tuple[str, ...], campaign: str) -> None:
    """Put parked sends back in the queue: the SEND_IDS given, or every parked send (of
    --campaign, when given)."""
    request = pb.RetrySendsRequest(
        parent=target.parent,
        sends=[target.name("sends", s) for s in send_ids],
        all_parked=not send_ids,
        campaign=target.name("campaigns", campaign) if campaign else "",
        request_id=uuid.uuid4().hex,
    )
    response = await stub.RetrySends(request)
    click.echo(f"{response.requeued_count} parked sends requeued")
