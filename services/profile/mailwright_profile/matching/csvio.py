"""Reading records and writing profiles as CSV, with errors that name the line.

Input is UTF-8 (a byte-order mark is allowed) with a header row; columns are the
standard trait keys, others are ignored, and any value may be empty except `record_id`.
Files as spreadsheets and shop or CRM exports write them are read too: header names
match whatever their case, with spaces or hyphens for underscores (`First Name` is
`first_name`), and values may be separated by semicolons or tabs instead of commas
(whichever the header row uses most).
Output files are written to a temporary file beside the target and renamed into place,
so a failed run never leaves half a file behind.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from mailwright_profile.matching.records import TRAIT_KEYS, Record, RecordError

__all__ = [
    "MAX_VALUE_LENGTH",
    "InputError",
    "read_labels",
    "read_records",
    "write_csv",
]

MAX_VALUE_LENGTH = 1_000


class InputError(ValueError):
    """A CSV file that cannot be read as asked; the message names the file and line."""


Row = dict[str | None, str | None]
_DELIMITERS = (",", ";", "\t")
_SEPARATORS = re.compile(r"[\s-]+")


def _delimiter(handle: TextIO) -> str:
    """The separator the header row uses most (commas when it uses none)."""
    header = handle.readline()
    handle.seek(0)
    counts = [header.count(d) for d in _DELIMITERS]
    return _DELIMITERS[counts.index(max(counts))] if max(counts) else ","


def _standard_name(name: str) -> str:
    """A header name as a trait key: `First Name` and `first-name` are `first_name`."""
    return _SEPARATORS.sub("_", name.strip()).lower()


@contextmanager
def _rows(path: Path) -> Iterator[tuple[Iterator[tuple[int, Row]], list[str]]]:
    """The file's header and its rows, each with the line it starts on; read errors
    become `InputError`s naming that line.

    A field beyond the csv module's limit (128 KiB) is reported as invalid CSV; the
    limit is process-wide, so it is left as it is.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=_delimiter(handle), strict=True)
            line = 1
            try:
                header = list(reader.fieldnames or [])

                def numbered() -> Iterator[tuple[int, Row]]:
                    nonlocal line
                    line = reader.line_num + 1
                    for row in reader:
                        yield line, row
                        line = reader.line_num + 1

                yield numbered(), header
            except csv.Error as error:
                raise InputError(f"{path}: line {line}: not valid CSV ({error})") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror})") from None


def _check_header(path: Path, header: Sequence[str], required: Iterable[str]) -> None:
    if not header:
        raise InputError(f"{path}: line 1: empty file, expected a header row")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}: line 1: column {name!r} appears twice")
        seen.add(name)
    for name in required:
        if name not in seen:
            raise InputError(
                f"{path}: line 1: no {name!r} column (columns: {', '.join(header) or 'none'})"
            )


def _check_row(path: Path, line: int, row: Mapping[str | None, object]) -> None:
    if None in row:
        raise InputError(f"{path}: line {line}: more values than the header has columns")
    for key, value in row.items():
        if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
            raise InputError(
                f"{path}: line {line}: {key} is longer than {MAX_VALUE_LENGTH} characters"
            )


def _trait_columns(path: Path, header: Sequence[str]) -> dict[str, str]:
    """The header's columns that are trait keys: key → the column's name as written."""
    found: dict[str, str] = {}
    for name in header:
        key = _standard_name(name)
        if key not in TRAIT_KEYS:
            continue
        if key in found:
            raise InputError(f"{path}: line 1: columns {found[key]!r} and {name!r} are both {key}")
        found[key] = name
    return found


def read_records(path: Path) -> list[Record]:
    """Every record of a CSV file, in file order.

    Raises `InputError` naming the line for: a missing `record_id` column, an empty or
    duplicate record id, a row with more values than columns, a value longer than
    `MAX_VALUE_LENGTH`, malformed CSV or text that is not UTF-8.
    """
    records: list[Record] = []
    first_line: dict[str, int] = {}
    with _rows(path) as (rows, header):
        _check_header(path, header, ())
        columns = _trait_columns(path, header)
        if "record_id" not in columns:
            raise InputError(
                f"{path}: line 1: no 'record_id' column (columns: {', '.join(header) or 'none'})"
            )
        for line, row in rows:
            _check_row(path, line, row)
            try:
                record = Record.from_mapping({key: row.get(name) for key, name in columns.items()})
            except RecordError as error:
                raise InputError(f"{path}: line {line}: {error}") from None
            if record.record_id in first_line:
                raise InputError(
                    f"{path}: line {line}: duplicate record_id {record.record_id!r} "
                    f"(first on line {first_line[record.record_id]})"
                )
            first_line[record.record_id] = line
            records.append(record)
    return records


def read_labels(path: Path) -> dict[str, str]:
    """A CSV of `record_id` and one label column (a profile or person id) as a mapping."""
    labels: dict[str, str] = {}
    with _rows(path) as (rows, header):
        _check_header(path, header, ("record_id",))
        others = [name for name in header if name != "record_id"]
        if len(others) != 1:
            raise InputError(
                f"{path}: line 1: expected record_id and one label column, got {header}"
            )
        label = others[0]
        for line, row in rows:
            _check_row(path, line, row)
            record_id, value = (row.get("record_id") or "").strip(), (row.get(label) or "").strip()
            if not record_id or not value:
                raise InputError(f"{path}: line {line}: empty record_id or {label}")
            if record_id in labels:
                raise InputError(f"{path}: line {line}: duplicate record_id {record_id!r}")
            labels[record_id] = value
    return labels


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a CSV file atomically: all of it or, on failure, nothing."""
    directory = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            _write(handle, header, rows)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write(handle: TextIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
