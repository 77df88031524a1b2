"""`mailwright audiences …`: audience destinations (segments kept in step with a
provider's audience) through the gRPC API of a running deployment.

    mailwright audiences apply -f newsletter.yaml     # create, or update in place
    mailwright audiences list
    mailwright audiences resync newsletter            # full resync, follows with a bar
    mailwright audiences status newsletter
    mailwright audiences delete newsletter

A destination file is the `AudienceDestination` message in YAML, with an `id`:

    id: newsletter
    connector: mailchimp
    segments: [{segment: vip, audience_name: VIP}]
    traits: [first_name, last_name]
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import click
import grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright_delivery import yamlfile
from mailwright_delivery.cli import Stub, Target, connection, file_option

COLLECTION = "audienceDestinations"
POLL = 0.5


STATE_NAMES: dict[int, str] = {
    int(value): key.removeprefix("AUDIENCE_DESTINATION_STATE_").lower()
    for key, value in pb.AudienceDestinationState.items()
}


def _state(value: int) -> str:
    return STATE_NAMES.get(value, str(value))


@click.group()
def audiences() -> None:
    """Keep segments in step with providers' audiences (Mailchimp, HubSpot, Salesforce)."""


@audiences.command("apply")
@file_option
@connection
async def apply_destination(stub: Stub, target: Target, path: Path) -> None:
    """Create the destination in the file, or update it (new segments get a resync)."""
    ident, destination = yamlfile.load(path, pb.AudienceDestination)
    if not ident:
        raise click.ClickException(f"{path}: give the destination an `id`")
    name = target.name(COLLECTION, ident)
    try:
        await stub.GetAudienceDestination(pb.GetAudienceDestinationRequest(name=name))
        exists = True
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        exists = False
    if exists:
        destination.name = name
        saved = (
            await stub.UpdateAudienceDestination(
                pb.UpdateAudienceDestinationRequest(
                    audience_destination=destination, request_id=uuid.uuid4().hex
                )
            )
        ).audience_destination
    else:
        saved = (
            await stub.CreateAudienceDestination(
                pb.CreateAudienceDestinationRequest(
                    parent=target.parent,
                    audience_destination_id=ident,
                    audience_destination=destination,
                    request_id=uuid.uuid4().hex,
                )
            )
        ).audience_destination
    segments = ", ".join(s.segment for s in saved.segments)
    click.echo(f"{saved.name} ({_state(saved.state)}): {saved.connector} ← {segments}")


@audiences.command("list")
@connection
async def list_destinations(stub: Stub, target: Target) -> None:
    """The workspace's audience destinations."""
    table = Table("Id", "Connector", "Configuration", "Segments", "State", title="Audiences")
    token = ""
    while True:
        page = await stub.ListAudienceDestinations(
            pb.ListAudienceDestinationsRequest(parent=target.parent, page_token=token)
        )
        for item in page.audience_destinations:
            table.add_row(
                item.name.rsplit("/", 1)[-1],
                item.connector,
                item.connector_config,
                ", ".join(s.segment for s in item.segments),
                _state(item.state),
            )
        token = page.next_page_token
        if not token:
            break
    Console().print(table)


@audiences.command("status")
@click.argument("destination")
@connection
async def show_status(stub: Stub, target: Target, destination: str) -> None:
    """Per segment: members synced, pending, totals, the last error; refused members."""
    name = target.name(COLLECTION, destination)
    status = (await stub.GetAudienceSyncStatus(pb.GetAudienceSyncStatusRequest(name=name))).status
    _print_status(status, Console())


def _print_status(status: pb.AudienceSyncStatus, console: Console) -> None:
    table = Table(
        "Segment",
        "Synced",
        "Pending",
        "Added",
        "Removed",
        "Failed",
        "Resync",
        "Last error",
        title=status.name,
    )
    for item in status.segments:
        resync = (
            f"{item.resync_progress.done}/{item.resync_progress.total}"
            if item.resync_state == pb.RESYNC_STATE_RUNNING
            else "idle"
        )
        table.add_row(
            item.segment,
            str(item.synced_members),
            str(item.pending),
            str(item.added),
            str(item.removed),
            str(item.failed),
            resync,
            item.last_error,
        )
    console.print(table)
    for failure in status.failures:
        console.print(
            f"  {failure.segment}: profile {failure.profile_id} refused ({failure.kind}): "
            f"{failure.detail}",
            style="red",
        )


@audiences.command("resync")
@click.argument("destination")
@click.option("--segment", "segments", multiple=True, help="Only this segment (repeatable).")
@click.option("--no-follow", is_flag=True, help="Start the resync and return at once.")
@connection
async def resync(
    stub: Stub, target: Target, destination: str, segments: tuple[str, ...], no_follow: bool
) -> None:
    """Push every current member of DESTINATION's segments again and remove those who
    left (first-time setup, repair), following its progress."""
    name = target.name(COLLECTION, destination)
    await stub.ResyncAudienceDestination(
        pb.ResyncAudienceDestinationRequest(
            name=name, segments=list(segments), request_id=uuid.uuid4().hex
        )
    )
    if no_follow:
        click.echo(f"{name}: resync started")
        return
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    most_pending = 0
    with Progress(*columns, console=console) as bar:
        read = bar.add_task("members read", total=None, detail="")
        synced = bar.add_task("changes synced", total=None, detail="")
        while True:
            status = (
                await stub.GetAudienceSyncStatus(pb.GetAudienceSyncStatusRequest(name=name))
            ).status
            shown = [s for s in status.segments if not segments or s.segment in segments]
            running = any(s.resync_state == pb.RESYNC_STATE_RUNNING for s in shown)
            total = sum(s.resync_progress.total for s in shown)
            pending = sum(s.pending for s in shown)
            most_pending = max(most_pending, pending)
            errors = {s.last_error for s in shown if s.last_error}
            bar.update(
                read,
                completed=sum(s.resync_progress.done for s in shown),
                total=total or None,
            )
            bar.update(
                synced,
                completed=most_pending - pending,
                total=most_pending or None,
                detail=f"retrying: {sorted(errors)[0]}" if errors else "",
            )
            if not running and pending == 0:
                break
            await asyncio.sleep(POLL)
    _print_status(status, console)


@audiences.command("delete")
@click.argument("destination")
@connection
async def delete_destination(stub: Stub, target: Target, destination: str) -> None:
    """Stop syncing DESTINATION and forget its state (the provider's audience stays)."""
    name = target.name(COLLECTION, destination)
    await stub.DeleteAudienceDestination(
        pb.DeleteAudienceDestinationRequest(name=name, request_id=uuid.uuid4().hex)
    )
    click.echo(f"{name} deleted")
