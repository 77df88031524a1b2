"""`mailwright connectors sync files`: rows into ingest, bad rows reported, resumable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from mailwright.cli import cli
from mailwright.testing.platform import RunningMailwright


async def sync(import_dir: Path, mapping: Path, platform: RunningMailwright, data: Path) -> Result:
    env = {
        "MAILWRIGHT_CONNECTOR_FILES_DIRECTORY": str(import_dir),
        "MAILWRIGHT_CONNECTOR_FILES_MAPPING_FILE": str(mapping),
        "MAILWRIGHT_TOKEN": platform.token("acme", ["events:write"]),
        "MAILWRIGHT_DATA_DIR": str(data),
    }
    args = [
        "connectors",
        "sync",
        "files",
        "--stream",
        "customers",
        "--workspace",
        "acme",
        "--address",
        platform.address,
    ]
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


def row(n: int, **fields: Any) -> dict[str, Any]:
    values = {
        "id": f"c{n}",
        "email": f"c{n}@example.com",
        "first_name": f"A{n}",
        "ltv": "1.00",
        "vip": "no",
        "updated_at": "2026-03-01T12:00:00Z",
    }
    values.update(fields)
    return values


async def test_sync_imports_good_rows_reports_bad_ones_and_exits_1(
    import_dir: Path,
    mapping_file: Path,
    write_customers: Callable[..., Path],
    mailwright_platform: RunningMailwright,
    tmp_path: Path,
) -> None:
    write_customers(import_dir, "customers-1.csv", [row(1), row(2, vip="maybe"), row(3)])
    first = await sync(import_dir, mapping_file, mailwright_platform, tmp_path)
    assert first.exit_code == 1, first.output
    assert "2 accepted" in first.output
    assert "skipped customers-1.csv line 3: column 'vip': not a boolean" in first.output
    published = await mailwright_platform.wait_for_events(2)
    assert {e.user_id for e in published} == {"c1", "c3"}

    write_customers(import_dir, "customers-2.csv", [row(4)])
    second = await sync(import_dir, mapping_file, mailwright_platform, tmp_path)
    assert second.exit_code == 0, second.output
    assert "1 events" in second.output  # only the new file
