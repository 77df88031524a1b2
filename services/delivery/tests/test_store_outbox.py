"""The outbox of sends on SQLite and PostgreSQL: keys, claims, leases, pause, cancel."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.errors import FailedPrecondition
from mailwright.runtime.db import Database
from mailwright_delivery import lifecycle
from mailwright_delivery.model import PRIORITY_CAMPAIGN, Category, SendState
from mailwright_delivery.records import NewSend, OutboxMessage
from mailwright_delivery.store import DeliveryStore
from mailwright_delivery.store.send_queries import _claim_queries

from .conftest import MIGRATIONS

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=30)


def send(n: int, **extra: object) -> NewSend:
    values: dict[str, object] = {
        "id": f"s{n:05d}",
        "workspace": "acme",
        "idempotency_key": f"campaign:c1:p{n}",
        "category": Category.MARKETING,
        "priority": PRIORITY_CAMPAIGN,
        "due_at": NOW,
        "profile_id": f"p{n}",
        "campaign_id": "c1",
    }
    values.update(extra)
    return NewSend(**values)  # type: ignore[arg-type]


def test_a_send_key_is_used_once_ever(store: DeliveryStore) -> None:
    first, created = store.insert_send(send(1), NOW)
    again, created_again = store.insert_send(send(1, id="other-id"), NOW)
    assert created
    assert not created_again
    assert again.id == first.id == "s00001"


def test_a_claim_takes_due_sends_by_priority(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    store.insert_send(send(2, priority=100), NOW)
    store.insert_send(send(3, due_at=NOW + timedelta(hours=1)), NOW)
    claimed = store.claim_sends(NOW, "w1", LEASE, limit=1)
    assert [s.id for s in claimed] == ["s00002"]
    assert [s.id for s in store.claim_sends(NOW, "w1", LEASE, limit=10)] == ["s00001"]


def test_a_claim_merges_lapsed_and_queued_sends_in_claim_order(store: DeliveryStore) -> None:
    """Sends whose lease ran out and queued sends are picked apart; the claim takes the
    best of both by priority, then due time, and leaves what is not due yet."""
    store.insert_send(send(1, priority=50, due_at=NOW - timedelta(minutes=5)), NOW)
    store.insert_send(send(2, priority=50, due_at=NOW - timedelta(minutes=9)), NOW)
    (lapsing,) = store.claim_sends(NOW, "dead", LEASE, limit=1)  # s00002, then it dies
    store.insert_send(send(3, priority=50, due_at=NOW - timedelta(minutes=7)), NOW)
    store.insert_send(send(4, priority=10, due_at=NOW - timedelta(hours=1)), NOW)
    store.insert_send(send(5, priority=90, due_at=LEASE + timedelta(minutes=1)), NOW)
    later = LEASE + timedelta(seconds=1)
    claimed = store.claim_sends(later, "w2", later + timedelta(seconds=30), limit=3)
    assert lapsing.id == "s00002"
    assert {s.id for s in claimed} == {"s00002", "s00003", "s00001"}
    rest = store.claim_sends(later, "w2", later + timedelta(seconds=30), limit=3)
    assert [s.id for s in rest] == ["s00004"]


def test_a_claim_reads_queued_sends_in_index_order_on_sqlite(sqlite_url: str) -> None:
    """The plan, not the time: SQLite walks ix_delivery_sends_claim rather than sorting
    every due send (EXPLAIN QUERY PLAN of the claim's query for queued sends)."""
    db = Database(sqlite_url, service="delivery", migrations=MIGRATIONS)
    db.migrate()
    with db.engine.connect() as conn:
        queued, _ = _claim_queries(conn, NOW, ())
        compiled = queued.limit(100).compile(conn, compile_kwargs={"literal_binds": True})
        plan = " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    db.close()
    assert "ix_delivery_sends_claim" in plan
    assert "TEMP B-TREE" not in plan


def test_concurrent_claims_never_share_a_send(store: DeliveryStore) -> None:
    for n in range(120):
        store.insert_send(send(n), NOW)
    taken: list[list[str]] = [[] for _ in range(4)]

    def worker(index: int) -> None:
        while True:
            batch = store.claim_sends(NOW, f"w{index}", LEASE, limit=7)
            if not batch:
                return
            taken[index].extend(s.id for s in batch)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [send_id for part in taken for send_id in part]
    assert len(every) == len(set(every)) == 120


def test_a_dead_workers_sends_are_claimed_again_after_the_lease(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    assert store.claim_sends(NOW, "dead", LEASE, limit=5)
    assert store.claim_sends(NOW + timedelta(seconds=5), "w2", LEASE, limit=5) == []
    later = LEASE + timedelta(seconds=1)
    (again,) = store.claim_sends(later, "w2", later + timedelta(seconds=30), limit=5)
    assert again.id == "s00001"


def test_a_sent_send_is_never_claimed_again(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    store.claim_sends(NOW, "w1", LEASE, limit=5)
    assert store.confirm_sends(["s00001"], "w1", NOW, LEASE) == {"s00001"}
    event = OutboxMessage("events.email", "acme:p1", b"x")
    assert store.mark_sent("s00001", "smtp", "abc@x", NOW, [event])
    assert not store.mark_sent("s00001", "smtp", "abc@x", NOW, [event])
    assert store.claim_sends(LEASE + timedelta(hours=1), "w2", LEASE, limit=5) == []
    assert store.outbox_size() == 1
    record = store.get_send("acme", "s00001")
    assert record is not None
    assert (record.state, record.attempts, record.provider_message_id) == (
        SendState.SENT,
        1,
        "abc@x",
    )


def test_a_takeover_finds_the_send_sent_and_drops_it(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    store.claim_sends(NOW, "slow", LEASE, limit=5)
    store.confirm_sends(["s00001"], "slow", NOW, LEASE)
    later = LEASE + timedelta(seconds=1)
    store.claim_sends(later, "fast", later + timedelta(seconds=30), limit=5)
    store.mark_sent("s00001", "smtp", "id@x", later, [])  # the slow one finishes
    assert store.confirm_sends(["s00001"], "fast", later, later) == set()


def _campaign(store: DeliveryStore) -> None:
    store.create_campaign("acme", "c1", "C1", b"", Category.MARKETING, NOW)
    store.schedule_campaign("acme", "c1", b"", "v", NOW, NOW)
    store.claim_campaign_starts(NOW, "sched", LEASE)


def test_pausing_a_campaign_holds_its_claimed_and_queued_sends(store: DeliveryStore) -> None:
    _campaign(store)
    for n in range(3):
        store.insert_send(send(n), NOW)
    claimed = store.claim_sends(NOW, "w1", LEASE, limit=2)
    store.command_campaign("acme", "c1", lifecycle.Command.PAUSE, NOW)
    assert store.confirm_sends([s.id for s in claimed], "w1", NOW, LEASE) == set()
    assert store.claim_sends(NOW, "w1", LEASE, limit=5) == []
    store.command_campaign("acme", "c1", lifecycle.Command.RESUME, NOW)
    assert len(store.claim_sends(NOW, "w1", LEASE, limit=5)) == 3


def test_cancelling_a_campaign_cancels_what_is_not_sent(store: DeliveryStore) -> None:
    _campaign(store)
    for n in range(3):
        store.insert_send(send(n), NOW)
    store.claim_sends(NOW, "w1", LEASE, limit=1)
    store.command_campaign("acme", "c1", lifecycle.Command.CANCEL, NOW)
    states = store.count_by_state("acme")
    assert states[SendState.CANCELLED.value] == 2
    assert store.confirm_sends(["s00000"], "w1", NOW, LEASE) == set()


def test_a_campaign_is_sent_once_nothing_is_open(store: DeliveryStore) -> None:
    _campaign(store)
    store.add_snapshot_sends("acme", "c1", "sched", [send(1)], NOW)
    assert store.finish_snapshot("acme", "c1", "sched", "v", NOW) == 1
    assert store.finish_campaigns(NOW) == []
    store.claim_sends(NOW, "w1", LEASE, limit=5)
    store.mark_sent("s00001", "smtp", "m", NOW, [])
    assert store.finish_campaigns(NOW) == [("acme", "c1")]


def test_parked_sends_are_retried_by_command(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    store.claim_sends(NOW, "w1", LEASE, limit=5)
    store.mark_final("s00001", SendState.PARKED, "rejected: 554", NOW)
    assert store.retry_parked("acme", [], "c1", NOW) == 1
    (again,) = store.claim_sends(NOW, "w1", LEASE, limit=5)
    assert again.attempts == 0


def test_another_workspace_sees_nothing(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    assert store.get_send("other", "s00001") is None


def test_resuming_shifts_what_was_due_later_by_the_pause(store: DeliveryStore) -> None:
    _campaign(store)
    store.add_snapshot_sends("acme", "c1", "sched", [send(1, due_at=NOW + timedelta(hours=1))], NOW)
    store.command_campaign("acme", "c1", lifecycle.Command.PAUSE, NOW)
    store.command_campaign("acme", "c1", lifecycle.Command.RESUME, NOW + timedelta(minutes=10))
    record = store.get_send("acme", "s00001")
    assert record is not None
    assert record.due_at == NOW + timedelta(hours=1, minutes=10)


def test_a_worker_cannot_settle_a_send_another_took_over(store: DeliveryStore) -> None:
    store.insert_send(send(1), NOW)
    store.claim_sends(NOW, "slow", LEASE, limit=5)
    later = LEASE + timedelta(seconds=1)
    store.claim_sends(later, "fast", later + timedelta(seconds=30), limit=5)
    assert not store.mark_final("s00001", SendState.PARKED, "late", later, owner="slow")
    assert store.mark_final("s00001", SendState.PARKED, "mine", later, owner="fast")


def test_a_snapshot_stops_when_its_campaign_is_cancelled(store: DeliveryStore) -> None:
    _campaign(store)
    store.command_campaign("acme", "c1", lifecycle.Command.CANCEL, NOW)
    with pytest.raises(FailedPrecondition, match="cancelled"):
        store.add_snapshot_sends("acme", "c1", "sched", [send(1)], NOW)
    assert store.get_send("acme", "s00001") is None


def test_sends_given_back_after_a_cancel_are_cancelled_too(store: DeliveryStore) -> None:
    _campaign(store)
    store.insert_send(send(1), NOW)
    store.claim_sends(NOW, "w1", LEASE, limit=5)
    store.command_campaign("acme", "c1", lifecycle.Command.CANCEL, NOW)
    assert store.confirm_sends(["s00001"], "w1", NOW, LEASE) == set()
    assert store.sweep_cancelled(NOW) == 1
    record = store.get_send("acme", "s00001")
    assert record is not None
    assert record.state is SendState.CANCELLED
