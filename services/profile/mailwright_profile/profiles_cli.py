"""`mailwright profiles`: what operators run against the profile service's database.

- `audit`: data quality per workspace — per-source counts, conflicts between sources,
  stale profiles, unreadable values, likely duplicates (see `audit.py`);
- `partitions`: create the monthly partitions of the event history from a month on
  (PostgreSQL), moving rows that were waiting in the default partition.

Both read the same settings as the services (`MAILWRIGHT_*`, `--config file.yaml`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.status import Status
from rich.table import Table

from mailwright.runtime.db import Database
from mailwright.runtime.settings import SettingsError, load_settings
from mailwright_profile import convert
from mailwright_profile.audit import AuditReport, build_report
from mailwright_profile.store import ProfileStore
from mailwright_profile.store.upkeep import next_month

__all__ = ["profiles"]


def _store(config: Path | None) -> ProfileStore:
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    db = Database(settings.database_url_for("profile"), service="profile")
    try:
        db.check_connection()
    except Exception as error:
        raise click.ClickException(str(error)) from error
    return ProfileStore(db, convert.encode_changed, convert.encode_deleted, convert.email_hashes)


@click.group("profiles")
def profiles() -> None:
    """The profile service's data: quality audit, event partitions."""


_CONFIG = click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="Settings file (YAML)."
)


def _print(console: Console, report: AuditReport, stale_days: int) -> None:
    console.rule(f"workspace {report.workspace} · {report.profiles:,} profiles")
    sources = Table("source", "events", "profiles", "traits held", title="per source")
    for s in report.sources:
        sources.add_row(s.source, f"{s.events:,}", f"{s.profiles:,}", f"{s.traits_held:,}")
    console.print(sources)
    conflicts = Table(
        "trait", "profiles", "disagreements", "sources", title="conflicts between sources"
    )
    for c in report.conflicts:
        conflicts.add_row(
            c.trait, f"{c.profiles:,}", f"{c.disagreements:,}", ", ".join(sorted(c.sources))
        )
    console.print(conflicts if report.conflicts else "no conflicts between sources")
    console.print(
        f"stale (not seen for {stale_days} days): {report.stale:,} "
        f"({report.never_seen:,} never seen)"
        + (f" — e.g. {', '.join(report.stale_examples)}" if report.stale_examples else "")
    )
    unreadable = ", ".join(f"{k} {v:,}" for k, v in sorted(report.unreadable.items()))
    console.print(f"unreadable values: {unreadable or 'none'}")
    console.print(
        f"likely duplicates: {report.duplicate_groups:,} groups, {report.duplicate_profiles:,} "
        f"profiles; merge candidates waiting for review: {report.merge_candidates:,}"
    )


@profiles.command("audit")
@_CONFIG
@click.option("--workspace", "workspaces", multiple=True, help="Only this workspace (repeatable).")
@click.option("--stale-days", type=click.IntRange(min=1), default=180, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of tables.")
def audit(config: Path | None, workspaces: tuple[str, ...], stale_days: int, as_json: bool) -> None:
    """Data quality of the profiles of every (or the given) workspace."""
    store = _store(config)
    console = Console(stderr=as_json)
    now = datetime.now(UTC)
    reports = []
    try:
        chosen = list(workspaces) or store.workspaces()
        for workspace in chosen:
            with console.status(f"auditing {workspace}") as status:
                events, conflicts, candidates = store.audit_summary(workspace)
                report = build_report(
                    workspace,
                    _counting(store.audit_rows(workspace), status, workspace),
                    events,
                    conflicts,
                    candidates,
                    now,
                    stale_days,
                )
            reports.append(report)
            if not as_json:
                _print(console, report, stale_days)
    finally:
        store.db.close()
    if as_json:
        click.echo(json.dumps([r.as_json() for r in reports], indent=1))
    elif not reports:
        console.print("no profiles")


def _counting(rows: Iterator[Any], status: Status, workspace: str) -> Iterator[Any]:
    """The rows, with the count shown as they are read."""
    for index, row in enumerate(rows, 1):
        if index % 1000 == 0:
            status.update(f"auditing {workspace}: {index:,} profiles")
        yield row


def _month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError as error:
        raise click.BadParameter("use YYYY-MM, e.g. 2024-01") from error


@profiles.command("partitions")
@_CONFIG
@click.option("--from", "first", required=True, help="First month to partition (YYYY-MM).")
@click.option("--to", "last", help="Last month (YYYY-MM); default: three months ahead.")
def partitions(config: Path | None, first: str, last: str | None) -> None:
    """Create monthly partitions of the event history (PostgreSQL)."""
    store = _store(config)
    try:
        if store.db.dialect != "postgresql":
            raise click.ClickException("partitions are a PostgreSQL feature; nothing to do")
        end = _month(last) if last else date.today().replace(day=1)
        for _ in range(0 if last else 3):
            end = next_month(end)
        created = store.ensure_partitions(_month(first), end)
    finally:
        store.db.close()
    click.echo(
        f"created {len(created)} partitions" + (": " + ", ".join(created) if created else "")
    )
