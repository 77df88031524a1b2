"""`mailwright demo`: start the platform embedded and show it working on a demo workspace.

It runs every service in this process (SQLite, in-memory bus), sends sample events through
the public gRPC API, prints what the platform made of them, then keeps serving until
Ctrl-C (`--once` exits instead).
"""

from __future__ import annotations

import asyncio
import signal

import click
import grpc
from google.protobuf import struct_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.errors import MailwrightError
from mailwright.ingest.v1 import ingest_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.clients import Clients
from mailwright.runtime.commands import common_options, print_banner, settings_from_options
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import SERVICE_NAMES
from mailwright.runtime.telemetry import configure_logging

WORKSPACE = "demo"
PARENT = f"workspaces/{WORKSPACE}"


def _struct(values: dict[str, str]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


async def sample_slice(clients: Clients) -> profile_pb2.Profile:
    """An anonymous visitor browses, then identifies: one profile holds it all."""
    await clients.ingest.Page(
        ingest_pb2.PageRequest(
            parent=PARENT, event=event_pb2.Event(name="Home", anonymous_id="demo-anon-1")
        )
    )
    await clients.ingest.Track(
        ingest_pb2.TrackRequest(
            parent=PARENT,
            event=event_pb2.Event(
                event="Product Viewed",
                anonymous_id="demo-anon-1",
                properties=_struct({"product_id": "sku-1", "category": "shoes"}),
            ),
        )
    )
    await clients.ingest.Identify(
        ingest_pb2.IdentifyRequest(
            parent=PARENT,
            event=event_pb2.Event(
                user_id="demo-user-1",
                anonymous_id="demo-anon-1",
                traits=_struct({"first_name": "Ada", "email": "ada@example.com"}),
            ),
        )
    )
    lookup = profile_pb2.LookupProfileRequest(
        parent=PARENT, identity=common_pb2.Identity(type="user_id", value="demo-user-1")
    )
    for _ in range(100):
        try:
            reply = await clients.profile.LookupProfile(lookup)
        except grpc.aio.AioRpcError as error:
            # NOT_FOUND until the consumer has applied the events (it is asynchronous).
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        else:
            if reply.profile.traits.fields.get("first_name"):
                return reply.profile
        await asyncio.sleep(0.05)
    raise click.ClickException("the sample events never reached the profile service")


def report(profile: profile_pb2.Profile) -> None:
    identities = ", ".join(f"{i.identity.type}={i.identity.value}" for i in profile.identities)
    click.echo(f"profile    {profile.name}", err=True)
    click.echo(f"identities {identities}", err=True)
    click.echo(f"traits     {dict(profile.traits)}", err=True)


async def _demo(platform: Platform, once: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with platform:
        clients = platform.clients()
        try:
            report(await sample_slice(clients))
        finally:
            await clients.close()
        print_banner(platform, WORKSPACE)
        if not once:
            click.echo("serving; Ctrl-C to stop", err=True)
            await stop.wait()


@click.command()
@click.option("--once", is_flag=True, help="Run the demo and exit instead of serving.")
@common_options
def demo(
    once: bool,
    config: str | None,
    grpc_port: int | None,
    http_port: int | None,
    data_dir: str | None,
) -> None:
    """Start Mailwright embedded and run the demo workspace through it."""
    settings = settings_from_options(
        config, grpc_port=grpc_port, http_port=http_port, data_dir=data_dir
    )
    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    platform = Platform(settings, resolve_services(list(SERVICE_NAMES)))
    try:
        asyncio.run(_demo(platform, once))
    except MailwrightError as error:
        raise click.ClickException(error.message) from error
