"""Running a source: pull a stream from its stored cursor, hand the events to ingest, and
save each batch's cursor once its events were accepted.

`run_sync` is the loop that `mailwright connectors sync` (and any scheduler) runs; it
knows nothing of gRPC, which sits behind the `Publisher` protocol (`IngestPublisher`
sends `IngestBatch` requests). Because the cursor is saved only after a batch's events
were accepted, a sync that stops anywhere — a crash, a provider's daily limit, Ctrl-C —
resumes at the first batch that was not, and at worst repeats one batch, which ingest
deduplicates by message id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors.source import Source
from mailwright.connectors.state import CursorKey, CursorStore
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc

log = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 1000
"""IngestBatch takes at most 1,000 events …"""
MAX_BATCH_BYTES = 4 * 1024 * 1024 - 64 * 1024
"""… and 4 MiB; a margin is left for the request's own fields."""
KEPT_REJECTIONS = 20


@dataclass(frozen=True)
class Rejection:
    """An event ingest refused, and why (its field violations)."""

    message_id: str
    reason: str


@dataclass(frozen=True)
class PublishResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: tuple[Rejection, ...] = ()


class Publisher(Protocol):
    """Where a sync's events go (ingest, in production)."""

    async def publish(self, events: Sequence[Event]) -> PublishResult: ...


class SyncError(Exception):
    """The sync cannot go on: ingest refused the credentials, or cannot be reached."""


@dataclass
class SyncProgress:
    """What a sync has done so far; `total` is the provider's estimate when it gives one."""

    connector: str
    stream: str
    resumed_from: str | None = None
    batches: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    total: int | None = None
    cursor: str | None = None
    rejections: list[Rejection] = field(default_factory=list)
    skipped: int = 0
    """Records the source could not read (`SourceBatch.skipped`)."""
    skips: list[str] = field(default_factory=list)


async def run_sync(
    source: Source,
    stream: str,
    *,
    key: CursorKey,
    store: CursorStore,
    publisher: Publisher,
    full: bool = False,
    on_progress: Callable[[SyncProgress], None] | None = None,
) -> SyncProgress:
    """Pull `stream` from where `key`'s last sync stopped (or from the start when `full`).

    Each batch's events are published, then its cursor is saved. Raises what the source
    raises (`ProviderError`, `ValueError` for an unknown stream) and `SyncError`; what was
    saved before stays saved.
    """
    cursor = None if full else await store.load(key)
    progress = SyncProgress(key.connector, stream, resumed_from=cursor, cursor=cursor)
    log.info(
        "sync %s/%s of workspace %s %s",
        key.connector,
        stream,
        key.workspace,
        "resuming" if cursor else "from the start",
    )
    async for batch in source.pull(stream, cursor):
        if batch.stream != stream:
            raise SyncError(f"{key.connector} yielded a batch of {batch.stream!r}, not {stream!r}")
        if batch.events:
            result = await publisher.publish(batch.events)
            progress.accepted += result.accepted
            progress.duplicates += result.duplicates
            progress.rejected += len(result.rejected)
            room = KEPT_REJECTIONS - len(progress.rejections)
            progress.rejections.extend(result.rejected[: max(room, 0)])
        if batch.skipped:
            progress.skipped += len(batch.skipped)
            room = KEPT_REJECTIONS - len(progress.skips)
            progress.skips.extend(batch.skipped[: max(room, 0)])
        await store.save(key, batch.cursor)
        progress.batches += 1
        progress.events += len(batch.events)
        progress.cursor = batch.cursor
        if batch.total is not None:
            progress.total = batch.total
        if on_progress is not None:
            on_progress(progress)
    log.info(
        "sync %s/%s done: %d events, %d accepted, %d duplicates, %d rejected, %d skipped",
        key.connector,
        stream,
        progress.events,
        progress.accepted,
        progress.duplicates,
        progress.rejected,
        progress.skipped,
    )
    return progress


def chunks(events: Sequence[Event]) -> list[list[Event]]:
    """`events` split into IngestBatch-sized requests (≤ 1,000 events, < 4 MiB each)."""
    out: list[list[Event]] = []
    current: list[Event] = []
    size = 0
    for event in events:
        length = event.ByteSize() + 8
        if length > MAX_BATCH_BYTES:
            raise SyncError(
                f"event {event.message_id!r} is {length} bytes, more than a batch may carry"
            )
        if current and (len(current) >= MAX_BATCH_EVENTS or size + length > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(event)
        size += length
    if current:
        out.append(current)
    return out


class IngestPublisher:
    """Publishes a sync's events through ingest's `IngestBatch` for one workspace."""

    def __init__(self, ingest: ingest_pb2_grpc.IngestServiceAsyncStub, workspace: str) -> None:
        self.ingest = ingest
        self.parent = f"workspaces/{workspace}"

    async def publish(self, events: Sequence[Event]) -> PublishResult:
        accepted = duplicates = 0
        rejected: list[Rejection] = []
        for chunk in chunks(events):
            # a sync imports history: old timestamps are accepted, and trigger nothing now
            request = ingest_pb2.IngestBatchRequest(parent=self.parent, events=chunk, backfill=True)
            try:
                response = await self.ingest.IngestBatch(request)
            except grpc.aio.AioRpcError as error:
                raise SyncError(_explain(error)) from error
            for result in response.results:
                if result.status == ingest_pb2.EVENT_STATUS_ACCEPTED:
                    accepted += 1
                elif result.status == ingest_pb2.EVENT_STATUS_DUPLICATE:
                    duplicates += 1
                else:
                    reason = "; ".join(f"{v.field}: {v.description}" for v in result.violations)
                    rejected.append(Rejection(result.message_id, reason or "rejected"))
        return PublishResult(accepted, duplicates, tuple(rejected))


def _explain(error: grpc.aio.AioRpcError) -> str:
    code = error.code()
    details = error.details() or ""
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"ingest refused the token ({details}); pass --token or set MAILWRIGHT_TOKEN"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return f"the token may not write this workspace's events ({details}); needs events:write"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"ingest is unreachable ({details}); the cursor is saved, run again to resume"
    return f"ingest answered {code.name}: {details}"
