"""The benchmarks' scratch PostgreSQL schemas (`bench.scratch`): each URL works in a schema
of its own, which is gone, with everything in it, once the block ends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bench.scratch import postgres_schemas


def _schemas(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT nspname FROM pg_namespace"))
            return {row.nspname for row in rows}
    finally:
        engine.dispose()


def _things(url: str, rows: int) -> tuple[str, int]:
    """Create table `things` with `rows` rows through `url`: (current schema, rows seen)."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE things (n integer)"))
            for n in range(rows):
                conn.execute(sa.text("INSERT INTO things VALUES (:n)"), {"n": n})
        with engine.connect() as conn:
            schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
            return schema, conn.execute(sa.text("SELECT count(*) FROM things")).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_each_url_works_in_its_own_schema_dropped_afterwards(postgres_url: str) -> None:
    with postgres_schemas(postgres_url, 2) as (first, second):
        first_schema, first_rows = _things(first, 1)
        second_schema, second_rows = _things(second, 3)  # same table name, no clash
        assert (first_rows, second_rows) == (1, 3)
        assert first_schema != second_schema
        assert {first_schema, second_schema} <= _schemas(postgres_url)
    assert not {first_schema, second_schema} & _schemas(postgres_url)
