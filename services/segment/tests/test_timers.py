"""Time-driven changes: a membership that changes by time alone is re-evaluated when its
timer comes due — once, also after a restart, and by one replica only."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mailwright_segment.catalog import RuleInput, SegmentCatalog
from mailwright_segment.engine import MembershipEngine
from mailwright_segment.facts import EventFact, ProfileChange
from mailwright_segment.store import memberships as membership_store
from mailwright_segment.values import to_micros

START = to_micros(datetime(2024, 5, 1, 12, tzinfo=UTC))
MINUTE = 60_000_000


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def setup(engine: sa.Engine, clock: Clock) -> MembershipEngine:
    membership = MembershipEngine(engine, clock=clock)
    catalog = SegmentCatalog(membership, retention=timedelta(days=400))
    catalog.create(
        "acme",
        "quiet",
        "",
        "",
        (),
        RuleInput(text='did not perform "Page Viewed" in last 10 minutes'),
    )
    membership.apply(
        ProfileChange("acme", "p1", 1, events=(EventFact("v1", "Page Viewed", START - MINUTE),))
    )
    return membership


def transitions(engine: sa.Engine) -> list[tuple[str, str, bool, str]]:
    with engine.connect() as conn:
        return [
            (e.segment_id, e.profile_id, e.entered, e.cause)
            for e in membership_store.history(conn, "acme")
        ]


def fire(membership: MembershipEngine, owner: str) -> int:
    fired = 0
    for segment_pk, profile_pk in membership.claim_timers(owner, 100):
        fired += len(membership.fire_timer(owner, segment_pk, profile_pk).log_ids)
    return fired


def test_a_membership_that_changes_by_time_alone_fires_once(engine: sa.Engine) -> None:
    clock = Clock(START)
    membership = setup(engine, clock)
    assert transitions(engine) == []
    assert membership.next_due() == START + 9 * MINUTE
    clock.now = START + 9 * MINUTE - 1
    assert fire(membership, "a") == 0
    clock.now = START + 9 * MINUTE + 5
    assert fire(membership, "a") == 1
    assert fire(membership, "a") == 0
    clock.now += 60 * MINUTE
    assert fire(membership, "a") == 0
    assert transitions(engine) == [("quiet", "p1", True, "time")]
    assert membership.next_due() is None


def test_a_timer_survives_a_restart(engine: sa.Engine) -> None:
    clock = Clock(START)
    setup(engine, clock)
    restarted = MembershipEngine(engine, clock=Clock(START + 20 * MINUTE))
    assert fire(restarted, "after-restart") == 1
    assert transitions(engine) == [("quiet", "p1", True, "time")]


def test_two_schedulers_never_fire_one_timer_twice(engine: sa.Engine) -> None:
    clock = Clock(START)
    setup(engine, clock)
    late = Clock(START + 20 * MINUTE)
    replicas = [MembershipEngine(engine, clock=late) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        fired = list(pool.map(lambda pair: fire(pair[1], f"r{pair[0]}"), enumerate(replicas)))
    assert sorted(fired) == [0, 1]
    assert transitions(engine) == [("quiet", "p1", True, "time")]


def test_a_timer_claimed_by_a_dead_replica_is_taken_over_after_its_lease(
    engine: sa.Engine,
) -> None:
    clock = Clock(START)
    setup(engine, clock)
    clock.now = START + 20 * MINUTE
    dead = MembershipEngine(engine, clock=clock)
    assert dead.claim_timers("dead", 10)
    alive = MembershipEngine(engine, clock=clock)
    assert fire(alive, "alive") == 0
    clock.now += 2 * MINUTE
    assert fire(alive, "alive") == 1


def test_an_event_reschedules_a_claimed_timer(engine: sa.Engine) -> None:
    clock = Clock(START)
    membership = setup(engine, clock)
    clock.now = START + 9 * MINUTE + 5
    claimed = membership.claim_timers("a", 10)
    membership.apply(
        ProfileChange("acme", "p1", 2, events=(EventFact("v2", "Page Viewed", clock.now),))
    )
    for segment_pk, profile_pk in claimed:
        assert membership.fire_timer("a", segment_pk, profile_pk).log_ids == []
    assert transitions(engine) == []
    assert membership.next_due() == clock.now + 10 * MINUTE
