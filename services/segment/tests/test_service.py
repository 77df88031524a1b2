"""The segment service through gRPC, driven by `ProfileChanged` messages on its bus."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from upstream import changed, event, stamp

from mailwright.segment.v1 import segment_pb2

WS = "workspaces/acme"


def name(segment_id: str) -> str:
    return f"{WS}/segments/{segment_id}"


async def create(service, segment_id: str, rule_text: str, **fields):  # type: ignore[no-untyped-def]
    reply = await service.stub.CreateSegment(
        segment_pb2.CreateSegmentRequest(
            parent=WS,
            segment_id=segment_id,
            segment=segment_pb2.Segment(rule_text=rule_text, **fields),
        )
    )
    return reply.segment


async def members(service, segment_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    reply = await service.stub.ListMembers(segment_pb2.ListMembersRequest(parent=name(segment_id)))
    return [m.profile_id for m in reply.members]


async def test_created_segment_reads_back_with_canonical_text_tree_and_version(
    sqlite_service,
) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    created = await create(
        service,
        "repeat-buyers",
        'event "Order Completed"   count >= 2 IN LAST 365 days',
        display_name="Repeat Buyers",
        tags=["commerce"],
    )
    assert created.rule_text == 'event "Order Completed" count >= 2 in last 365 days'
    assert created.version == 1
    assert created.rule.WhichOneof("kind") == "event_count"
    got = (
        await service.stub.GetSegment(segment_pb2.GetSegmentRequest(name=name("repeat-buyers")))
    ).segment
    assert (got.display_name, list(got.tags), got.rule_text) == (
        "Repeat Buyers",
        ["commerce"],
        created.rule_text,
    )


async def test_an_event_makes_a_person_enter_and_the_entry_is_published(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "buyers", 'event "Order Completed"')
    await service.upstream.change(
        changed(
            "acme", "p1", version=1, events=[event("Order Completed", properties={"revenue": 10})]
        )
    )
    await service.upstream.wait_for(1, segment_id="buyers")
    entry = service.upstream.received[-1]
    assert entry.profile_id == "p1"
    assert entry.transition == segment_pb2.TRANSITION_ENTERED
    assert (entry.cause, entry.rule_version, entry.workspace) == ("event", 1, "acme")
    assert await members(service, "buyers") == ["p1"]
    listed = await service.stub.ListProfileMemberships(
        segment_pb2.ListProfileMembershipsRequest(parent=WS, profile_id="p1")
    )
    assert list(listed.segments) == [name("buyers")]


async def test_on_redis_streams_and_postgresql_an_event_makes_a_person_enter(redis_service) -> None:  # type: ignore[no-untyped-def]
    service = redis_service
    await create(service, "buyers", 'event "Order Completed"')
    await service.upstream.change(
        changed("acme", "p1", version=1, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(1, segment_id="buyers")
    assert service.upstream.transitions("buyers") == [("buyers", "p1", "entered")]
    assert await members(service, "buyers") == ["p1"]


async def test_a_trait_change_makes_a_person_leave(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    await create(service, "french", 'trait country = "FR"')
    await service.upstream.change(changed("acme", "p1", version=1, traits={"country": "FR"}))
    await service.upstream.wait_for(1, segment_id="french")
    await service.upstream.change(changed("acme", "p1", version=2, traits={"country": "DE"}))
    await service.upstream.wait_for(2, segment_id="french")
    assert service.upstream.transitions("french") == [
        ("french", "p1", "entered"),
        ("french", "p1", "exited"),
    ]
    assert service.upstream.received[-1].cause == "trait"


async def test_a_redelivered_change_counts_its_events_once(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    await create(service, "two-orders", 'event "Order Completed" count >= 2')
    order = event("Order Completed", message_id="order-1")
    message = changed("acme", "p1", version=1, events=[order])
    await service.upstream.change(message)
    await service.upstream.change(message)
    await service.upstream.change(changed("acme", "p1", version=2, traits={"x": 1}))
    await asyncio.sleep(0.5)
    assert service.upstream.transitions("two-orders") == []
    await service.upstream.change(
        changed("acme", "p1", version=3, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(1, segment_id="two-orders")


async def test_a_person_enters_by_time_alone_once(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "quiet", 'did not perform "Page Viewed" in last 1 minute')
    almost = datetime.now(UTC) - timedelta(seconds=58)
    await service.upstream.change(
        changed("acme", "p1", version=1, events=[event("Page Viewed", at=almost)])
    )
    await service.upstream.wait_for(1, within=15, segment_id="quiet")
    await asyncio.sleep(1.0)
    assert service.upstream.transitions("quiet") == [("quiet", "p1", "entered")]
    assert service.upstream.received[-1].cause == "time"


async def test_an_updated_rule_makes_a_new_version_and_membership_follows(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    await create(service, "big", "trait clv_12m > 100")
    await service.upstream.change(changed("acme", "p1", version=1, traits={"clv_12m": 150}))
    await service.upstream.wait_for(1, segment_id="big")
    reply = await service.stub.UpdateSegment(
        segment_pb2.UpdateSegmentRequest(
            segment=segment_pb2.Segment(name=name("big"), rule_text="trait clv_12m > 200"),
            update_mask=["rule_text"],
        )
    )
    assert reply.segment.version == 2
    await service.upstream.wait_for(2, segment_id="big")
    last = service.upstream.received[-1]
    assert (last.transition, last.rule_version, last.cause) == (
        segment_pb2.TRANSITION_EXITED,
        2,
        "rule_change",
    )
    old = await service.stub.GetSegment(segment_pb2.GetSegmentRequest(name=name("big"), version=1))
    assert old.segment.rule_text == "trait clv_12m > 100"


async def test_a_segment_of_segments_follows_the_segment_it_refers_to(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    await create(service, "buyers", 'event "Order Completed"')
    await create(service, "french-buyers", 'in segment "buyers" and trait country = "FR"')
    await service.upstream.change(changed("acme", "p1", version=1, traits={"country": "FR"}))
    await asyncio.sleep(0.3)
    assert service.upstream.transitions("french-buyers") == []
    await service.upstream.change(
        changed("acme", "p1", version=2, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(1, segment_id="french-buyers")
    assert await members(service, "french-buyers") == ["p1"]


async def test_recompute_is_a_job_with_progress(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "known", "trait n exists")
    for i in range(5):
        await service.upstream.change(changed("acme", f"p{i}", version=1, traits={"n": i}))
    await service.upstream.wait_for(5, segment_id="known")
    await create(service, "big-n", "trait n >= 3")
    await service.upstream.wait_for(2, segment_id="big-n")
    reply = await service.stub.RecomputeSegment(
        segment_pb2.RecomputeSegmentRequest(name=name("big-n"), request_id="r1")
    )
    job = reply.job
    assert job.name.startswith(f"{WS}/recomputeJobs/")
    while job.state == segment_pb2.JOB_STATE_RUNNING:
        await asyncio.sleep(0.05)
        job = (
            await service.stub.GetRecomputeJob(segment_pb2.GetRecomputeJobRequest(name=job.name))
        ).job
    assert job.state == segment_pb2.JOB_STATE_SUCCEEDED
    assert (job.progress.done, job.progress.total) == (5, 5)
    assert (job.entered_count, job.exited_count) == (0, 0)
    assert sorted(await members(service, "big-n")) == ["p3", "p4"]


async def test_merge_moves_history_to_the_kept_profile(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "two-orders", 'event "Order Completed" count >= 2')
    await create(service, "one-order", 'event "Order Completed" count = 1')
    await service.upstream.change(
        changed("acme", "a", version=1, events=[event("Order Completed")])
    )
    await service.upstream.change(
        changed("acme", "b", version=1, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(2, segment_id="one-order")
    await service.upstream.change(changed("acme", "a", version=2, merged=["b"]))
    await service.upstream.wait_for(1, segment_id="two-orders")
    await service.upstream.wait_for(4, segment_id="one-order")
    assert await members(service, "two-orders") == ["a"]
    assert await members(service, "one-order") == []
    causes = {c.cause for c in service.upstream.received[-3:]}
    assert causes == {"merge"}


async def test_deletion_erases_the_person_and_publishes_their_exits(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "buyers", 'event "Order Completed"')
    await service.upstream.change(
        changed("acme", "p1", version=1, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(1, segment_id="buyers")
    await service.upstream.delete("acme", "p1")
    await service.upstream.wait_for(2, segment_id="buyers")
    assert service.upstream.received[-1].cause == "deletion"
    assert await members(service, "buyers") == []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.stub.ExplainMembership(
            segment_pb2.ExplainMembershipRequest(segment=name("buyers"), profile_id="p1")
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    replay = service.stub.WatchMembership(
        segment_pb2.WatchMembershipRequest(
            parent=WS, start_time=stamp(datetime(2000, 1, 1, tzinfo=UTC))
        )
    )
    seen = await first_changes(replay, 1, within=1.0)
    assert seen == []


async def first_changes(stream, count: int, within: float) -> list[segment_pb2.MembershipChange]:  # type: ignore[no-untyped-def]
    found: list[segment_pb2.MembershipChange] = []

    async def read() -> None:
        async for reply in stream:
            found.append(reply.change)
            if len(found) >= count:
                return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), within)
    stream.cancel()
    return found


async def test_watch_membership_replays_history_then_streams_live(service) -> None:  # type: ignore[no-untyped-def]
    await create(service, "buyers", 'event "Order Completed"')
    await create(service, "french", 'trait country = "FR"')
    await service.upstream.change(
        changed("acme", "p1", version=1, events=[event("Order Completed")])
    )
    await service.upstream.wait_for(1, segment_id="buyers")
    stream = service.stub.WatchMembership(
        segment_pb2.WatchMembershipRequest(
            parent=WS,
            segments=[name("buyers")],
            start_time=stamp(datetime.now(UTC) - timedelta(hours=1)),
        )
    )

    async def live() -> None:
        await asyncio.sleep(0.3)
        await service.upstream.change(changed("acme", "p2", version=1, traits={"country": "FR"}))
        await service.upstream.change(
            changed("acme", "p2", version=2, events=[event("Order Completed")])
        )

    feeding = asyncio.create_task(live())
    seen = await first_changes(stream, 2, within=10.0)
    await feeding
    assert [(c.profile_id, c.segment) for c in seen] == [
        ("p1", name("buyers")),
        ("p2", name("buyers")),
    ]


async def test_explain_shows_each_condition_with_what_it_compared(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    await create(
        service,
        "loyal",
        'event "Order Completed" count >= 2 in last 30 days and trait country = "FR"',
    )
    await service.upstream.change(
        changed(
            "acme",
            "p1",
            version=1,
            traits={"country": "FR"},
            events=[event("Order Completed", at=datetime.now(UTC) - timedelta(days=1))] * 1
            + [event("Order Completed", at=datetime.now(UTC) - timedelta(days=2))],
        )
    )
    await service.upstream.wait_for(1, segment_id="loyal")
    reply = await service.stub.ExplainMembership(
        segment_pb2.ExplainMembershipRequest(segment=name("loyal"), profile_id="p1")
    )
    assert reply.member
    assert reply.root.value
    first, second = reply.root.children
    assert first.path == "all[0]"
    assert "count=2" in first.detail
    assert second.detail == "trait='country', actual='FR'"
    leaves = datetime.now(UTC) + timedelta(days=28)
    assert reply.next_change_time.ToDatetime(tzinfo=UTC) == pytest.approx(
        leaves, abs=timedelta(seconds=30)
    )


async def test_preview_counts_and_samples_an_unsaved_rule(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    for i in range(4):
        await service.upstream.change(
            changed(
                "acme",
                f"p{i}",
                version=1,
                events=[
                    event("Order Completed", properties={"currency": "EUR" if i % 2 else "USD"})
                ],
            )
        )
    await create(service, "any-order", 'event "Order Completed"')
    await service.upstream.wait_for(4, segment_id="any-order")
    reply = await service.stub.PreviewSegment(
        segment_pb2.PreviewSegmentRequest(
            parent=WS, rule_text='event "Order Completed" where currency = "EUR"', sample_size=10
        )
    )
    assert reply.count == 2
    assert sorted(reply.sample_profile_ids) == ["p1", "p3"]


async def test_library_segments_apply_and_evaluate(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    service = sqlite_service
    from mailwright.rules.library import builtin_segments

    for definition in builtin_segments():
        if "in segment" in definition.text:
            continue
        await create(service, definition.id, definition.text, display_name=definition.name)
    now = datetime.now(UTC)
    views = [
        event("Product Viewed", at=now - timedelta(days=d), properties={"product_id": "p"})
        for d in (10, 9, 8)
    ]
    await service.upstream.change(changed("acme", "p1", version=1, events=views))
    await service.upstream.wait_for(1, segment_id="browse-abandoners")
    assert "p1" in await members(service, "product-browse-abandoners")
