"""Durable journey timers, feedback, attribution and erasure on both databases."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from mailwright_delivery.model import PRIORITY_JOURNEY, Category, SendState, SuppressionReason
from mailwright_delivery.records import NewSend, Progress
from mailwright_delivery.store import DeliveryStore, Feedback

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=30)


def enrol(store: DeliveryStore, n: int, wake: datetime = NOW) -> None:
    assert store.enrol(
        "acme",
        f"e{n}",
        "cart",
        1,
        f"p{n}",
        f"msg-{n}",
        NOW - timedelta(hours=1),
        lambda past: not past,
        Progress("wait-1h", wake),
    )


def journey_send(enrolment: str, step: str) -> NewSend:
    return NewSend(
        id=f"{enrolment}-{step}",
        workspace="acme",
        idempotency_key=f"journey:cart:{enrolment}:{step}",
        category=Category.MARKETING,
        priority=PRIORITY_JOURNEY,
        due_at=NOW,
        journey_id="cart",
        step_id=step,
        enrolment_id=enrolment,
    )


def test_a_redelivered_trigger_does_not_enrol_twice(store: DeliveryStore) -> None:
    enrol(store, 1)
    assert not store.enrol(
        "acme", "e1b", "cart", 1, "p1", "msg-1", NOW, lambda past: True, Progress("x", NOW)
    )


def test_due_timers_are_claimed_by_one_replica_each(store: DeliveryStore) -> None:
    for n in range(40):
        enrol(store, n)
    enrol(store, 99, wake=NOW + timedelta(hours=2))
    fired: list[str] = []
    lock = threading.Lock()

    def replica(name: str) -> None:
        while True:
            batch = store.claim_timers(NOW, name, LEASE, limit=3)
            if not batch:
                return
            for enrolment in batch:
                moved = store.advance(
                    enrolment.id,
                    enrolment.revision,
                    Progress(
                        "wait-1d",
                        NOW + timedelta(days=1),
                        sends=(journey_send(enrolment.id, "reminder"),),
                    ),
                    NOW,
                    owner=name,
                )
                if moved:
                    with lock:
                        fired.append(enrolment.id)

    threads = [threading.Thread(target=replica, args=(f"r{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(fired) == sorted(f"e{n}" for n in range(40))
    assert store.count_by_state("acme")[SendState.QUEUED.value] == 40


def test_a_stale_move_is_refused(store: DeliveryStore) -> None:
    enrol(store, 1)
    (claimed,) = store.claim_timers(NOW, "r1", LEASE, limit=5)
    assert store.advance("e1", claimed.revision, Progress("wait-1d", LEASE), NOW, owner="r1")
    assert not store.advance("e1", claimed.revision, Progress("wait-1d", LEASE), NOW, owner="r1")


def test_an_event_cannot_move_a_person_whose_timer_is_firing(store: DeliveryStore) -> None:
    enrol(store, 1)
    (claimed,) = store.claim_timers(NOW, "r1", LEASE, limit=5)
    assert not store.advance("e1", claimed.revision, Progress("", None, exit_reason="goal"), NOW)


def test_a_timer_left_by_a_dead_replica_fires_after_its_lease(store: DeliveryStore) -> None:
    enrol(store, 1)
    store.claim_timers(NOW, "dead", LEASE, limit=5)
    assert store.claim_timers(NOW, "r2", LEASE, limit=5) == []
    later = LEASE + timedelta(seconds=1)
    assert [e.id for e in store.claim_timers(later, "r2", later, limit=5)] == ["e1"]


def test_an_exited_person_has_no_timer(store: DeliveryStore) -> None:
    enrol(store, 1)
    assert store.advance("e1", 0, Progress("wait-1h", None, exit_reason="goal"), NOW)
    assert store.claim_timers(NOW + timedelta(days=9), "r1", LEASE, limit=5) == []
    counts = store.journey_counts("acme", "cart")
    assert (counts["entered"], counts["exited"], counts["goals"]) == (1, 1, 1)


def test_journey_counts_read_one_snapshot(store: DeliveryStore) -> None:
    # A person entering between two of the counts must not show in one and not the
    # other: entered = exited + waiting, whatever commits meanwhile.
    enrol(store, 1)
    entered_meanwhile: list[str] = []

    def enter_once(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "count(" in statement and not entered_meanwhile:  # after the first count
            entered_meanwhile.append("e2")
            enrol(store, 2)

    sa.event.listen(store.engine, "after_cursor_execute", enter_once)
    try:
        counts = store.journey_counts("acme", "cart")
    finally:
        sa.event.remove(store.engine, "after_cursor_execute", enter_once)
    assert entered_meanwhile == ["e2"]
    assert counts["entered"] == counts["exited"] + sum(counts["waiting"].values()) == 1
    assert store.journey_counts("acme", "cart")["entered"] == 2


def _sent(store: DeliveryStore, n: int, digest: str = "h1") -> str:
    send = NewSend(
        id=f"s{n}",
        workspace="acme",
        idempotency_key=f"k{n}",
        category=Category.MARKETING,
        priority=10,
        due_at=NOW,
        profile_id="p1",
        campaign_id="c1",
        email_hash=digest,
    )
    store.insert_send(send, NOW)
    store.claim_sends(NOW, "w", LEASE, limit=10)
    store.mark_sent(send.id, "smtp", f"m{n}", NOW, [])
    return send.id


def test_feedback_is_applied_once(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    first = store.apply_feedback("acme", "evt-1", send_id, Feedback.OPENED, NOW, NOW)
    again = store.apply_feedback("acme", "evt-1", send_id, Feedback.OPENED, NOW, NOW)
    assert first.applied
    assert not again.applied
    assert first.send is not None
    assert first.send.open_at == NOW


def test_machine_opens_are_kept_apart(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    store.apply_feedback("acme", "evt-1", send_id, Feedback.OPENED, NOW, NOW, machine=True)
    (total, *_) = store.facts("acme", campaign_id="c1")
    assert (total.unique_opens, total.machine_opens) == (0, 1)


def test_a_hard_bounce_suppresses_the_address_at_once(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    result = store.apply_feedback("acme", "b1", send_id, Feedback.BOUNCED, NOW, NOW, hard=True)
    assert result.suppressed is SuppressionReason.HARD_BOUNCE
    assert store.suppressed("acme", ["h1"]) == {"h1": SuppressionReason.HARD_BOUNCE}
    record = store.get_send("acme", send_id)
    assert record is not None
    assert record.state is SendState.BOUNCED


def test_soft_bounces_suppress_after_the_limit(store: DeliveryStore) -> None:
    for n in range(3):
        send_id = _sent(store, n)
        result = store.apply_feedback(
            "acme", f"b{n}", send_id, Feedback.BOUNCED, NOW, NOW, hard=False, soft_bounce_limit=3
        )
        assert (result.suppressed is not None) == (n == 2)


def test_an_order_is_credited_to_the_last_click_within_the_window(store: DeliveryStore) -> None:
    old, recent = _sent(store, 1), _sent(store, 2)
    store.apply_feedback("acme", "c1", old, Feedback.CLICKED, NOW, NOW)
    store.apply_feedback("acme", "c2", recent, Feedback.CLICKED, NOW + timedelta(hours=1), NOW)
    order_time = NOW + timedelta(days=2)
    credited = store.record_order(
        "acme", "o1", "p1", order_time, Decimal("19.90"), "EUR", order_time
    )
    assert credited == recent
    assert store.record_order("acme", "o1", "p1", order_time, Decimal(1), "EUR", order_time) is None
    (total, *_) = store.facts("acme", campaign_id="c1")
    assert (total.conversions, total.revenue, total.converted_people) == (1, Decimal("19.90"), 2)


def test_an_order_after_the_window_is_not_credited(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    store.apply_feedback("acme", "c1", send_id, Feedback.CLICKED, NOW, NOW)
    late = NOW + timedelta(days=8)
    assert store.record_order("acme", "o1", "p1", late, Decimal(5), "EUR", late) is None


def test_erasure_keeps_counts_and_only_a_hashed_suppression(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    store.insert_send(
        NewSend("q1", "acme", "k-q", Category.MARKETING, 10, NOW + timedelta(days=1), "p1"), NOW
    )
    store.insert_send(
        NewSend("c9", "acme", "campaign:c9:p1", Category.MARKETING, 10, NOW, "p1"), NOW
    )
    store.erase_profiles("acme", ["p1"], ["h1"], NOW)
    record = store.get_send("acme", send_id)
    assert record is not None
    assert (record.profile_id, record.email_hash) == ("", "")
    # No trace of the person in the key either (a campaign's key names the profile).
    keyed = store.get_send("acme", "c9")
    assert keyed is not None
    assert keyed.idempotency_key == "erased:c9"
    queued = store.get_send("acme", "q1")
    assert queued is not None
    assert queued.state is SendState.CANCELLED
    assert store.suppressed("acme", ["h1"]) == {"h1": SuppressionReason.ERASED}
    (total, *_) = store.facts("acme", campaign_id="c1")
    assert total.sent == 1


def test_old_feedback_is_forgotten(store: DeliveryStore) -> None:
    send_id = _sent(store, 1)
    store.apply_feedback("acme", "evt-1", send_id, Feedback.OPENED, NOW, NOW)
    assert store.prune_feedback_log(NOW - timedelta(days=1)) == 0
    assert store.prune_feedback_log(NOW + timedelta(days=1)) == 1


def test_a_merged_persons_walks_continue_as_the_kept_profile(store: DeliveryStore) -> None:
    enrol(store, 1)  # p1 in cart
    assert store.enrol(
        "acme", "e2", "cart", 1, "p2", "msg-2", NOW, lambda past: True, Progress("w", NOW)
    )
    assert store.enrol(
        "acme", "e3", "other", 1, "p2", "msg-3", NOW, lambda past: True, Progress("w", NOW)
    )
    assert store.merge_profiles("acme", "p1", ["p2"], NOW) == 1
    mine = {e.journey_id: e.id for e in store.active_enrolments("acme", "p1")}
    assert mine == {"cart": "e1", "other": "e3"}
    assert store.active_enrolments("acme", "p2") == []


def claimed_at_birth(enrolment: str, step: str, until: datetime) -> NewSend:
    return dataclasses.replace(
        journey_send(enrolment, step), profile_id="p7", lease_owner="r1", lease_until=until
    )


def test_a_move_may_write_its_sends_already_claimed_by_its_replica(
    store: DeliveryStore,
) -> None:
    send = claimed_at_birth("e7", "send-1", LEASE)
    assert store.enrol(
        "acme",
        "e7",
        "cart",
        1,
        "p7",
        "msg-7",
        NOW,
        lambda past: True,
        Progress("end", None, sends=(send,)),
    )
    # No other worker claims it while the lease holds; its replica confirms and sends it.
    assert store.claim_sends(NOW, "r2", LEASE, 10) == []
    assert store.confirm_sends([send.id], "r1", NOW, LEASE) == {send.id}
    # What the replica hands its pipeline is the row as a claim would read it back.
    stored = store.get_send("acme", send.id)
    assert stored is not None
    handed = dataclasses.replace(send.as_claimed(NOW), attempts=1)
    assert dataclasses.replace(stored, created_at=NOW) == handed


def test_a_send_written_claimed_by_a_replica_that_died_is_claimed_after_its_lease(
    store: DeliveryStore,
) -> None:
    send = claimed_at_birth("e8", "send-1", NOW + timedelta(seconds=1))
    assert store.enrol(
        "acme",
        "e8",
        "cart",
        1,
        "p8",
        "msg-8",
        NOW,
        lambda past: True,
        Progress("end", None, sends=(send,)),
    )
    assert store.claim_sends(NOW, "r2", LEASE, 10) == []
    later = NOW + timedelta(seconds=2)
    taken = store.claim_sends(later, "r2", later + timedelta(seconds=30), 10)
    assert [s.id for s in taken] == [send.id]
    assert store.confirm_sends([send.id], "r1", later, LEASE) == set()  # the dead one's
