"""`mailwright migrate`: bring each service's database to its newest schema, then exit.

A release rolls out migrations first and services after: on Kubernetes the migration Job
runs `mailwright migrate`, and each Deployment's init container waits with
`mailwright migrate --check --wait` until its own database is current. Migrations are
written to work with the release before them (expand now, contract a release later), so
the old pods keep serving while the Job runs and during the rollout.

    mailwright migrate                        every installed service that has tables
    mailwright migrate --service profile      only these services (repeatable)
    mailwright migrate --check                change nothing; exit 1 if a database is behind
    mailwright migrate --check --wait 10m     wait until none is behind (init containers)

Each service's database is `MAILWRIGHT_DATABASE_URL` with `{service}` replaced by the
service's name (empty: its SQLite file under the data directory). A database that a newer
release has migrated already (its revision is unknown to this release) is left alone and
counts as current: that is a rollback, and by the rule above the newer schema serves this
release too.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import click
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from mailwright.errors import Unavailable
from mailwright.runtime.db import Database, alembic_config
from mailwright.runtime.service import ServiceDefinition, UnknownService, service_definitions
from mailwright.runtime.settings import (
    SERVICE_NAMES,
    Settings,
    SettingsError,
    load_settings,
    parse_duration,
)


class SchemaStatus(enum.Enum):
    CURRENT = "current"
    BEHIND = "behind"
    NEWER = "newer"
    """Migrated by a newer release: a revision this release's scripts do not know."""


@dataclass(frozen=True)
class SchemaState:
    """Where one service's database stands against the migrations this release ships."""

    service: str
    database: str
    """The database URL with its password hidden."""
    current: str | None
    head: str | None
    status: SchemaStatus

    def describe(self) -> str:
        if self.status is SchemaStatus.CURRENT:
            return f"current at {self.head}"
        if self.status is SchemaStatus.NEWER:
            return (
                f"at {self.current}, which this release does not know (a newer release "
                f"migrated it); left alone"
            )
        return f"behind: at {self.current or '(empty)'}, newest is {self.head}"


@dataclass(frozen=True)
class Migration:
    """What `migrate_service` did to one database."""

    before: SchemaState
    after: SchemaState

    @property
    def changed(self) -> bool:
        return self.before.current != self.after.current


def select_services(
    available: Mapping[str, ServiceDefinition], names: Sequence[str]
) -> list[ServiceDefinition]:
    """The services to migrate, in the order of SERVICE_NAMES; all of them when `names`
    is empty. An unknown name raises UnknownService naming the installed ones."""
    for name in names:
        if name not in available:
            known = ", ".join(sorted(available)) or "none installed"
            raise UnknownService(f"unknown service {name!r} (installed: {known})")
    chosen = [available[name] for name in dict.fromkeys(names)] if names else available.values()
    order = {name: index for index, name in enumerate(SERVICE_NAMES)}
    return sorted(chosen, key=lambda d: (order.get(d.name, len(order)), d.name))


def open_database(settings: Settings, service: str, migrations: Path) -> Database:
    """The service's database, checked reachable (Unavailable, naming it, if not)."""
    database = Database(
        settings.database_url_for(service), service=service, migrations=migrations, workers=1
    )
    try:
        database.check_connection()
    except BaseException:
        database.close()
        raise
    return database


def schema_state(database: Database) -> SchemaState:
    """Compare the database's Alembic revision with the newest of the service's scripts."""
    if database.migrations is None:
        raise ValueError(f"service {database.service!r} has no migrations")
    script = ScriptDirectory.from_config(alembic_config(database.migrations, database.service))
    head = script.get_current_head()
    current = database.current_revision()
    if current == head:
        status = SchemaStatus.CURRENT
    elif current is None or _known(script, current):
        status = SchemaStatus.BEHIND
    else:
        status = SchemaStatus.NEWER
    return SchemaState(
        service=database.service,
        database=make_url(database.url).render_as_string(hide_password=True),
        current=current,
        head=head,
        status=status,
    )


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def migrate_service(settings: Settings, service: str, migrations: Path) -> Migration:
    """Upgrade one service's database to head, unless a newer release got there first."""
    database = open_database(settings, service, migrations)
    try:
        before = schema_state(database)
        if before.status is SchemaStatus.BEHIND:
            database.migrate()
            after = schema_state(database)
        else:
            after = before
        return Migration(before, after)
    finally:
        database.close()


def inspect_service(settings: Settings, service: str, migrations: Path) -> SchemaState:
    database = open_database(settings, service, migrations)
    try:
        return schema_state(database)
    finally:
        database.close()


