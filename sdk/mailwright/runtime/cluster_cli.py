"""`mailwright cluster`: every service in its own process on PostgreSQL and Redis."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import click
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from mailwright.runtime.auth import TokenAuthority, load_or_create_secret
from mailwright.runtime.cluster import LocalCluster


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of `url` if it does not exist yet."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql" or not parsed.database:
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": parsed.database},
            ).first()
            if exists is None:
                conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    except sa.exc.OperationalError as error:
        raise click.ClickException(
            f"PostgreSQL unreachable at {parsed.host}: {error.orig}"
        ) from error
    finally:
        admin.dispose()


@click.command()
@click.option(
    "--database-url",
    default="postgresql+psycopg://postgres@127.0.0.1:5432/mailwright",
    show_default=True,
    help="PostgreSQL database shared by the services (created if missing).",
)
@click.option("--redis-url", default="redis://127.0.0.1:6379/0", show_default=True)
@click.option("--data-dir", default=".mailwright/cluster", show_default=True)
@click.option("--namespace", default="mailwright-dev", show_default=True)
def cluster(database_url: str, redis_url: str, data_dir: str, namespace: str) -> None:
    """Run each service as its own process, talking gRPC over the network."""
    ensure_database(database_url)
    directory = Path(data_dir)
    secret = load_or_create_secret("", directory)
    local = LocalCluster(
        database_url=database_url,
        redis_url=redis_url,
        data_dir=directory,
        namespace=namespace,
        auth_secret=secret,
    )
    click.echo("starting ingest, profile, segment, render, delivery …", err=True)
    local.start()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    token = TokenAuthority(secret).issue("demo", ["*"], subject="development")
    for name, port in local.grpc_ports.items():
        click.echo(f"{name:<9} 127.0.0.1:{port}", err=True)
    click.echo(f"HTTP edge http://127.0.0.1:{local.http_port}", err=True)
    click.echo(f"logs      {directory.resolve()}/<service>.log", err=True)
    click.echo(f"token     {token}", err=True)
    click.echo("serving; Ctrl-C to stop", err=True)
    try:
        stop.wait()
    finally:
        local.stop()
