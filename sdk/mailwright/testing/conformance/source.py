"""The conformance suite of the source capability.

A plugin's test module subclasses `SourceConformance` and provides a fixture named
`source_harness` returning a `SourceHarness`: how to open the source against the plugin's
fake server, seed and change records there, and make the fake throttle, fail or refuse.

    class TestAcmeContacts(SourceConformance):
        @pytest.fixture
        def source_harness(self, fake_server) -> SourceHarness:
            return AcmeHarness(fake_server(acme_app()), stream="contacts")

Every test below then runs against the connector: the stream is pulled to its end across
pages; events carry a source, an identity and a stable, unique message id; a pull resumed
from a batch's cursor continues after that batch; an incremental pull yields only what
changed; throttling is waited out for as long as the provider asks; server errors are
retried; refused credentials raise `ProviderError(AUTH)`.
"""

from __future__ import annotations

from typing import Protocol

import pytest

from mailwright.common.v1.event_pb2 import EVENT_TYPE_UNSPECIFIED
from mailwright.connectors import ErrorKind, ProviderError, Source, SourceBatch
from mailwright.testing.fakes import RecordedWaits


class SourceHarness(Protocol):
    """What the source suite needs to know and do for one connector and stream.

    A harness may also have `local = True`, for sources that read no provider (files on
    disk): the suite then skips its tests of throttling, server errors and credentials,
    and `rate_limit`, `server_error` and `refuse_credentials` are never called.
    """

    connector: str
    """The connector's name; every event's `source`."""
    stream: str
    """The stream under test."""
    page_size: int
    """Records per page the source asks the provider for (the suite seeds several pages)."""
    events_per_record: int
    """Events one record becomes (1 for most streams)."""

    def open(self) -> Source:
        """A new source configured to talk to the fake server."""
        ...

    def seed(self, count: int) -> None:
        """Add `count` new records to the fake's stream."""
        ...

    def change(self, count: int) -> None:
        """Modify `count` existing records, as a user editing them would (newer update time)."""
        ...

    def rate_limit(self, times: int) -> float | None:
        """Make the next `times` requests answer as the provider throttles; return the wait
        (seconds) it asks for, or None when it gives none."""
        ...

    def server_error(self, times: int) -> None:
        """Make the next `times` requests fail with a 5xx, as the provider's do."""
        ...

    def refuse_credentials(self) -> None:
        """Make every request answer as the provider does to a revoked or wrong token."""
        ...


async def pull_all(source: Source, stream: str, cursor: str | None = None) -> list[SourceBatch]:
    """Every batch of a pull, to its end."""
    return [batch async for batch in source.pull(stream, cursor)]


def message_ids(batches: list[SourceBatch]) -> list[str]:
    return [event.message_id for batch in batches for event in batch.events]


