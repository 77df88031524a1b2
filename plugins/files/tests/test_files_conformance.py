"""The files source passes the kit's source suite (as a local source)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mailwright.connectors import Source
from mailwright.testing.conformance import SourceConformance, SourceHarness
from mailwright_files.config import FilesConfig
from mailwright_files.source import FilesSource


class CustomersHarness:
    connector = "files"
    stream = "customers"
    events_per_record = 1
    local = True

    def __init__(self, directory: Path, config: FilesConfig, write: Callable[..., Path]) -> None:
        self.directory, self.config, self.write = directory, config, write
        self.page_size = config.batch_size
        self.people: dict[int, dict[str, object]] = {}
        self.files = 0

    def open(self) -> Source:
        return FilesSource(self.config)

    def _export(self, rows: list[dict[str, object]]) -> None:
        self.files += 1
        self.write(self.directory, f"customers-{self.files:04d}.csv", rows)

    def seed(self, count: int) -> None:
        start = len(self.people)
        rows = []
        for n in range(start, start + count):
            self.people[n] = {
                "id": f"c{n}",
                "email": f"c{n}@example.com",
                "first_name": f"Ada{n}",
                "ltv": "10.50",
                "vip": "no",
                "updated_at": "2026-03-01T12:00:00Z",
            }
            rows.append(self.people[n])
        self._export(rows)

    def change(self, count: int) -> None:
        rows = []
        for n in list(self.people)[:count]:
            self.people[n] = {**self.people[n], "vip": "yes", "updated_at": "2026-03-02T09:00:00Z"}
            rows.append(self.people[n])
        self._export(rows)  # a new export holding the changed customers

    def rate_limit(self, times: int) -> float | None:
        raise AssertionError("a local source is never throttled")

    def server_error(self, times: int) -> None:
        raise AssertionError("a local source has no server")

    def refuse_credentials(self) -> None:
        raise AssertionError("a local source has no credentials")


class TestFilesCustomers(SourceConformance):
    @pytest.fixture
    def source_harness(
        self,
        import_dir: Path,
        files_config: Callable[..., FilesConfig],
        write_customers: Callable[..., Path],
    ) -> SourceHarness:
        return CustomersHarness(import_dir, files_config(), write_customers)
