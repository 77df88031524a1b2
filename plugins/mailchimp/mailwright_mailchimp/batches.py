"""Mailchimp batch operations: many API calls in one request, run by Mailchimp later.

`POST /batches` with `{"operations": [{method, path, body, operation_id}]}` answers a
batch (`id`, `status`); `GET /batches/{id}` is polled until `status` is `finished`
(`pending` → `preprocessing` → `started` → `finalizing` → `finished`); its
`response_body_url` is then a gzipped tar archive of JSON files, each an array of
`{"status_code", "operation_id", "response"}` where `response` is the operation's JSON
answer as a string. The archive sits on a storage host: it is fetched without the API
key, read in memory (regular files only, bounded in size), never extracted to disk.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mailwright.connectors import ErrorKind, ProviderError
from mailwright.connectors import http as connector_http
from mailwright_mailchimp.client import MailchimpHttp
from mailwright_mailchimp.config import LOCAL_HOSTS, MailchimpConfig

log = logging.getLogger(__name__)

MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
FINISHED = "finished"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    body: Mapping[str, Any] | None = None

    def encoded(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "operation_id": self.operation_id,
        }
        if self.body is not None:
            item["body"] = json.dumps(self.body)
        return item


@dataclass(frozen=True)
class OperationResult:
    operation_id: str
    status_code: int
    response: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def read_results(archive: bytes) -> dict[str, OperationResult]:
    """Operation id → result, from a batch's results archive (tar.gz of JSON arrays)."""
    results: dict[str, OperationResult] = {}
    unpacked = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile() or not member.name.endswith(".json"):
                    continue
                unpacked += member.size
                if unpacked > MAX_UNPACKED_BYTES:
                    raise ValueError("batch results unpack to more than 512 MiB")
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                for item in _items(json.loads(handle.read())):
                    results[item.operation_id] = item
    except (tarfile.TarError, OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProviderError(
            ErrorKind.TRANSIENT, f"mailchimp batch results cannot be read: {type(e).__name__}"
        ) from None
    return results


def _items(payload: Any) -> list[OperationResult]:
    if not isinstance(payload, list):
        raise ValueError("batch results file is not a list")
    items = []
    for entry in payload:
        if not isinstance(entry, Mapping):
            continue
        operation_id, status = entry.get("operation_id"), entry.get("status_code")
        if not isinstance(operation_id, str) or not isinstance(status, int):
            continue
        raw = entry.get("response")
        try:
            response = json.loads(raw) if isinstance(raw, str) and raw else {}
        except json.JSONDecodeError:
            response = {}
        items.append(
            OperationResult(operation_id, status, response if isinstance(response, Mapping) else {})
        )
    return items


def problem_text(response: Mapping[str, Any]) -> str:
    title = response.get("title")
    detail = response.get("detail")
    if not isinstance(title, str):
        return "refused"
    return f"{title}: {detail}" if isinstance(detail, str) and detail else title


class BatchRunner:
    """Submits operations in batches of `batch_operations`, waits, reads the results."""

    def __init__(self, client: MailchimpHttp, config: MailchimpConfig) -> None:
        self.client = client
        self.size = config.batch_operations
        self.interval = config.batch_poll_interval.total_seconds()
        self.timeout = config.batch_timeout.total_seconds()

    async def run(self, operations: Sequence[Operation]) -> dict[str, OperationResult]:
        results: dict[str, OperationResult] = {}
        batch_ids = []
        for start in range(0, len(operations), self.size):
            chunk = operations[start : start + self.size]
            body = await self.client.json(
                "POST", "/batches", json={"operations": [op.encoded() for op in chunk]}
            )
            batch_ids.append(_field(body, "id"))
        for batch_id in batch_ids:
            results.update(await self._wait(batch_id))
        missing = [op.operation_id for op in operations if op.operation_id not in results]
        if missing:
            raise ProviderError(
                ErrorKind.TRANSIENT,
                f"mailchimp batch results lack {len(missing)} operations (first {missing[0]})",
            )
        return results

    async def _wait(self, batch_id: str) -> dict[str, OperationResult]:
        waited = 0.0
        started = time.monotonic()
        while True:
            batch = await self.client.json("GET", f"/batches/{batch_id}")
            status = _field(batch, "status")
            if status == FINISHED:
                break
            if waited >= self.timeout or time.monotonic() - started >= self.timeout:
                raise ProviderError(
                    ErrorKind.TRANSIENT,
                    f"mailchimp batch {batch_id} still {status} after {self.timeout:.0f}s",
                )
            await connector_http.sleep(self.interval)
            waited += self.interval
        log.info(
            "mailchimp batch %s finished: %s operations, %s errored",
            batch_id,
            batch.get("total_operations"),
            batch.get("errored_operations"),
        )
        url = batch.get("response_body_url")
        if not isinstance(url, str) or not url:
            return {}
        parts = urlsplit(url)
        if parts.scheme != "https" and not (
            parts.scheme == "http" and parts.hostname in LOCAL_HOSTS
        ):
            raise ProviderError(ErrorKind.TRANSIENT, "mailchimp batch results URL is not https")
        try:
            archive = await self.client.download(url, MAX_ARCHIVE_BYTES)
        except ValueError as error:
            raise ProviderError(ErrorKind.TRANSIENT, str(error)) from None
        return read_results(archive)


def _field(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value:
        raise ProviderError(ErrorKind.TRANSIENT, f"mailchimp answered a batch without {name}")
    return value
