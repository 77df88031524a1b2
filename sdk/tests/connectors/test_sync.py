"""`run_sync`: batches go to ingest, each cursor is saved after its events were accepted,
and a sync that stops resumes where it stopped — against ingest running in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from google.protobuf import struct_pb2

from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event
from mailwright.connectors import ErrorKind, ProviderError, SourceBatch
from mailwright.connectors.state import CursorKey, CursorStore
from mailwright.connectors.sync import (
    MAX_BATCH_EVENTS,
    IngestPublisher,
    PublishResult,
    SyncError,
    chunks,
    run_sync,
)
from mailwright.testing.platform import RunningMailwright

KEY = CursorKey("acme", "ledger", "people")


def person(n: int) -> Event:
    traits = struct_pb2.Struct()
    traits.update({"n": n})
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=f"ledger:person:{n}",
        anonymous_id=f"ledger:{n}",
        traits=traits,
        source="ledger",
    )


class Ledger:
    """A source over a list, three records a page; fails at page `fail_at` if set."""

    streams: Sequence[str] = ("people",)

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.started_from: list[str | None] = []

    async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
        if stream not in self.streams:
            raise ValueError(f"unknown stream {stream!r}; known: people")
        self.started_from.append(cursor)
        offset = int(cursor or 0)
        page = 0
        while offset < self.count:
            if self.fail_at is not None and page == self.fail_at:
                raise ProviderError(ErrorKind.RATE_LIMITED, "daily limit", code="DAILY")
            events = [person(n) for n in range(offset, min(offset + 3, self.count))]
            offset += len(events)
            page += 1
            yield SourceBatch(stream, tuple(events), str(offset), total=self.count)
        if self.count == 0:
            yield SourceBatch(stream, (), "0", total=0)

    async def aclose(self) -> None:
        return None


class Collector:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, events: Sequence[Event]) -> PublishResult:
        self.published.extend(e.message_id for e in events)
        return PublishResult(accepted=len(events))


@pytest.fixture
def store(tmp_path: Path) -> AsyncIterator[CursorStore]:
    opened = CursorStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield opened  # type: ignore[misc]
    opened.close()


async def test_every_batch_is_published_and_the_last_cursor_saved(store: CursorStore) -> None:
    collector = Collector()
    progress = await run_sync(Ledger(8), "people", key=KEY, store=store, publisher=collector)
    assert collector.published == [f"ledger:person:{n}" for n in range(8)]
    assert (progress.batches, progress.events, progress.accepted) == (3, 8, 8)
    assert progress.total == 8
    assert await store.load(KEY) == "8"


async def test_a_sync_that_fails_resumes_after_the_last_accepted_batch(
    store: CursorStore,
) -> None:
    collector = Collector()
    with pytest.raises(ProviderError):
        await run_sync(Ledger(9, fail_at=2), "people", key=KEY, store=store, publisher=collector)
    assert await store.load(KEY) == "6"
    resumed = Ledger(9)
    await run_sync(resumed, "people", key=KEY, store=store, publisher=collector)
    assert resumed.started_from == ["6"]
    assert collector.published == [f"ledger:person:{n}" for n in range(9)]


async def test_a_full_sync_ignores_the_stored_cursor(store: CursorStore) -> None:
    await store.save(KEY, "6")
    source = Ledger(9)
    await run_sync(source, "people", key=KEY, store=store, publisher=Collector(), full=True)
    assert source.started_from == [None]


async def test_progress_is_reported_after_each_batch(store: CursorStore) -> None:
    seen: list[int] = []
    await run_sync(
        Ledger(7),
        "people",
        key=KEY,
        store=store,
        publisher=Collector(),
        on_progress=lambda p: seen.append(p.events),
    )
    assert seen == [3, 6, 7]


async def test_a_batch_of_another_stream_stops_the_sync(store: CursorStore) -> None:
    class Confused(Ledger):
        async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
            yield SourceBatch("orders", (person(1),), "1")

    with pytest.raises(SyncError, match="orders"):
        await run_sync(Confused(1), "people", key=KEY, store=store, publisher=Collector())
    assert await store.load(KEY) is None


def test_chunks_respect_the_ingest_batch_limits() -> None:
    events = [person(n) for n in range(MAX_BATCH_EVENTS * 2 + 5)]
    split = chunks(events)
    assert [len(c) for c in split] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 5]
    big = Event(type=EVENT_TYPE_TRACK, event="x", anonymous_id="a", name="n" * 2_100_000)
    assert [len(c) for c in chunks([big, big, big])] == [1, 1, 1]


async def test_ingest_accepts_the_events_of_a_sync(
    store: CursorStore, mailwright_platform: RunningMailwright
) -> None:
    clients = mailwright_platform.clients(mailwright_platform.token("acme", ["events:write"]))
    try:
        publisher = IngestPublisher(clients.ingest, "acme")
        progress = await run_sync(Ledger(5), "people", key=KEY, store=store, publisher=publisher)
    finally:
        await clients.close()
    assert progress.accepted == 5
    published = await mailwright_platform.wait_for_events(5)
    assert {e.message_id for e in published} == {f"ledger:person:{n}" for n in range(5)}
    assert {e.workspace for e in published} == {"acme"}
    assert {e.source for e in published} == {"ledger"}


async def test_ingest_rejections_are_counted_with_their_reasons(
    store: CursorStore, mailwright_platform: RunningMailwright
) -> None:
    class Nameless(Ledger):
        async def pull(self, stream: str, cursor: str | None = None) -> AsyncIterator[SourceBatch]:
            nameless = Event(type=EVENT_TYPE_TRACK, message_id="x")
            yield SourceBatch(stream, (person(1), nameless), "1")

    clients = mailwright_platform.clients(mailwright_platform.token("acme", ["events:write"]))
    try:
        publisher = IngestPublisher(clients.ingest, "acme")
        progress = await run_sync(Nameless(2), "people", key=KEY, store=store, publisher=publisher)
    finally:
        await clients.close()
    assert (progress.accepted, progress.rejected) == (1, 1)
    assert "user_id" in progress.rejections[0].reason
    assert await store.load(KEY) == "1"


async def test_a_token_for_another_workspace_stops_the_sync_with_a_clear_error(
    store: CursorStore, mailwright_platform: RunningMailwright
) -> None:
    clients = mailwright_platform.clients(mailwright_platform.token("other", ["events:write"]))
    try:
        publisher = IngestPublisher(clients.ingest, "acme")
        with pytest.raises(SyncError, match=r"events:write|workspace"):
            await run_sync(Ledger(2), "people", key=KEY, store=store, publisher=publisher)
    finally:
        await clients.close()
    assert await store.load(KEY) is None
