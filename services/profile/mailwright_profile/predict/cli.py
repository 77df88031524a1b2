"""`mailwright predict`: the predictive models from the command line.

Registered through the `mailwright.cli` entry point of the profile service's distribution.

- `clv fit` fits BG/NBD (and Gamma-Gamma when amounts are given) to a transaction log or
  a per-customer summary and prints the parameters as JSON;
- `train [--model NAME] [--workspace W]` trains the registered scorers on the profile
  service's event history, stores the versions and scores every profile;
- `report [--out DIR]` prints the current models' metrics and writes plots.

`train` and `report` read the same settings as the services (`MAILWRIGHT_*`, `--config`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mailwright.plugins import get_plugins
from mailwright.runtime.db import Database
from mailwright.runtime.settings import SettingsError, load_settings
from mailwright_profile.predict.clv import fit_clv
from mailwright_profile.predict.csvinput import date_parser, read_summary, read_transactions
from mailwright_profile.predict.errors import PredictError
from mailwright_profile.predict.report import summarise, write_plots
from mailwright_profile.predict.scorers import ModelVersion
from mailwright_profile.predict.service import Predictor
from mailwright_profile.predict.summary import CustomerSummary, TimeUnit

_FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def _status(message: str) -> None:
    """Progress for people at a terminal; nothing when stderr is piped or captured."""
    if sys.stderr.isatty():
        click.echo(message, err=True)


@click.group()
def predict() -> None:
    """Predictive models: CLV, churn, propensity, send time, recommendations."""


@predict.group()
def clv() -> None:
    """Customer lifetime value (BG/NBD and Gamma-Gamma)."""


@clv.command("fit")
@click.option("--transactions", type=_FILE, help="CSV of transactions, one row per purchase.")
@click.option("--summary", type=_FILE, help="CSV with frequency, recency, T[, monetary_value].")
@click.option("--customer-col", default="customer_id", show_default=True)
@click.option("--date-col", default="date", show_default=True)
@click.option("--amount-col", default=None, help="Column of purchase amounts (enables CLV).")
@click.option("--date-format", default=None, help="strptime format; default ISO 8601.")
@click.option("--calibration-end", default=None, help="Last day of the calibration period.")
@click.option(
    "--time-unit",
    type=click.Choice(["day", "week"]),
    default="day",
    show_default=True,
    help="Unit of recency, T and alpha (a summary's values are taken as given in it).",
)
def fit(
    transactions: Path | None,
    summary: Path | None,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    date_format: str | None,
    calibration_end: str | None,
    time_unit: TimeUnit,
) -> None:
    """Fit BG/NBD (and Gamma-Gamma with amounts) and print the parameters as JSON."""
    if (transactions is None) == (summary is None):
        raise click.UsageError("give exactly one of --transactions or --summary")
    try:
        if transactions is not None:
            data = _summary_from_transactions(
                transactions,
                customer_col=customer_col,
                date_col=date_col,
                amount_col=amount_col,
                date_format=date_format,
                calibration_end=calibration_end,
                time_unit=time_unit,
            )
        else:
            if calibration_end is not None or amount_col is not None:
                raise click.UsageError(
                    "--calibration-end and --amount-col apply to --transactions only"
                )
            assert summary is not None
            data = read_summary(summary)
        _status(f"fitting {len(data):,} customers")
        result = fit_clv(data, time_unit=time_unit)
    except PredictError as error:
        raise click.ClickException(str(error)) from None
    spend = result.gamma_gamma
    if result.free_repeaters:
        _status(
            f"{result.free_repeaters:,} repeat customers spent nothing on repeat purchases;"
            " left out of the Gamma-Gamma fit"
        )
    output = {
        "bgnbd": {
            **result.bgnbd.model.as_dict(),
            "log_likelihood": result.bgnbd.log_likelihood,
        },
        "gamma_gamma": None if spend is None else spend.model.as_dict(),
        "customers": len(data),
    }
    click.echo(json.dumps(output, indent=2))


def _summary_from_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None,
    date_format: str | None,
    calibration_end: str | None,
    time_unit: TimeUnit,
) -> CustomerSummary:
    end = None
    if calibration_end is not None:
        try:
            end = date_parser(date_format)(calibration_end)
        except ValueError as error:
            try:  # ISO 8601 is always understood, whatever the file's --date-format
                end = date.fromisoformat(calibration_end)
            except ValueError:
                raise click.BadParameter(str(error), param_hint="--calibration-end") from None
    rows = read_transactions(
        path,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        date_format=date_format,
    )
    _status(f"read {len(rows):,} transactions")
    return CustomerSummary.from_transactions(rows, calibration_end=end, time_unit=time_unit)


# -- operation: training on the profile service's data, and the report -------------------

_CONFIG = click.option(
    "--config", type=click.Path(dir_okay=False, path_type=Path), help="Settings file (YAML)."
)
_WORKSPACE = click.option(
    "--workspace",
    "workspaces",
    multiple=True,
    help="Workspace to work on (repeatable); default: every workspace with profiles.",
)


def _predictor(config: Path | None) -> Predictor:
    """The registered scorers (built-in and plugins') on the profile service's database."""
    try:
        settings = load_settings(config)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    db = Database(settings.database_url_for("profile"), service="profile")
    try:
        db.check_connection()
    except Exception as error:
        raise click.ClickException(f"profile database: {error}") from error
    return Predictor(db, get_plugins(settings).scorers)


def _workspaces(predictor: Predictor, chosen: tuple[str, ...]) -> list[str]:
    if chosen:
        return list(dict.fromkeys(chosen))
    found = predictor.store.workspaces()
    if not found:
        raise click.ClickException("the profile service has no profiles yet: nothing to train on")
    return found


def _metric_line(version: ModelVersion) -> str:
    metrics = version.metrics
    validation = metrics.get("validation")
    if isinstance(validation, dict):
        baseline = metrics.get("recency_baseline") or {}
        return (
            f"AUC {validation['auc']:.3f} (recency baseline {baseline.get('auc', 0.0):.3f}), "
            f"precision@10% {validation['precision_at_top_decile']:.3f}, "
            f"ECE {validation['expected_calibration_error']:.3f}"
        )
    if "bgnbd_log_likelihood" in metrics:
        return (
            f"{metrics['customers']:,} customers, "
            f"log-likelihood {metrics['bgnbd_log_likelihood']:.1f}"
        )
    return ", ".join(f"{k} {v}" for k, v in metrics.items() if isinstance(v, int | float))


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time (e.g. 2025-08-29T00:00:00Z)", param_hint="--as-of"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment > datetime.now(UTC):
        raise click.BadParameter(f"{text!r} is in the future", param_hint="--as-of")
    return moment.astimezone(UTC)


@predict.command("train")
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Scorer to train (repeatable: clv, churn, propensity, send-time, recommend or a "
    "plugin's); default: all.",
)
@_WORKSPACE
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="TIME",
    help="Train and score as at this ISO 8601 time (UTC unless it says otherwise): only "
    "events before it count. Default: now. For backtests and reproducible runs.",
)
@_CONFIG
def train(
    models: tuple[str, ...],
    workspaces: tuple[str, ...],
    as_of: str | None,
    config: Path | None,
) -> None:
    """Train scorers on the profile service's history, store the new versions and score
    every profile (scores become computed traits)."""
    fixed = _as_of(as_of)
    predictor = _predictor(config)
    try:
        predictor.chosen(list(models))
    except PredictError as error:
        raise click.BadParameter(str(error).removeprefix("model: "), param_hint="--model") from None
    console = Console(stderr=True)
    failed = []
    for workspace in _workspaces(predictor, workspaces):
        now = fixed or datetime.now(UTC)
        console.rule(f"workspace {workspace}")
        with _bar(console) as bar:
            advance = _advancer(bar)
            try:
                training = predictor.train_and_score(workspace, now, list(models), advance)
            except PredictError as error:
                raise click.ClickException(f"workspace {workspace!r}: {error}") from None
        summary = training.scores
        table = Table("model", "version", "metrics", "seconds")
        for outcome in training.outcomes:
            if outcome.version is None:
                failed.append(f"{workspace}/{outcome.scorer}: {outcome.error}")
                table.add_row(outcome.scorer, "[red]not trained[/]", outcome.error or "", "")
            else:
                table.add_row(
                    outcome.scorer,
                    outcome.version.version,
                    _metric_line(outcome.version),
                    f"{outcome.seconds:.1f}",
                )
        console.print(table)
        console.print(
            f"scored {summary.scored:,} of {summary.profiles:,} profiles; "
            f"{summary.changed:,} changed"
        )
    if failed:
        raise click.ClickException("not trained: " + "; ".join(failed))


@predict.command("report")
@_WORKSPACE
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the plots (PNG): calibration, lift, CLV distribution.",
)
@_CONFIG
def report(workspaces: tuple[str, ...], out: Path | None, config: Path | None) -> None:
    """Print each current model's metrics; with --out, write the plots."""
    predictor = _predictor(config)
    any_model = False
    for workspace in _workspaces(predictor, workspaces):
        current = list(predictor.store.current(workspace).values())
        if not current:
            click.echo(f"workspace {workspace}: no trained models (run `mailwright predict train`)")
            continue
        any_model = True
        click.echo(f"== workspace {workspace}")
        for summary in summarise(current):
            click.echo(f"-- {summary.scorer}  version {summary.version}  ({summary.trained_at})")
            for line in summary.lines:
                click.echo(f"   {line}")
        if out is not None:
            target = out / workspace if len(workspaces) != 1 else out
            clv = predictor.store.score_values(workspace, "clv_12m")
            for path in write_plots(current, clv, target):
                click.echo(f"wrote {path}")
    if not any_model:
        raise click.ClickException("no trained models in the chosen workspaces")


def _advancer(bar: Progress) -> Callable[[str, int, int], None]:
    """A progress callback drawing one bar per stage."""
    tasks: dict[str, TaskID] = {}

    def advance(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=max(total, 1))
        bar.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

    return advance


@contextmanager
def _bar(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        TextColumn("{task.completed:>10,.0f} / {task.total:<10,.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        yield bar
