"""`mailwright identity`: batch identity resolution for integrators and data teams.

- `resolve IN.csv --out OUT.csv`: which records are one person (record_id,profile_id);
- `generate N --out FILE.csv --truth TRUTH.csv`: test records with known truth;
- `evaluate OUT.csv TRUTH.csv`: pairwise precision, recall and F1 of a resolution.

Registered in the entry-point group `mailwright.cli`, so the root `mailwright` command
finds it when the profile service is installed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from mailwright.normalize import normalize_country
from mailwright_profile.matching.csvio import InputError, read_labels, read_records, write_csv
from mailwright_profile.matching.evaluate import pairwise_scores
from mailwright_profile.matching.generate import generate_records
from mailwright_profile.matching.records import TRAIT_KEYS, RecordError
from mailwright_profile.matching.resolve import Resolution, ResolutionSettings, resolve

__all__ = ["identity"]

_PROBABILITY = click.FloatRange(0.0, 1.0, min_open=True)
_STAGES = ("normalising", "blocking", "comparing", "fitting", "clustering")


@click.group("identity")
def identity() -> None:
    """Identity resolution: which records describe one person."""


@contextmanager
def _progress_bar(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TextColumn("{task.completed:>10,.0f} / {task.total:<10,.0f}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        yield bar


def _summary(console: Console, result: Resolution, seconds: float) -> None:
    pairs = result.records * (result.records - 1) // 2
    share = f" ({result.comparisons / pairs:.3%} of all pairs)" if pairs else ""
    console.print(f"records      {result.records:,}")
    console.print(f"comparisons  {result.comparisons:,}{share}")
    console.print(f"clusters     {result.clusters:,}")
    probabilistic = sum(1 for link in result.clustering.merges if link.reason == "match")
    console.print(
        f"merges       {result.merges:,} ({result.merges - probabilistic:,} by user id or "
        f"email, {probabilistic:,} by match)"
    )
    console.print(f"review pairs {len(result.review):,}")
    if result.clustering.refused:
        console.print(f"refused      {len(result.clustering.refused):,} (two user ids)")
    for field, count in sorted(result.unparsed.items()):
        if count:
            console.print(f"unreadable   {count:,} {field} values, treated as missing")
    console.print(f"time         {seconds:.1f} s")


@identity.command("resolve")
@click.argument("input_path", metavar="IN.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write record_id,profile_id.",
)  # fmt: skip
@click.option(
    "--threshold", type=_PROBABILITY, default=0.9, show_default=True,
    help="Match probability at or above which records are merged.",
)  # fmt: skip
@click.option(
    "--review-threshold", type=_PROBABILITY, default=0.5, show_default=True,
    help="Pairs from here up to --threshold are not merged but listed for review.",
)  # fmt: skip
@click.option(
    "--review-out", "review_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the review pairs (left_record_id,right_record_id,probability,weight).",
)  # fmt: skip
@click.option(
    "--default-region", metavar="CC",
    help="Country (ISO 3166 alpha-2) of phone numbers written without a country code, "
    "for records without a country.",
)  # fmt: skip
@click.option(
    "--day-first/--month-first", default=False, show_default=True,
    help="How to read dates such as 03/04/1985.",
)  # fmt: skip
def resolve_command(
    input_path: Path,
    out_path: Path,
    threshold: float,
    review_threshold: float,
    review_path: Path | None,
    default_region: str | None,
    day_first: bool,
) -> None:
    """Group the records of IN.csv into profiles.

    IN.csv has a header row; the columns used are the standard trait keys
    (record_id, email, phone, first_name, last_name, birth_date, address_line1,
    address_line2, city, postal_code, region, country, user_id), matched whatever
    their case, with spaces or hyphens for underscores ("First Name"). Only record_id
    is required, other columns are ignored and any value may be empty. Values are
    separated by commas, semicolons or tabs, whichever the header row uses.
    """
    if review_threshold > threshold:
        raise click.BadParameter(
            f"{review_threshold} is above --threshold {threshold}",
            param_hint="--review-threshold",
        )
    if default_region is not None and normalize_country(default_region) is None:
        raise click.BadParameter(
            f"{default_region!r} is not a country", param_hint="--default-region"
        )
    settings = ResolutionSettings(
        threshold=threshold,
        review_threshold=review_threshold,
        default_region=default_region,
        day_first=day_first,
    )
    console = Console(stderr=True)
    started = time.perf_counter()
    try:
        records = read_records(input_path)
    except InputError as error:
        raise click.ClickException(str(error)) from None
    with _progress_bar(console) as bar:
        tasks: dict[str, TaskID] = {}

        def advance(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done if total else 1, total=max(total, 1))

        try:
            result = resolve(records, settings, progress=advance)
        except RecordError as error:
            raise click.ClickException(f"{input_path}: {error}") from None
    profiles = result.profile_ids()
    write_csv(
        out_path,
        ("record_id", "profile_id"),
        ((r.record_id, profiles[r.record_id]) for r in records),
    )
    if review_path is not None:
        write_csv(
            review_path,
            ("left_record_id", "right_record_id", "probability", "match_weight"),
            (
                (p.left, p.right, f"{p.probability:.6f}", f"{p.match_weight:.3f}")
                for p in result.review
            ),
        )
    _summary(console, result, time.perf_counter() - started)


@identity.command("generate")
@click.argument("count", metavar="N", type=click.IntRange(1, 10_000_000))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--truth", "truth_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write record_id,person_id: the person behind each record.",
)  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
def generate_command(count: int, out_path: Path, truth_path: Path, seed: int) -> None:
    """Write N generated records of people, with duplicates and known truth."""
    console = Console(stderr=True)
    with console.status(f"generating {count:,} records"):
        generated = generate_records(count, seed=seed)
    write_csv(
        out_path,
        TRAIT_KEYS,
        ([getattr(record, key) or "" for key in TRAIT_KEYS] for record in generated.records),
    )
    write_csv(truth_path, ("record_id", "person_id"), sorted(generated.truth.items()))
    people = len(set(generated.truth.values()))
    console.print(f"{count:,} records of {people:,} people written to {out_path}")


@identity.command("evaluate")
@click.argument("out_path", metavar="OUT.csv", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("truth_path", metavar="TRUTH.csv", type=click.Path(dir_okay=False, path_type=Path))
def evaluate_command(out_path: Path, truth_path: Path) -> None:
    """Pairwise precision, recall and F1 of OUT.csv against TRUTH.csv."""
    try:
        scores = pairwise_scores(read_labels(out_path), read_labels(truth_path))
    except (InputError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"precision {scores.precision:.4f}")
    click.echo(f"recall    {scores.recall:.4f}")
    click.echo(f"f1        {scores.f1:.4f}")
    click.echo(
        f"pairs     {scores.true_positives:,} correct of {scores.predicted_pairs:,} predicted, "
        f"{scores.true_pairs:,} true"
    )
