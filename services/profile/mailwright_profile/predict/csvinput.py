"""Reading transaction logs and customer summaries from CSV files, strictly.

Every problem is a `DataError` naming the column (or the file) and the line, so the CLI can
print one line and stop: an empty file, a missing column, a row with the wrong number of
fields, an unparseable date or amount, a negative amount.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path

from mailwright_profile.predict.errors import DataError
from mailwright_profile.predict.summary import CustomerSummary, Transaction

SUMMARY_COLUMNS = ("frequency", "recency", "T")
ID_COLUMNS = ("customer_id", "id", "ID")


def date_parser(date_format: str | None) -> Callable[[str], date]:
    """`datetime.strptime` with the format, or ISO 8601 (a date or a date-time)."""

    def parse(text: str) -> date:
        value = text.strip()
        try:
            if date_format is not None:
                return datetime.strptime(value, date_format).date()
            if len(value) == 10:
                return date.fromisoformat(value)
            return datetime.fromisoformat(value).date()
        except ValueError:
            expected = f"format {date_format!r}" if date_format else "ISO 8601 (YYYY-MM-DD)"
            raise ValueError(f"cannot parse date {text!r} (expected {expected})") from None

    return parse


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) pairs; the header must exist and every row must match it."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise DataError("file", f"cannot read {path}: {error.strerror}") from None
    with handle:
        try:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise DataError("file", f"{path} is empty")
            names = [cell.strip() for cell in header]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise DataError("file", f"{path} repeats column(s) {', '.join(duplicates)}")
            yield 1, {name: name for name in names}
            for cells in reader:
                line = reader.line_num
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if len(cells) != len(names):
                    raise DataError(
                        "file",
                        f"line {line} has {len(cells)} fields, the header has {len(names)}",
                    )
                yield line, dict(zip(names, cells, strict=True))
        except csv.Error as error:
            raise DataError("file", f"line {reader.line_num}: malformed CSV ({error})") from None
        except UnicodeDecodeError:
            raise DataError("file", f"{path} is not UTF-8 text") from None


def _require(header: dict[str, str], column: str, option: str) -> None:
    if column not in header:
        available = ", ".join(header) or "none"
        raise DataError(option, f"unknown column {column!r} (columns: {available})")


def _number(text: str, column: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError(column, f"line {line}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataError(column, f"line {line}: {text!r} is not a finite number")
    return value


def read_transactions(
    path: Path,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str | None = None,
    date_format: str | None = None,
) -> list[Transaction]:
    """Transactions from a CSV file with a header row."""
    parse_date = date_parser(date_format)
    rows = _rows(path)
    _, header = next(rows)
    _require(header, customer_col, "customer-col")
    _require(header, date_col, "date-col")
    if amount_col is not None:
        _require(header, amount_col, "amount-col")
    transactions: list[Transaction] = []
    for line, row in rows:
        customer = row[customer_col].strip()
        if not customer:
            raise DataError(customer_col, f"line {line}: empty customer id")
        try:
            day = parse_date(row[date_col])
        except ValueError as error:
            raise DataError(date_col, f"line {line}: {error}") from None
        amount = None
        if amount_col is not None:
            amount = _number(row[amount_col], amount_col, line)
            if amount < 0:
                raise DataError(amount_col, f"line {line}: negative amount {amount:g}")
        transactions.append(Transaction(customer, day, amount))
    if not transactions:
        raise DataError("file", f"{path} has a header but no transactions")
    return transactions


def read_summary(path: Path) -> CustomerSummary:
    """A per-customer summary: columns frequency, recency, T and optionally monetary_value
    (empty for customers without repeat purchases), plus an optional id column."""
    rows = _rows(path)
    _, header = next(rows)
    for column in SUMMARY_COLUMNS:
        _require(header, column, "summary")
    with_money = "monetary_value" in header
    id_column = next((name for name in ID_COLUMNS if name in header), None)
    ids: list[str] = []
    columns: dict[str, list[float]] = {name: [] for name in (*SUMMARY_COLUMNS, "monetary_value")}
    for line, row in rows:
        ids.append(row[id_column].strip() if id_column else f"line {line}")
        for column in SUMMARY_COLUMNS:
            columns[column].append(_number(row[column], column, line))
        if with_money:
            text = row["monetary_value"].strip()
            columns["monetary_value"].append(_number(text, "monetary_value", line) if text else 0)
    if not ids:
        raise DataError("file", f"{path} has a header but no customers")
    if id_column and len(set(ids)) != len(ids):
        raise DataError(id_column, "customer ids repeat; a summary has one row per customer")
    return CustomerSummary.from_arrays(
        columns["frequency"],
        columns["recency"],
        columns["T"],
        columns["monetary_value"] if with_money else None,
        customer_ids=ids,
    )