def wait_until_current(
    settings: Settings,
    definitions: Sequence[ServiceDefinition],
    timeout: float,
    *,
    interval: float = 2.0,
    report: Callable[[str], None] = lambda _line: None,
) -> list[SchemaState]:
    """Poll until no database is behind or `timeout` seconds pass; return the last states.

    An unreachable database counts as not ready yet while there is time left (the database
    may be starting too); at the deadline its error is raised.
    """
    deadline = time.monotonic() + timeout
    last_reported: dict[str, str] = {}
    while True:
        states: list[SchemaState] = []
        error: Unavailable | None = None
        for definition in definitions:
            assert definition.migrations is not None
            try:
                state = inspect_service(settings, definition.name, definition.migrations)
            except Unavailable as unreachable:
                error = unreachable
                line = unreachable.message
            else:
                states.append(state)
                line = state.describe()
            if last_reported.get(definition.name) != line:
                report(f"{definition.name}: {line}")
                last_reported[definition.name] = line
        behind = [s for s in states if s.status is SchemaStatus.BEHIND]
        if error is None and not behind:
            return states
        if time.monotonic() + interval > deadline:
            if error is not None:
                raise error
            return states
        time.sleep(interval)


# -- the command ---------------------------------------------------------------------


def _settings(config: str | None, data_dir: str | None) -> Settings:
    overrides = {"data_dir": data_dir} if data_dir is not None else {}
    try:
        return load_settings(config, **overrides)
    except SettingsError as error:
        raise click.ClickException(f"bad setting: {error}") from error


def _wait_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--wait'") from error
    assert isinstance(parsed, timedelta)
    return parsed.total_seconds()


@click.command()
@click.option(
    "--service",
    "services",
    multiple=True,
    help="Only this service (repeatable); default: every installed service with tables.",
)
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a database is behind.")
@click.option(
    "--wait",
    "wait",
    metavar="DURATION",
    help="With --check: wait up to DURATION (30s, 10m) for the databases to become current.",
)
@click.option("--config", type=click.Path(dir_okay=False), help="YAML settings file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Data directory.")
def migrate(
    services: tuple[str, ...],
    check: bool,
    wait: str | None,
    config: str | None,
    data_dir: str | None,
) -> None:
    """Bring every service's database to its newest schema, then exit."""
    wait_seconds = _wait_seconds(wait)
    if wait_seconds is not None and not check:
        raise click.UsageError("--wait only goes with --check (migrating never waits)")
    settings = _settings(config, data_dir)
    try:
        chosen = select_services(service_definitions(), services)
    except UnknownService as error:
        raise click.ClickException(str(error)) from error
    behind: list[str] = []
    width = max((len(d.name) for d in chosen), default=0)
    try:
        if check and wait_seconds is not None:
            _wait(settings, chosen, wait_seconds, width)
            return
        for definition in chosen:
            if definition.migrations is None:
                click.echo(f"{definition.name:<{width}}  has no tables")
            elif check:
                state = inspect_service(settings, definition.name, definition.migrations)
                click.echo(f"{definition.name:<{width}}  {state.describe()}")
                if state.status is SchemaStatus.BEHIND:
                    behind.append(definition.name)
            else:
                _migrate_one(settings, definition.name, definition.migrations, width)
    except Unavailable as error:
        raise click.ClickException(_one_line(error.message)) from error
    _fail_if_behind(behind)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _fail_if_behind(behind: Sequence[str]) -> None:
    if behind:
        raise click.ClickException(
            f"behind the newest migration: {', '.join(behind)} (run `mailwright migrate`)"
        )


def _migrate_one(settings: Settings, service: str, migrations: Path, width: int) -> None:
    click.echo(f"migrating {service} …", err=True)
    try:
        done = migrate_service(settings, service, migrations)
    except CommandError as error:
        raise click.ClickException(f"migrating {service} failed: {error}") from error
    if done.changed:
        what = f"migrated {done.before.current or '(empty)'} → {done.after.current}"
    else:
        what = done.after.describe()
    click.echo(f"{service:<{width}}  {what}  ({done.after.database})")


def _wait(
    settings: Settings, chosen: Sequence[ServiceDefinition], seconds: float, width: int
) -> None:
    for definition in chosen:
        if definition.migrations is None:
            click.echo(f"{definition.name:<{width}}  has no tables")
    with_tables = [d for d in chosen if d.migrations is not None]
    states = wait_until_current(
        settings, with_tables, seconds, report=lambda line: click.echo(line, err=True)
    )
    for state in states:
        click.echo(f"{state.service:<{width}}  {state.describe()}")
    _fail_if_behind([s.service for s in states if s.status is SchemaStatus.BEHIND])
