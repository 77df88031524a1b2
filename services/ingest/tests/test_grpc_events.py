"""Events through the gRPC API of a running ingest service (SQLite, in-memory bus)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.clients import Clients

from .conftest import PARENT, Ingest, retry_delay, violations


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def order(message_id: str, user: str = "u1", **props: Any) -> event_pb2.Event:
    return event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TRACK,
        event="Order Completed",
        user_id=user,
        message_id=message_id,
        properties=struct({"order_id": f"o-{message_id}", "revenue": 10, **props}),
    )


async def test_a_tracked_event_is_on_the_bus_normalised_when_the_call_returns(
    ingest: Ingest,
) -> None:
    reply = await ingest.clients.ingest.Track(
        ingest_pb2.TrackRequest(parent=PARENT, event=order("m1", currency="eur"))
    )
    assert reply.result.status == ingest_pb2.EVENT_STATUS_ACCEPTED
    assert reply.result.message_id == "m1"
    assert reply.result.event.properties["currency"] == "EUR"
    (published,) = await ingest.tap.wait(1)
    assert published == reply.result.event
    assert ingest.tap.messages[0].topic == "events.commerce"
    assert ingest.tap.messages[0].key == "acme:u1"


async def test_a_client_cannot_name_a_profile_id(ingest: Ingest) -> None:
    """Only the tracking edge's own events keep a `profile_id` (from a verified token)."""
    event = order("m2")
    event.profile_id = "prof-9"
    reply = await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=event))
    assert reply.result.event.profile_id == ""
    (published,) = await ingest.tap.wait(1)
    assert published.profile_id == ""
    assert ingest.tap.messages[0].key == "acme:u1"


async def test_a_bad_event_is_refused_with_field_violations(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.Track(
            ingest_pb2.TrackRequest(
                parent=PARENT,
                event=event_pb2.Event(event="Order Completed", properties=struct({"revenue": "x"})),
            )
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(info.value) == [
        "event.user_id",
        "event.properties.order_id",
        "event.properties.revenue",
    ]
    assert await ingest.tap.quiet() == []


async def test_a_call_without_an_event_names_the_field(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.Identify(ingest_pb2.IdentifyRequest(parent=PARENT))
    assert violations(info.value) == ["event"]


async def test_a_malformed_parent_is_refused(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent="acme", event=order("m1")))
    assert violations(info.value) == ["parent"]


async def test_identify_page_and_alias_go_to_their_topics(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    await api.Identify(
        ingest_pb2.IdentifyRequest(
            parent=PARENT,
            event=event_pb2.Event(user_id="u1", traits=struct({"email": " Ada@Example.COM"})),
        )
    )
    await api.Page(ingest_pb2.PageRequest(parent=PARENT, event=event_pb2.Event(anonymous_id="a1")))
    await api.Alias(
        ingest_pb2.AliasRequest(
            parent=PARENT, event=event_pb2.Event(user_id="u1", previous_id="a1")
        )
    )
    events = await ingest.tap.wait(3)
    topics = sorted(m.topic for m in ingest.tap.messages)
    assert topics == ["events.alias", "events.identify", "events.page"]
    identify = next(e for e in events if e.type == event_pb2.EVENT_TYPE_IDENTIFY)
    assert identify.traits["email"] == "ada@example.com"


async def test_a_retried_event_is_reported_duplicate_and_published_once(ingest: Ingest) -> None:
    request = ingest_pb2.TrackRequest(parent=PARENT, event=order("same"))
    first = await ingest.clients.ingest.Track(request)
    again = await ingest.clients.ingest.Track(request)
    assert first.result.status == ingest_pb2.EVENT_STATUS_ACCEPTED
    assert again.result.status == ingest_pb2.EVENT_STATUS_DUPLICATE
    assert len(await ingest.tap.quiet()) == 1


async def test_a_backfill_batch_takes_history_and_marks_it(ingest: Ingest) -> None:
    two_years_ago = datetime.now(UTC) - timedelta(days=730)
    history = order("h1")
    history.timestamp.FromDatetime(two_years_ago)
    live = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=[history])
    )
    assert live.results[0].status == ingest_pb2.EVENT_STATUS_REJECTED
    assert "in the past" in live.results[0].violations[0].description
    forged = order("h2")
    forged.backfill = True  # a client cannot mark a live event as history
    imported = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=[history], backfill=True)
    )
    assert imported.results[0].status == ingest_pb2.EVENT_STATUS_ACCEPTED
    await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=forged))
    published = {e.message_id: e for e in await ingest.tap.wait(2)}
    assert published["h1"].backfill
    assert published["h1"].timestamp.ToDatetime(UTC) == two_years_ago
    assert not published["h2"].backfill


