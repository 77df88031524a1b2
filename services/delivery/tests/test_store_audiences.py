"""The audience sync queue in delivery's store, on SQLite and PostgreSQL: the latest
transition of a member wins, a change in flight is leased, a dead worker's change is
taken again whole under its own id (and nothing else is re-sent), resyncs queue what
they saw and the removal of what they did not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailwright.connectors import AudienceMember, ErrorKind, MemberFailure
from mailwright.errors import AlreadyExists
from mailwright_delivery.audiences import Destination, DestinationState, Op, SegmentMapping
from mailwright_delivery.store import DeliveryStore
from mailwright_delivery.store.audience_queries import Acknowledged, Transition

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)


def destination(segments: tuple[str, ...] = ("vip",)) -> Destination:
    return Destination(
        workspace="acme",
        id="news",
        display_name="",
        connector="mailchimp",
        connector_config="mailchimp",
        segments=tuple(SegmentMapping(s, s.upper()) for s in segments),
        traits=("first_name",),
        state=DestinationState.ACTIVE,
        created_at=T0,
        updated_at=T0,
    )


@pytest.fixture
def queue(store: DeliveryStore) -> DeliveryStore:
    store.create_destination(destination())
    return store


def enter(profile_id: str, at: datetime, op: Op = Op.ADD) -> Transition:
    return Transition("news", "vip", profile_id, op, at)


def claim(store: DeliveryStore, now: datetime, change_id: str = "c1", size: int = 10):  # type: ignore[no-untyped-def]
    return store.claim_change("acme", "news", "vip", change_id, size, now, now + LEASE)


def ack(store: DeliveryStore, claimed, now: datetime) -> None:  # type: ignore[no-untyped-def]
    added = [AudienceMember(p, f"{p}@example.com") for p, op in claimed.ops.items() if op is Op.ADD]
    removed = [p for p, op in claimed.ops.items() if op is Op.REMOVE]
    store.acknowledge(claimed, Acknowledged(added, removed, []), now)


def test_a_destination_id_is_taken_once(queue: DeliveryStore) -> None:
    with pytest.raises(AlreadyExists):
        queue.create_destination(destination())
    assert queue.destinations_following("acme", "vip") == ["news"]
    assert queue.destinations_following("other", "vip") == []


def test_the_latest_transition_of_a_member_wins_even_when_an_older_arrives_late(
    queue: DeliveryStore,
) -> None:
    queue.enqueue("acme", [enter("p1", T0 + timedelta(seconds=5), Op.REMOVE)], T0)
    queue.enqueue("acme", [enter("p1", T0)], T0)  # redelivered, older
    claimed = claim(queue, T0)
    assert claimed is not None
    assert dict(claimed.ops) == {"p1": Op.REMOVE}


def test_a_change_is_at_most_the_size_asked_and_leased(queue: DeliveryStore) -> None:
    queue.enqueue("acme", [enter(f"p{n}", T0 + timedelta(seconds=n)) for n in range(5)], T0)
    first = claim(queue, T0, "c1", size=3)
    assert first is not None
    assert sorted(first.ops) == ["p0", "p1", "p2"]
    second = claim(queue, T0, "c2", size=3)
    assert second is not None
    assert sorted(second.ops) == ["p3", "p4"]
    assert claim(queue, T0, "c3") is None


def test_a_transition_arriving_while_its_change_is_in_flight_is_synced_after(
    queue: DeliveryStore,
) -> None:
    queue.enqueue("acme", [enter("p1", T0)], T0)
    claimed = claim(queue, T0)
    assert claimed is not None
    queue.enqueue("acme", [enter("p1", T0 + timedelta(seconds=1), Op.REMOVE)], T0)
    assert claim(queue, T0, "c2") is None  # the member's row is in flight
    ack(queue, claimed, T0)
    assert queue.synced_members("acme", "news", "vip", ["p1"])["p1"].email == "p1@example.com"
    after = claim(queue, T0, "c2")
    assert after is not None
    assert dict(after.ops) == {"p1": Op.REMOVE}
    ack(queue, after, T0)
    assert queue.synced_members("acme", "news", "vip", ["p1"]) == {}
    assert claim(queue, T0, "c3") is None


def test_a_dead_workers_change_is_taken_again_whole_and_alone(queue: DeliveryStore) -> None:
    queue.enqueue("acme", [enter(f"p{n}", T0 + timedelta(seconds=n)) for n in range(4)], T0)
    done = claim(queue, T0, "c1", size=2)
    assert done is not None
    ack(queue, done, T0)
    lost = claim(queue, T0, "c2", size=2)  # its worker dies now
    assert lost is not None
    queue.enqueue("acme", [enter("p9", T0 + timedelta(seconds=9))], T0)
    later = T0 + LEASE + timedelta(seconds=1)
    again = claim(queue, later, "c3", size=10)
    assert again is not None
    assert again.change_id == "c2"
    assert dict(again.ops) == dict(lost.ops)
    ack(queue, again, later)
    rest = claim(queue, later, "c4", size=10)
    assert rest is not None
    assert sorted(rest.ops) == ["p9"]


def test_a_failed_change_waits_and_counts_its_attempts(queue: DeliveryStore) -> None:
    queue.enqueue("acme", [enter("p1", T0)], T0)
    claimed = claim(queue, T0)
    assert claimed is not None
    queue.retry_later(claimed, T0 + timedelta(seconds=30), "rate_limited: slow down", T0)
    assert claim(queue, T0 + timedelta(seconds=10), "c2") is None
    again = claim(queue, T0 + timedelta(seconds=30), "c2")
    assert again is not None
    assert again.attempts == 1
    statuses, _ = queue.audience_status("acme", "news")
    assert statuses["vip"].last_error == "rate_limited: slow down"


def test_refused_members_are_recorded_and_cleared_once_they_sync(queue: DeliveryStore) -> None:
    queue.enqueue("acme", [enter("p1", T0)], T0)
    claimed = claim(queue, T0)
    assert claimed is not None
    refused = MemberFailure("p1", ErrorKind.INVALID, "looks fake")
    queue.acknowledge(claimed, Acknowledged([], [], [refused]), T0)
    statuses, failures = queue.audience_status("acme", "news")
    assert [(f.profile_id, f.kind) for f in failures] == [("p1", "invalid")]
    assert statuses["vip"].failed == 1
    queue.enqueue("acme", [enter("p1", T0 + timedelta(seconds=1))], T0)
    again = claim(queue, T0, "c2")
    assert again is not None
    ack(queue, again, T0)
    assert queue.audience_status("acme", "news")[1] == []


def test_a_resync_queues_members_seen_and_removes_those_synced_before_but_gone(
    queue: DeliveryStore,
) -> None:
    queue.enqueue("acme", [enter("old", T0), enter("kept", T0)], T0)
    first = claim(queue, T0)
    assert first is not None
    ack(queue, first, T0)
    start = T0 + timedelta(minutes=5)
    queue.start_resync("acme", "news", ["vip"], "r1", start)
    resync = queue.claim_resync("me", start, start + LEASE)
    assert resync is not None
    assert queue.resync_page(resync, ["kept", "new"], "page-2", 3, "me", start)
    queue.release_resync(resync, "me", start)
    resync = queue.claim_resync("me", start, start + LEASE)
    assert resync is not None
    assert resync.page_token == "page-2"
    assert queue.resync_page(resync, ["newer"], "", 3, "me", start)
    assert queue.finish_resync(resync, "me", start) == 1
    changes = claim(queue, start, "c2")
    assert changes is not None
    assert dict(changes.ops) == {
        "kept": Op.ADD,
        "new": Op.ADD,
        "newer": Op.ADD,
        "old": Op.REMOVE,
    }
    statuses, _ = queue.audience_status("acme", "news")
    assert not statuses["vip"].resync_running
    assert statuses["vip"].resync_done == 3


def test_a_paused_destination_keeps_its_transitions_but_syncs_nothing(
    queue: DeliveryStore,
) -> None:
    queue.enqueue("acme", [enter("p1", T0)], T0)
    paused = destination()
    queue.update_destination(Destination(**{**paused.__dict__, "state": DestinationState.PAUSED}))
    assert queue.due_groups(T0, 10) == []
    queue.update_destination(destination())
    assert queue.due_groups(T0, 10) == [("acme", "news", "vip")]


def test_dropping_a_segment_forgets_its_sync_state(queue: DeliveryStore) -> None:
    queue.update_destination(destination(("vip", "churned")))
    queue.enqueue("acme", [enter("p1", T0), Transition("news", "churned", "p2", Op.ADD, T0)], T0)
    queue.update_destination(destination(("churned",)))
    assert queue.due_groups(T0, 10) == [("acme", "news", "churned")]
    assert queue.destinations_following("acme", "vip") == []
