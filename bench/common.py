"""What a benchmark reports (a measured value beside a baseline measured in the same run),
and the scratch PostgreSQL schemas the benchmarks work in."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Result:
    """One figure: `value` in `unit`, against `baseline` in `baseline_unit`; `ratio` is
    value ÷ baseline and `goal` says what ratio we aim for (e.g. ">= 0.5")."""

    name: str
    value: float
    unit: str
    baseline: float
    baseline_unit: str
    ratio: float
    goal: str


@contextmanager
def postgres_schemas(url: str, count: int = 1) -> Iterator[list[str]]:
    """`count` URLs, each working in a fresh schema of `url`'s database (its connections
    open with `search_path` set to it), dropped with everything in it afterwards.

    Schemas rather than scratch databases: PostgreSQL 15 forces an immediate checkpoint
    on every `DROP DATABASE` (`pg_stat_bgwriter.checkpoints_req` counts one each), which
    flushes the whole server's dirty pages and took 0.4-1.4 s a database on the shared
    machine; creating and dropping a schema takes milliseconds."""
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    names = [f"mwbench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        base = make_url(url)
        yield [
            base.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(
                hide_password=False
            )
            for name in names
        ]
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        admin.dispose()
