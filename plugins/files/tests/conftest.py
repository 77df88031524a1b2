"""Import directories and mappings for the files connector's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mailwright.connectors import load_config
from mailwright_files.config import FilesConfig

MAPPING: dict[str, Any] = {
    "streams": {
        "customers": {
            "files": "customers-*.csv",
            "kind": "identify",
            "user_id": "id",
            "email": "email",
            "timestamp": {"column": "updated_at", "type": "timestamp"},
            "traits": {
                "first_name": "first_name",
                "lifetime_value": {"column": "ltv", "type": "decimal"},
                "vip": {"column": "vip", "type": "boolean"},
                "source_system": {"value": "legacy-crm"},
            },
        },
        "orders": {
            "files": ["orders/*.jsonl"],
            "kind": "track",
            "event": {"value": "Order Completed"},
            "user_id": "customer.id",
            "email": "customer.email",
            "timestamp": {"column": "created_at", "type": "timestamp"},
            "message_id": "id",
            "properties": {
                "order_id": "id",
                "revenue": {"column": "total", "type": "decimal", "required": True},
                "currency": {"value": "EUR"},
                "items": {"column": "items", "type": "json"},
            },
        },
        "events": {
            "files": "events/*.parquet",
            "kind": "track",
            "event": "name",
            "anonymous_id": "device",
            "user_id": "user",
            "timestamp": "ts",
            "properties": {"path": "path", "value": {"column": "value", "type": "float"}},
        },
    }
}


@pytest.fixture
def import_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "imports"
    directory.mkdir()
    return directory


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(MAPPING))
    return path


@pytest.fixture
def files_config(import_dir: Path, mapping_file: Path) -> Callable[..., FilesConfig]:
    def make(**overrides: Any) -> FilesConfig:
        values: dict[str, Any] = {
            "directory": str(import_dir),
            "mapping_file": str(mapping_file),
            "batch_size": 7,
        }
        values.update(overrides)
        return load_config("files", FilesConfig, values, environ={})

    return make


WriteCustomers = Callable[[Path, str, list[dict[str, Any]]], Path]


@pytest.fixture
def write_customers() -> WriteCustomers:
    """Writes a customers CSV export: `write_customers(directory, name, rows)`."""
    return customers_csv


def customers_csv(directory: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    path = directory / name
    header = "id,email,first_name,ltv,vip,updated_at\n"
    body = "".join(
        f"{r['id']},{r['email']},{r['first_name']},{r['ltv']},{r['vip']},{r['updated_at']}\n"
        for r in rows
    )
    path.write_text(header + body)
    return path
