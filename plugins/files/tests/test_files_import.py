"""Importing files: formats, the mapping, per-row errors, resuming and changed files."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK
from mailwright.connectors import ConnectorConfigError, SourceBatch, load_config
from mailwright.testing.conformance import pull_all
from mailwright_files.config import FilesConfig
from mailwright_files.source import FilesSource

MakeConfig = Callable[..., FilesConfig]
Writer = Callable[[Path, str, list[dict[str, Any]]], Path]


def customer(n: int, **fields: Any) -> dict[str, Any]:
    row = {
        "id": f"c{n}",
        "email": f"C{n}@Example.com",
        "first_name": f"Ada{n}",
        "ltv": "12.50",
        "vip": "yes",
        "updated_at": "2026-03-01T12:00:00Z",
    }
    row.update(fields)
    return row


async def pull(config: FilesConfig, stream: str, cursor: str | None = None) -> list[SourceBatch]:
    return await pull_all(FilesSource(config), stream, cursor)


def events(batches: list[SourceBatch]) -> list[Any]:
    return [e for b in batches for e in b.events]


def skipped(batches: list[SourceBatch]) -> list[str]:
    return [s for b in batches for s in b.skipped]


async def test_csv_rows_become_identify_events_by_the_mapping(
    import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    write_customers(import_dir, "customers-1.csv", [customer(1)])
    (event,) = events(await pull(files_config(), "customers"))
    assert event.type == EVENT_TYPE_IDENTIFY
    assert event.user_id == "c1"
    assert [(i.type, i.value) for i in event.identities] == [("email", "c1@example.com")]
    assert dict(event.traits) == {
        "first_name": "Ada1",
        "lifetime_value": "12.50",
        "vip": True,
        "source_system": "legacy-crm",
        "email": "c1@example.com",
    }
    assert event.timestamp.ToDatetime(UTC) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert event.source == "files"


async def test_a_bad_row_is_skipped_with_its_line_and_reason_and_the_rest_imports(
    import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    rows = [
        customer(1),
        customer(2, ltv="12.5O"),
        customer(3, id="", email="nobody"),
        customer(4, updated_at="yesterday"),
        customer(5),
    ]
    write_customers(import_dir, "customers-1.csv", rows)
    batches = await pull(files_config(batch_size=100), "customers")
    assert [e.user_id for e in events(batches)] == ["c1", "c5"]
    assert skipped(batches) == [
        "customers-1.csv line 3: column 'ltv': not a decimal",
        "customers-1.csv line 4: column 'email': not an email",
        "customers-1.csv line 5: column 'updated_at': not a timestamp",
    ]
    assert "12.5O" not in " ".join(skipped(batches))


async def test_csv_rows_with_more_or_fewer_fields_than_the_header_are_skipped(
    import_dir: Path, files_config: MakeConfig
) -> None:
    (import_dir / "customers-1.csv").write_text(
        "id,email,first_name,ltv,vip,updated_at\n"
        "c1,a@example.com,A,1,no,2026-03-01T12:00:00Z,surplus\n"
        "c2,b@example.com,B\n"
        "c3,c@example.com,C,1,no,2026-03-01T12:00:00Z\n"
    )
    batches = await pull(files_config(), "customers")
    assert [e.user_id for e in events(batches)] == ["c3"]
    assert skipped(batches) == [
        "customers-1.csv line 2: 1 fields more than the header",
        "customers-1.csv line 3: fewer fields than the header",
    ]


async def test_jsonl_reads_nested_columns_constants_and_json(
    import_dir: Path, files_config: MakeConfig
) -> None:
    (import_dir / "orders").mkdir()
    lines = [
        {
            "id": "o1",
            "customer": {"id": "c1", "email": "a@example.com"},
            "total": "19.99",
            "created_at": 1772366400,
            "items": [{"sku": "S1", "qty": 2}],
        },
        "not json",
        {"id": "o2", "customer": {"id": "c2"}, "created_at": "2026-03-01T12:00:00+01:00"},
    ]
    (import_dir / "orders" / "march.jsonl").write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n"
    )
    batches = await pull(files_config(), "orders")
    (order,) = events(batches)
    assert order.type == EVENT_TYPE_TRACK
    assert order.event == "Order Completed"
    assert order.message_id == "files:orders:o1"
    assert order.properties["revenue"] == "19.99"
    assert order.properties["currency"] == "EUR"
    assert order.properties["items"][0]["sku"] == "S1"
    assert order.timestamp.ToDatetime(UTC) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert skipped(batches) == [
        "orders/march.jsonl line 2: not JSON (JSONDecodeError)",
        "orders/march.jsonl line 3: column 'total': missing",
    ]


async def test_parquet_reads_typed_columns_and_resumes_inside_a_row_group(
    import_dir: Path, files_config: MakeConfig
) -> None:
    (import_dir / "events").mkdir()
    count = 30
    table = pa.table(
        {
            "name": ["Product Viewed"] * count,
            "device": [f"d{n}" for n in range(count)],
            "user": [None] * count,
            "ts": pa.array(
                [datetime(2026, 3, 1, tzinfo=UTC)] * count, pa.timestamp("us", tz="UTC")
            ),
            "path": [f"/p/{n}" for n in range(count)],
            "value": pa.array([Decimal("1.5")] * count, pa.decimal128(5, 2)),
        }
    )
    pq.write_table(table, import_dir / "events" / "part-0.parquet", row_group_size=12)
    batches = await pull(files_config(batch_size=5), "events")
    assert [e.anonymous_id for e in events(batches)] == [f"d{n}" for n in range(count)]
    assert events(batches)[0].properties["value"] == 1.5
    resumed = await pull(files_config(batch_size=5), "events", batches[2].cursor)
    assert [e.anonymous_id for e in events(resumed)] == [f"d{n}" for n in range(15, count)]


async def test_a_file_that_changed_while_in_progress_is_not_resumed(
    import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    path = write_customers(import_dir, "customers-1.csv", [customer(n) for n in range(20)])
    first = await anext(FilesSource(files_config()).pull("customers"))
    path.write_text(path.read_text().replace("Ada3", "Grace3"))
    with pytest.raises(ValueError, match=r"customers-1\.csv changed") as caught:
        await pull(files_config(), "customers", first.cursor)
    assert "connectors reset files" in str(caught.value)


async def test_a_finished_file_that_changed_is_imported_again_with_stable_ids(
    import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    path = write_customers(import_dir, "customers-1.csv", [customer(1), customer(2)])
    batches = await pull(files_config(), "customers")
    before = [e.message_id for e in events(batches)]
    assert not events(await pull(files_config(), "customers", batches[-1].cursor))
    write_customers(import_dir, path.name, [customer(1), customer(2, first_name="Grace")])
    again = [
        e.message_id for e in events(await pull(files_config(), "customers", batches[-1].cursor))
    ]
    assert again[0] == before[0]
    assert again[1] != before[1]


async def test_identical_rows_get_distinct_stable_ids(
    import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    write_customers(import_dir, "customers-1.csv", [customer(1)] * 3 + [customer(2)] * 9)
    first = await pull(files_config(batch_size=4), "customers")
    ids = [e.message_id for e in events(first)]
    assert len(set(ids)) == 12
    resumed = await pull(files_config(batch_size=4), "customers", first[0].cursor)
    assert [e.message_id for e in events(resumed)] == ids[4:]


async def test_files_outside_the_directory_are_never_read(
    tmp_path: Path, import_dir: Path, files_config: MakeConfig, write_customers: Writer
) -> None:
    outside = write_customers(tmp_path, "customers-secret.csv", [customer(9)])
    (import_dir / "customers-link.csv").symlink_to(outside)
    write_customers(import_dir, "customers-1.csv", [customer(1)])
    assert [e.user_id for e in events(await pull(files_config(), "customers"))] == ["c1"]


def test_patterns_that_climb_out_of_the_directory_are_refused(import_dir: Path) -> None:
    mapping = {
        "streams": {
            "x": {"files": "../*.csv", "kind": "identify", "user_id": "id", "timestamp": "t"}
        }
    }
    with pytest.raises(ConnectorConfigError) as caught:
        load_config(
            "files", FilesConfig, {"directory": str(import_dir), "mapping": mapping}, environ={}
        )
    assert caught.value.field == "mapping.streams.x.files"


def test_a_mapping_problem_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(
        "streams:\n  orders:\n    files: o.csv\n    user_id: u\n    timestamp: t\n"
        "    properties:\n      total: {column: t, type: money}\n"
    )
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("files", FilesConfig, {"mapping_file": str(path)}, environ={})
    assert "mapping.streams.orders.properties.total.type" in str(caught.value)


def test_unreadable_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("streams: [unclosed\n")
    with pytest.raises(ConnectorConfigError) as caught:
        load_config("files", FilesConfig, {"mapping_file": str(path)}, environ={})
    assert caught.value.field == "mapping_file"


async def test_an_unknown_stream_names_the_known_ones(files_config: MakeConfig) -> None:
    with pytest.raises(ValueError, match="known: customers, events, orders"):
        await pull(files_config(), "refunds")
