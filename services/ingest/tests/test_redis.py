"""Ingest on Redis Streams and PostgreSQL: events reach the streams, dedup outlives a
restart, and a bus that goes down answers UNAVAILABLE with nothing half-accepted — the
retry is then accepted, not mistaken for a duplicate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime import bus as bus_module

from .conftest import PARENT, StartIngest, Tap
from .proxy import TcpProxy


def order(message_id: str) -> event_pb2.Event:
    properties = struct_pb2.Struct()
    properties.update({"order_id": f"o-{message_id}"})
    return event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        event="Order Completed",
        user_id="u1",
        message_id=message_id,
        properties=properties,
    )


@pytest.fixture
async def direct_tap(redis_url: str, redis_namespace: str) -> AsyncIterator[Tap]:
    """A tap connected to Redis itself, not through the proxy."""
    bus = await bus_module.connect(redis_url, namespace=redis_namespace, partitions=8)
    tap = Tap(bus)
    await tap.start()
    yield tap
    await tap.stop()
    await bus.close()


async def test_a_batch_reaches_redis_streams_on_postgres(
    redis_url: str, redis_namespace: str, postgres_url: str, start_ingest: StartIngest
) -> None:
    ingest = await start_ingest(
        bus_url=redis_url, namespace=redis_namespace, database_url=postgres_url
    )
    reply = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=[order(f"m{i}") for i in range(50)])
    )
    assert reply.accepted_count == 50
    events = await ingest.tap.wait(50)
    assert [e.message_id for e in events] == [f"m{i}" for i in range(50)]
    assert {m.topic for m in ingest.tap.messages} == {"events.commerce"}


async def test_dedup_outlives_a_restart_of_the_service(
    redis_url: str, redis_namespace: str, start_ingest: StartIngest
) -> None:
    settings: dict[str, Any] = {"bus_url": redis_url, "namespace": redis_namespace}
    first = await start_ingest(**settings)
    await first.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m1")))
    await first.stop()
    second = await start_ingest(**settings)
    again = await second.clients.ingest.Track(
        ingest_pb2.TrackRequest(parent=PARENT, event=order("m1"))
    )
    assert again.result.status == ingest_pb2.EVENT_STATUS_DUPLICATE


async def test_bus_down_is_unavailable_nothing_is_published_and_the_retry_is_accepted(
    redis_url: str,
    redis_namespace: str,
    proxy: TcpProxy,
    direct_tap: Tap,
    start_ingest: StartIngest,
) -> None:
    ingest = await start_ingest(bus_url=proxy.url, kv_url=redis_url, namespace=redis_namespace)
    api = ingest.clients.ingest
    batch = ingest_pb2.IngestBatchRequest(parent=PARENT, events=[order("m2"), order("m3")])
    proxy.go_down()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m1")))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "nothing was accepted" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.IngestBatch(batch)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert await direct_tap.quiet() == []

    proxy.come_back()
    retried = await api.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m1")))
    assert retried.result.status == ingest_pb2.EVENT_STATUS_ACCEPTED
    reply = await api.IngestBatch(batch)
    assert reply.accepted_count == 2
    events = await direct_tap.wait(3)
    assert sorted(e.message_id for e in events) == ["m1", "m2", "m3"]


async def test_key_value_store_down_is_unavailable_too(
    redis_url: str, redis_namespace: str, proxy: TcpProxy, start_ingest: StartIngest
) -> None:
    ingest = await start_ingest(bus_url=redis_url, kv_url=proxy.url, namespace=redis_namespace)
    await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m0")))
    proxy.go_down()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m1")))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [e.message_id for e in await ingest.tap.quiet()] == ["m0"]


async def test_the_http_api_answers_503_with_retry_after_when_the_bus_is_down(
    redis_url: str,
    redis_namespace: str,
    proxy: TcpProxy,
    direct_tap: Tap,
    start_ingest: StartIngest,
) -> None:
    ingest = await start_ingest(bus_url=proxy.url, kv_url=redis_url, namespace=redis_namespace)
    created = await ingest.clients.ingest.CreateWriteKey(
        ingest_pb2.CreateWriteKeyRequest(parent=PARENT)
    )
    body = {
        "writeKey": created.write_key.key,
        "userId": "u1",
        "event": "Signed In",
        "messageId": "h1",
    }
    proxy.go_down()
    answer = await ingest.http.post("/v1/track", json=body)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "nothing was accepted" in answer.json()["error"]
    proxy.come_back()
    # As a client told Retry-After does: the first try may meet a connection the outage
    # broke; the retry is accepted, never reported a duplicate.
    for _ in range(5):
        retried = await ingest.http.post("/v1/track", json=body)
        if retried.status_code != 503:
            break
        await asyncio.sleep(float(retried.headers["retry-after"]) / 10)
    assert retried.json()["status"] == "accepted"
    assert [e.message_id for e in await direct_tap.wait(1)] == ["h1"]
