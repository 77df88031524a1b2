"""Exact decimal arithmetic for SQLite, registered on every connection.

SQLite has no decimal type: its SUM over doubles rounds (0.1 + 0.2 is not 0.3), while a
rule's `sum(revenue) ... = 0.3` means the exact sum. The compiler therefore adds and
compares numbers on SQLite through three small functions written in Python's `Decimal`
(each double read by its shortest repr, which is the stored value for numbers of up to 15
significant digits):

* `mw_dsum(x)` — aggregate: the exact sum, as text;
* `mw_dmul(a, b)` — the exact product, as text;
* `mw_dcmp(a, b)` — -1, 0 or 1.

PostgreSQL needs none of this: its NUMERIC is exact.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa


def to_decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


class _DecimalSum:
    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: object) -> None:
        number = to_decimal(value)
        if number is not None:
            self.total = number if self.total is None else self.total + number

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)


def _multiply(a: object, b: object) -> str | None:
    x, y = to_decimal(a), to_decimal(b)
    return None if x is None or y is None else str(x * y)


def _compare(a: object, b: object) -> int | None:
    x, y = to_decimal(a), to_decimal(b)
    if x is None or y is None:
        return None
    return (x > y) - (x < y)


def register(dbapi_connection: sqlite3.Connection, _record: Any = None) -> None:
    dbapi_connection.create_aggregate("mw_dsum", 1, _DecimalSum)  # type: ignore[arg-type]
    dbapi_connection.create_function("mw_dmul", 2, _multiply, deterministic=True)
    dbapi_connection.create_function("mw_dcmp", 2, _compare, deterministic=True)


def prepare(engine: sa.Engine) -> None:
    """Register the functions on every new SQLite connection of `engine` (once)."""
    if engine.dialect.name != "sqlite" or sa.event.contains(engine, "connect", register):
        return
    sa.event.listen(engine, "connect", register)
    # Connections opened before the listener existed lack the functions: start afresh.
    engine.dispose()