class SourceConformance:
    """Tests every source must pass; subclass it and provide a `source_harness` fixture."""

    resume_may_repeat_last_batch = False
    """Set True when resuming from a cursor may yield its batch's records again."""

    async def _pull(self, harness: SourceHarness, cursor: str | None = None) -> list[SourceBatch]:
        source = harness.open()
        try:
            return await pull_all(source, harness.stream, cursor)
        finally:
            await source.aclose()

    def _seed_pages(self, harness: SourceHarness, pages: float = 2.5) -> int:
        count = max(3, int(harness.page_size * pages))
        harness.seed(count)
        return count

    @pytest.mark.asyncio
    async def test_declares_the_stream(self, source_harness: SourceHarness) -> None:
        source = source_harness.open()
        try:
            assert source_harness.stream in source.streams
        finally:
            await source.aclose()

    @pytest.mark.asyncio
    async def test_unknown_stream_is_refused_naming_the_known_ones(
        self, source_harness: SourceHarness
    ) -> None:
        source = source_harness.open()
        try:
            with pytest.raises(ValueError, match=source_harness.stream):
                await pull_all(source, "no-such-stream")
        finally:
            await source.aclose()

    @pytest.mark.asyncio
    async def test_pull_reaches_the_end_across_pages(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        count = self._seed_pages(source_harness)
        batches = await self._pull(source_harness)
        assert sum(1 for batch in batches if batch.events) >= 2, "several pages, several batches"
        assert len(message_ids(batches)) == count * source_harness.events_per_record
        assert all(batch.stream == source_harness.stream for batch in batches)
        assert batches[-1].cursor is not None, "the last batch carries the next run's cursor"

    @pytest.mark.asyncio
    async def test_events_carry_source_type_identity_and_unique_message_ids(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        self._seed_pages(source_harness, 1.5)
        batches = await self._pull(source_harness)
        events = [event for batch in batches for event in batch.events]
        assert events
        for event in events:
            assert event.source == source_harness.connector
            assert event.message_id
            assert event.type != EVENT_TYPE_UNSPECIFIED
            assert event.user_id or event.anonymous_id, "ingest needs user_id or anonymous_id"
        ids = [event.message_id for event in events]
        assert len(ids) == len(set(ids))

    @pytest.mark.asyncio
    async def test_message_ids_are_stable_across_pulls(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        self._seed_pages(source_harness, 1.5)
        first = message_ids(await self._pull(source_harness))
        second = message_ids(await self._pull(source_harness))
        assert sorted(first) == sorted(second)

    @pytest.mark.asyncio
    async def test_resuming_from_a_batch_cursor_continues_after_that_batch(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        self._seed_pages(source_harness)
        everything = set(message_ids(await self._pull(source_harness)))
        source = source_harness.open()
        try:
            stream = source.pull(source_harness.stream)
            first = await anext(stream)
            while not first.events:
                first = await anext(stream)
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            await source.aclose()
        assert first.cursor is not None
        seen = {event.message_id for event in first.events}
        rest = set(message_ids(await self._pull(source_harness, first.cursor)))
        assert everything - seen <= rest, "nothing after the batch is lost"
        assert rest <= everything
        if not self.resume_may_repeat_last_batch:
            assert not rest & seen, "the batch before the cursor is not pulled again"

    @pytest.mark.asyncio
    async def test_incremental_pull_yields_only_what_changed(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        self._seed_pages(source_harness, 1.5)
        batches = await self._pull(source_harness)
        known = set(message_ids(batches))
        source_harness.change(3)
        again = message_ids(await self._pull(source_harness, batches[-1].cursor))
        new = set(again) - known
        assert len(new) == 3 * source_harness.events_per_record, "each change is a new event"
        assert len(again) < len(known), "an incremental pull is not a full one"

    @pytest.mark.asyncio
    async def test_incremental_pull_without_changes_adds_nothing(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        self._seed_pages(source_harness, 1.5)
        batches = await self._pull(source_harness)
        known = set(message_ids(batches))
        again = await self._pull(source_harness, batches[-1].cursor)
        assert set(message_ids(again)) <= known
        assert again
        assert again[-1].cursor is not None

    @pytest.mark.asyncio
    async def test_throttled_requests_wait_as_asked_then_continue(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        _remote_only(source_harness)
        count = self._seed_pages(source_harness, 1.5)
        asked = source_harness.rate_limit(2)
        batches = await self._pull(source_harness)
        assert len(message_ids(batches)) == count * source_harness.events_per_record
        assert len(recorded_waits.seconds) >= 2, "use mailwright.connectors.http to wait"
        if asked is not None:
            assert any(wait == pytest.approx(asked, rel=0.1) for wait in recorded_waits.seconds)

    @pytest.mark.asyncio
    async def test_server_errors_are_retried(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        _remote_only(source_harness)
        count = self._seed_pages(source_harness, 1.5)
        source_harness.server_error(2)
        batches = await self._pull(source_harness)
        assert len(message_ids(batches)) == count * source_harness.events_per_record

    @pytest.mark.asyncio
    async def test_refused_credentials_raise_auth(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        _remote_only(source_harness)
        source_harness.seed(3)
        source_harness.refuse_credentials()
        with pytest.raises(ProviderError) as caught:
            await self._pull(source_harness)
        assert caught.value.kind is ErrorKind.AUTH
        assert not recorded_waits.seconds, "refused credentials are not retried"

    @pytest.mark.asyncio
    async def test_persistent_throttling_gives_up_as_rate_limited(
        self, source_harness: SourceHarness, recorded_waits: RecordedWaits
    ) -> None:
        _remote_only(source_harness)
        source_harness.seed(3)
        source_harness.rate_limit(1000)
        with pytest.raises(ProviderError) as caught:
            await self._pull(source_harness)
        assert caught.value.kind is ErrorKind.RATE_LIMITED


def _remote_only(harness: SourceHarness) -> None:
    if getattr(harness, "local", False):
        pytest.skip("the source reads local files: no throttling, server or credentials")
