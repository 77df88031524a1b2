"""`mailwright bus`: look into the bus and handle its dead letters.

    mailwright bus stats [--topic T]...
    mailwright bus dead-letters list [TOPIC] [--limit N]
    mailwright bus dead-letters replay TOPIC (--id ID... | --all)
    mailwright bus dead-letters purge TOPIC [--yes]

The bus is the one of the settings (`MAILWRIGHT_BUS_URL`, `MAILWRIGHT_NAMESPACE`,
`MAILWRIGHT_BUS_PARTITIONS`, or the YAML file of `--config`). Message bodies are never
printed, only their size: they may carry personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import TypeVar

import click
from rich.console import Console
from rich.table import Table

from mailwright.runtime.bus import Bus, BusError, BusStats, DeadLetter, connect
from mailwright.runtime.settings import SettingsError, load_settings

T = TypeVar("T")

MEMORY_EXPLANATION = (
    "MAILWRIGHT_BUS_URL is memory://: the in-memory bus lives inside the process that runs "
    "the services (`mailwright up`) and cannot be inspected from another process. Point "
    "MAILWRIGHT_BUS_URL at the Redis server of the deployment (redis://...) to use this "
    "command."
)


def _run(config: Path | None, action: Callable[[Bus], Awaitable[T]]) -> T:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    if settings.bus_url.startswith("memory://"):
        raise click.ClickException(MEMORY_EXPLANATION)

    async def main() -> T:
        bus = await connect(
            settings.bus_url, namespace=settings.namespace, partitions=settings.bus_partitions
        )
        try:
            return await action(bus)
        finally:
            await bus.close()

    try:
        return asyncio.run(main())
    except (BusError, ValueError) as error:
        raise click.ClickException(str(error)) from error


def _console() -> Console:
    return Console(highlight=False)


def _table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap rather than hide: ids and names must be copyable."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


config_option = click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML settings file (else MAILWRIGHT_CONFIG and MAILWRIGHT_* variables).",
)


@click.group()
def bus() -> None:
    """Inspect the event bus: queue depths, consumers, dead letters."""


@bus.command()
@click.option("--topic", "topics", multiple=True, help="Only these topics (repeatable).")
@config_option
def stats(topics: tuple[str, ...], config: Path | None) -> None:
    """Depth, pending and lag per topic partition and group; consumers; dead letters."""

    async def action(connected: Bus) -> BusStats:
        return await connected.stats(list(topics) or None)

    result = _run(config, action)
    console = _console()
    console.print(
        f"bus {result.backend} · namespace {result.namespace} · {result.partitions} partitions"
    )
    if not result.topics:
        console.print("No topics yet: nothing has been published.")
        return
    for topic in dict.fromkeys(p.topic for p in result.topics):
        table = _table(
            "part.", "length", "group", "pending", "lag", "lease holder", "consumers", title=topic
        )
        for partition in (p for p in result.topics if p.topic == topic):
            if not partition.groups:
                table.add_row(str(partition.partition), str(partition.length), "-")
            for group in partition.groups:
                table.add_row(
                    str(partition.partition),
                    str(partition.length),
                    group.group,
                    str(group.pending),
                    "?" if group.lag is None else str(group.lag),
                    group.lease_holder or "-",
                    ", ".join(group.consumers) or "-",
                )
        console.print(table)
    live = _table("group", "live consumer", "heartbeat expires in")
    for consumer in result.consumers:
        live.add_row(consumer.group, consumer.name, f"{consumer.expires_in:.1f}s")
    console.print(live if result.consumers else "No live consumers.")
    dead = _table("topic", "dead letters")
    for topic, count in sorted(result.dead_letters.items()):
        dead.add_row(topic, str(count), style="bold red" if count else None)
    console.print(dead)


@bus.group("dead-letters")
def dead_letters() -> None:
    """List, replay and purge messages that failed too often."""


@dead_letters.command("list")
@click.argument("topic", required=False)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@config_option
def list_letters(topic: str | None, limit: int, config: Path | None) -> None:
    """Dead letters of TOPIC (or of every topic), oldest first."""

    async def action(connected: Bus) -> list[DeadLetter]:
        return await connected.dead_letters(topic, limit=limit)

    letters = _run(config, action)
    console = _console()
    if not letters:
        console.print(f"No dead letters{f' in {topic}' if topic else ''}.")
        return
    table = _table("id", "topic", "group", "key", "tries", "bytes", "failed at (UTC)", "error")
    for letter in letters:
        table.add_row(
            letter.id,
            letter.topic,
            letter.group,
            letter.key,
            str(letter.delivery_count),
            str(len(letter.value)),
            letter.failed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            letter.error if len(letter.error) <= 120 else letter.error[:117] + "...",
        )
    console.print(table)
    if len(letters) == limit:
        console.print(f"(first {limit}; use --limit for more)")


@dead_letters.command()
@click.argument("topic")
@click.option("--id", "ids", multiple=True, help="A dead letter id to replay (repeatable).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter of TOPIC.")
@config_option
def replay(topic: str, ids: tuple[str, ...], replay_all: bool, config: Path | None) -> None:
    """Publish dead letters of TOPIC again, for the group that failed them."""
    if bool(ids) == replay_all:
        raise click.UsageError("give either --id (one or more) or --all")

    async def action(connected: Bus) -> int:
        return await connected.replay_dead_letters(topic, list(ids) if ids else None)

    count = _run(config, action)
    missing = f" ({len(ids) - count} of the ids were not found)" if ids and count < len(ids) else ""
    _console().print(
        f"Replayed {count} dead letter{'s' if count != 1 else ''} of {topic}{missing}."
    )


@dead_letters.command()
@click.argument("topic")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def purge(topic: str, yes: bool, config: Path | None) -> None:
    """Delete every dead letter of TOPIC, for good."""
    if not yes:
        click.confirm(f"Delete every dead letter of {topic}? They cannot be recovered", abort=True)

    async def action(connected: Bus) -> int:
        return await connected.purge_dead_letters(topic)

    count = _run(config, action)
    _console().print(f"Purged {count} dead letter{'s' if count != 1 else ''} of {topic}.")
