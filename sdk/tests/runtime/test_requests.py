"""A retried request_id gets the original response; a reused one with other content is refused."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from mailwright.errors import Aborted, InvalidArgument
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.db import Database
from mailwright.runtime.requests import RequestLog, request_log_table


@pytest.fixture
def request_log(database_url: str):  # type: ignore[no-untyped-def]
    metadata = sa.MetaData()
    table = request_log_table(metadata, "test")
    db = Database(database_url, service="test")
    metadata.create_all(db.engine)
    yield RequestLog(db, table)
    db.close()


def _request(display_name: str, request_id: str = "r-1") -> ingest_pb2.CreateWriteKeyRequest:
    return ingest_pb2.CreateWriteKeyRequest(
        parent="workspaces/acme", display_name=display_name, request_id=request_id
    )


async def test_a_duplicate_request_gets_the_first_response(request_log: RequestLog) -> None:
    calls = 0

    async def create() -> ingest_pb2.CreateWriteKeyResponse:
        nonlocal calls
        calls += 1
        response = ingest_pb2.CreateWriteKeyResponse()
        response.write_key.name = f"workspaces/acme/writeKeys/k{calls}"
        return response

    first = await request_log.run(
        "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, create
    )
    second = await request_log.run(
        "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, create
    )
    assert calls == 1
    assert second == first


async def test_a_reused_request_id_with_other_content_is_refused(request_log: RequestLog) -> None:
    async def create() -> ingest_pb2.CreateWriteKeyResponse:
        return ingest_pb2.CreateWriteKeyResponse()

    await request_log.run(
        "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, create
    )
    with pytest.raises(InvalidArgument, match="different request"):
        await request_log.run(
            "acme", "CreateWriteKey", _request("mobile"), ingest_pb2.CreateWriteKeyResponse, create
        )


async def test_a_failed_request_can_be_retried(request_log: RequestLog) -> None:
    attempts = 0

    async def flaky() -> ingest_pb2.CreateWriteKeyResponse:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("provider down")
        return ingest_pb2.CreateWriteKeyResponse()

    with pytest.raises(RuntimeError):
        await request_log.run(
            "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, flaky
        )
    await request_log.run(
        "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, flaky
    )
    assert attempts == 2


async def test_request_ids_are_scoped_by_workspace(request_log: RequestLog) -> None:
    calls = 0

    async def create() -> ingest_pb2.CreateWriteKeyResponse:
        nonlocal calls
        calls += 1
        return ingest_pb2.CreateWriteKeyResponse()

    await asyncio.gather(
        request_log.run("acme", "M", _request("web"), ingest_pb2.CreateWriteKeyResponse, create),
        request_log.run("globex", "M", _request("web"), ingest_pb2.CreateWriteKeyResponse, create),
    )
    assert calls == 2


async def test_a_request_whose_caller_gave_up_is_replayed_not_redone(
    request_log: RequestLog,
) -> None:
    """A client's deadline cancels the handler, not the work in its database thread: the
    work's response must still be recorded, so that the retry gets it back."""
    release, started = asyncio.Event(), asyncio.Event()
    calls = 0

    async def create() -> ingest_pb2.CreateWriteKeyResponse:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        response = ingest_pb2.CreateWriteKeyResponse()
        response.write_key.name = f"workspaces/acme/writeKeys/k{calls}"
        return response

    def call() -> asyncio.Task[ingest_pb2.CreateWriteKeyResponse]:
        return asyncio.ensure_future(
            request_log.run(
                "acme", "CreateWriteKey", _request("web"), ingest_pb2.CreateWriteKeyResponse, create
            )
        )

    first = call()
    await started.wait()
    first.cancel()  # the deadline passed
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(Aborted, match="still in progress"):
        await call()  # a retry while the work goes on
    release.set()
    for _ in range(200):  # the outcome is recorded once the work ends
        try:
            replayed = await call()
            break
        except Aborted:
            await asyncio.sleep(0.01)
    assert calls == 1
    assert replayed.write_key.name == "workspaces/acme/writeKeys/k1"
