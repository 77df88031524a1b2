"""Scratch PostgreSQL schemas for the benchmarks.

Apart from `bench.common`, which `python -m bench` imports and with it every process the
benchmarks spawn (the segment loader, DKIM signing workers): SQLAlchemy would add 0.2 s of
CPU to each of their starts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import make_url


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
