"""Bulk API 2.0 upserts: a CSV in, per-row results out.

1. `POST /jobs/ingest` with `object`, `externalIdFieldName`, `operation: upsert`,
   `contentType: CSV`, `lineEnding: LF` → the job (`id`, `state: Open`);
2. `PUT /jobs/ingest/{id}/batches` with the CSV (`Content-Type: text/csv`) → 201;
3. `PATCH /jobs/ingest/{id}` with `{"state": "UploadComplete"}`;
4. `GET /jobs/ingest/{id}` until `state` is `JobComplete`, `Failed` or `Aborted`;
5. `GET /jobs/ingest/{id}/successfulResults/` (`sf__Id`, `sf__Created`, the columns) and
   `/failedResults/` (`sf__Id`, `sf__Error`, the columns).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors import http as connector_http
from mailwright_salesforce.client import SalesforceHttp
from mailwright_salesforce.config import SalesforceConfig

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass(frozen=True)
class RowResult:
    """One row's outcome: the record id, or the error Salesforce gave."""

    key: str
    record_id: str | None
    error: str | None


def to_csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell(row.get(c)) for c in columns])
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BulkUpsert:
    """Upserts rows of one object through Bulk API 2.0, keyed by an external id."""

    def __init__(self, client: SalesforceHttp, config: SalesforceConfig) -> None:
        self.client = client
        self.interval = config.bulk_poll_interval.total_seconds()
        self.timeout = config.bulk_timeout.total_seconds()

    async def run(
        self,
        sobject: str,
        external_id: str,
        columns: Sequence[str],
        rows: Sequence[Mapping[str, Any]],
    ) -> dict[str, RowResult]:
        jobs = f"{self.client.data}/jobs/ingest"
        job = await self.client.json(
            "POST",
            jobs,
            json={
                "object": sobject,
                "externalIdFieldName": external_id,
                "contentType": "CSV",
                "operation": "upsert",
                "lineEnding": "LF",
            },
        )
        job_id = job.get("id") if isinstance(job, Mapping) else None
        if not isinstance(job_id, str):
            raise ProviderError(ErrorKind.TRANSIENT, "salesforce answered a job without id")
        await self.client.request(
            "PUT",
            f"{jobs}/{job_id}/batches",
            content=to_csv(columns, rows),
            headers={"Content-Type": "text/csv"},
        )
        await self.client.json("PATCH", f"{jobs}/{job_id}", json={"state": "UploadComplete"})
        state = await self._wait(f"{jobs}/{job_id}")
        if state.get("state") != "JobComplete":
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"salesforce bulk job {job_id} ended {state.get('state')}: "
                f"{state.get('errorMessage') or 'no message'}",
            )
        results: dict[str, RowResult] = {}
        for kind in ("successfulResults", "failedResults"):
            response = await self.client.request("GET", f"{jobs}/{job_id}/{kind}/")
            for row in csv.DictReader(io.StringIO(response.content.decode("utf-8"))):
                key = row.get(external_id, "")
                if kind == "successfulResults":
                    results[key] = RowResult(key, row.get("sf__Id") or None, None)
                else:
                    results[key] = RowResult(key, None, row.get("sf__Error") or "failed")
        log.info(
            "salesforce bulk job %s: %s processed, %s failed",
            job_id,
            state.get("numberRecordsProcessed"),
            state.get("numberRecordsFailed"),
        )
        return results

    async def _wait(self, url: str) -> Mapping[str, Any]:
        waited = 0.0
        started = time.monotonic()
        while True:
            state = await self.client.json("GET", url)
            if isinstance(state, Mapping) and state.get("state") in FINAL_STATES:
                return state
            if waited >= self.timeout or time.monotonic() - started >= self.timeout:
                current = state.get("state") if isinstance(state, Mapping) else "?"
                raise ProviderError(
                    ErrorKind.TRANSIENT,
                    f"salesforce bulk job still {current} after {self.timeout:.0f}s",
                )
            await connector_http.sleep(self.interval)
            waited += self.interval