async def test_a_batch_answers_each_event_in_order_and_keeps_the_good_ones(
    ingest: Ingest,
) -> None:
    await ingest.clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("old")))
    batch = [
        order("b0"),
        event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event="Signed Up"),
        order("old"),
        order("b3", currency="euro"),
        order("b4"),
        order("b0"),
    ]
    reply = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=batch)
    )
    statuses = [r.status for r in reply.results]
    accepted, duplicate, rejected = (
        ingest_pb2.EVENT_STATUS_ACCEPTED,
        ingest_pb2.EVENT_STATUS_DUPLICATE,
        ingest_pb2.EVENT_STATUS_REJECTED,
    )
    assert statuses == [accepted, rejected, duplicate, rejected, accepted, duplicate]
    assert [r.index for r in reply.results] == [0, 1, 2, 3, 4, 5]
    assert [v.field for v in reply.results[1].violations] == ["events[1].user_id"]
    assert [v.field for v in reply.results[3].violations] == ["events[3].properties.currency"]
    assert (reply.accepted_count, reply.duplicate_count, reply.rejected_count) == (2, 2, 2)
    published = await ingest.tap.quiet()
    assert sorted(e.message_id for e in published) == ["b0", "b4", "old"]


async def test_more_than_a_thousand_events_are_refused_whole(ingest: Ingest) -> None:
    batch = [order(f"m{i}") for i in range(1001)]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.IngestBatch(
            ingest_pb2.IngestBatchRequest(parent=PARENT, events=batch)
        )
    assert violations(info.value) == ["events"]
    assert "at most 1000" in (info.value.details() or "")
    assert await ingest.tap.quiet() == []


async def test_a_batch_over_four_mebibytes_is_refused_whole(ingest: Ingest) -> None:
    big = {f"note{i}": "x" * 8000 for i in range(3)}
    batch = [order(f"m{i}", **big) for i in range(180)]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.IngestBatch(
            ingest_pb2.IngestBatchRequest(parent=PARENT, events=batch)
        )
    assert violations(info.value) == ["events"]
    assert await ingest.tap.quiet() == []


async def test_one_persons_events_keep_their_order_on_the_bus(ingest: Ingest) -> None:
    batch = [order(f"m{i:02d}", user=f"u{i % 3}") for i in range(30)]
    await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=batch)
    )
    events = await ingest.tap.wait(30)
    for user in ("u0", "u1", "u2"):
        mine = [e.message_id for e in events if e.user_id == user]
        assert mine == sorted(mine)


async def test_a_token_for_another_workspace_is_refused(ingest: Ingest) -> None:
    clients = ingest.platform.clients(ingest.token(workspace="other"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m")))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await clients.close()


async def test_a_token_without_events_write_is_refused(ingest: Ingest) -> None:
    clients = ingest.platform.clients(ingest.token("taxonomy:read"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m")))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await clients.close()


async def _set_policy(clients: Clients, **fields: Any) -> None:
    current = await clients.ingest.GetIngestPolicy(
        ingest_pb2.GetIngestPolicyRequest(name=f"{PARENT}/ingestPolicy")
    )
    policy = current.policy
    for name, value in fields.items():
        if isinstance(value, duration_pb2.Duration):
            getattr(policy, name).CopyFrom(value)
        else:
            setattr(policy, name, value)
    await clients.ingest.UpdateIngestPolicy(ingest_pb2.UpdateIngestPolicyRequest(policy=policy))


async def test_a_token_over_its_rate_gets_resource_exhausted_with_a_retry_delay(
    ingest: Ingest,
) -> None:
    await _set_policy(ingest.clients, rate_limit_per_second=0.5, rate_limit_burst=2)
    clients = ingest.platform.clients(ingest.token("events:write"))
    try:
        for index in range(2):
            await clients.ingest.Track(
                ingest_pb2.TrackRequest(parent=PARENT, event=order(f"m{index}"))
            )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await clients.ingest.Track(ingest_pb2.TrackRequest(parent=PARENT, event=order("m2")))
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        delay = retry_delay(info.value)
        assert delay is not None
        assert 0 < delay <= 2
    finally:
        await clients.close()
    assert len(await ingest.tap.quiet()) == 2


async def test_unplanned_events_are_refused_when_the_policy_says_so(ingest: Ingest) -> None:
    await _set_policy(ingest.clients, unplanned_events=ingest_pb2.UNPLANNED_EVENT_POLICY_REJECT)
    unplanned = event_pb2.Event(type=event_pb2.EVENT_TYPE_TRACK, event="Video Played", user_id="u")
    reply = await ingest.clients.ingest.IngestBatch(
        ingest_pb2.IngestBatchRequest(parent=PARENT, events=[unplanned, order("m1")])
    )
    assert [r.status for r in reply.results] == [
        ingest_pb2.EVENT_STATUS_REJECTED,
        ingest_pb2.EVENT_STATUS_ACCEPTED,
    ]
    assert [v.field for v in reply.results[0].violations] == ["events[0].event"]
