"""`mailwright predict`: the predictive models from the command line.

Registered through the `mailwright.cli` entry point of the profile service's distribution.
`mailwright predict clv fit` fits BG/NBD (and Gamma-Gamma when amounts are given) to a
transaction log or a per-customer summary and prints the parameters as JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import click

from mailwright_profile.predict.clv import fit_clv
from mailwright_profile.predict.csvinput import date_parser, read_summary, read_transactions
from mailwright_profile.predict.errors import PredictError
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
