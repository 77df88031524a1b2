"""Reading CSV, JSONL and Parquet files row by row, with where each row is.

Each reader yields `Row(index, line, values)` for every record in order — `index` counts
records from 0 (what a cursor resumes at), `line` is where a person finds it (the CSV
line the record ends on, the JSONL line, the Parquet row number from 1) — or a `Row` whose
`problem` says why it cannot be read (a CSV row with more or fewer fields than the
header, a JSONL line that is not an object). `start` skips records already imported.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
}
MAX_LINE = 1024 * 1024
csv.field_size_limit(MAX_LINE)


@dataclass(frozen=True)
class Row:
    index: int
    line: int
    values: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def format_of(path: Path, declared: str | None) -> str:
    if declared is not None:
        return declared
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise ValueError(f"{path.name}: unknown format; declare format: csv, jsonl or parquet")
    return found


def read(path: Path, kind: str, start: int, *, delimiter: str, encoding: str) -> Iterator[Row]:
    if kind == "csv":
        return _csv(path, start, delimiter, encoding)
    if kind == "jsonl":
        return _jsonl(path, start, encoding)
    return _parquet(path, start)


def _csv(path: Path, start: int, delimiter: str, encoding: str) -> Iterator[Row]:
    with path.open(encoding=encoding, newline="", errors="strict") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter, restkey="\x00extra")
        if reader.fieldnames is None:
            return
        if len(set(reader.fieldnames)) != len(reader.fieldnames):
            raise ValueError(f"{path.name}: the header names a column twice")
        index = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                if index >= start:
                    yield Row(index, reader.line_num, problem=f"unreadable CSV ({error})")
                index += 1
                continue
            if index >= start:
                if "\x00extra" in values:
                    extra = len(values["\x00extra"])
                    yield Row(
                        index, reader.line_num, problem=f"{extra} fields more than the header"
                    )
                elif any(v is None for v in values.values()):
                    yield Row(index, reader.line_num, problem="fewer fields than the header")
                else:
                    yield Row(index, reader.line_num, values)
            index += 1


def _jsonl(path: Path, start: int, encoding: str) -> Iterator[Row]:
    with path.open("rb") as handle:
        index = 0
        for line, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            if index >= start:
                yield _json_row(index, line, raw, encoding)
            index += 1


def _json_row(index: int, line: int, raw: bytes, encoding: str) -> Row:
    if len(raw) > MAX_LINE:
        return Row(index, line, problem=f"line longer than {MAX_LINE} bytes")
    try:
        values = json.loads(raw.decode(encoding))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Row(index, line, problem=f"not JSON ({type(error).__name__})")
    if not isinstance(values, dict):
        return Row(index, line, problem="not a JSON object")
    return Row(index, line, values)


def _parquet(path: Path, start: int) -> Iterator[Row]:
    handle = pq.ParquetFile(path)
    index = 0
    for group in range(handle.num_row_groups):
        rows = handle.metadata.row_group(group).num_rows
        if index + rows <= start:
            index += rows  # a whole row group already imported: not even read
            continue
        for values in handle.read_row_group(group).to_pylist():
            if index >= start:
                yield Row(index, index + 1, values)
            index += 1
