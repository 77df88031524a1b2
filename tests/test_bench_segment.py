"""The segment bench's generated projection: SQLite (rows through `executemany`) and
PostgreSQL (binary COPY built from numpy arrays) hold the same rows, with every index the
schema declares, and the compiled and hand-written queries agree on both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from bench.bench_segment import _TABLES, Data, _quote, build, compare_sql, copy_binary
from mailwright_segment.store import sqlfuncs
from mailwright_segment.store.tables import metadata

PROFILES, EVENTS = 300, 4_000


def _rows(url: str, table: str) -> list[tuple[object, ...]]:
    columns = ", ".join(_quote(c) for c in _TABLES[table])
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f"SELECT {columns} FROM {table} ORDER BY {columns}")
            # SQLite keeps the NUMERIC total as a double: compare numbers as numbers.
            return [tuple(float(v) if isinstance(v, int | float) else v for v in r) for r in rows]
    finally:
        engine.dispose()


def test_data_is_sorted_in_primary_key_order_and_buckets_count_every_event() -> None:
    data = Data(PROFILES, EVENTS)
    specs = np.array(data.spec_ids)[data.name]
    keys = list(zip(specs.tolist(), data.pk.tolist(), data.at.tolist(), strict=True))
    assert keys == sorted(keys)
    assert len(set(keys)) == EVENTS
    assert data.bucket_count.sum() == EVENTS
    assert data.at.max() <= data.at.min() + 90 * 86_400_000_000
    assert data.pk.min() >= 1
    assert data.pk.max() <= PROFILES


def test_binary_copy_rows_have_the_postgres_layout() -> None:
    encoded = copy_binary([np.array([1, 2], dtype=np.int64), np.bytes_(b"ab")], 2)
    one = b"\x00\x02" + b"\x00\x00\x00\x08" + (1).to_bytes(8, "big") + b"\x00\x00\x00\x02ab"
    two = b"\x00\x02" + b"\x00\x00\x00\x08" + (2).to_bytes(8, "big") + b"\x00\x00\x00\x02ab"
    assert encoded == one + two


@pytest.mark.postgres
def test_sqlite_and_postgres_loads_hold_the_same_rows(tmp_path: Path, postgres_url: str) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'bench.db'}"
    build(sqlite_url, PROFILES, EVENTS)
    build(postgres_url, PROFILES, EVENTS)
    data = Data(PROFILES, EVENTS)
    for table in _TABLES:
        rows = _rows(sqlite_url, table)
        assert len(rows) == data.count(table)
        assert rows == _rows(postgres_url, table), table

    expected = {i.name for t in metadata.sorted_tables for i in t.indexes if t.name in _TABLES}
    members = set()
    for url in (sqlite_url, postgres_url):
        engine = sa.create_engine(url)
        sqlfuncs.prepare(engine)
        try:
            indexes = {
                i["name"] for table in _TABLES for i in sa.inspect(engine).get_indexes(table)
            }
            assert expected <= indexes
            _, _, found = compare_sql(engine, runs=1)  # raises if the two queries disagree
            members.add(found)
        finally:
            engine.dispose()
    assert len(members) == 1
    assert members.pop() > 0
