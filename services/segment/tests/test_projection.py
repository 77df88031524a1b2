"""The projection: merges move a person's data, erasure removes all of it, redelivery and
stale versions change nothing, and pruning keeps results through the day buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from mailwright.rules import parse
from mailwright_segment.catalog import RuleInput, SegmentCatalog
from mailwright_segment.engine import MembershipEngine
from mailwright_segment.facts import EmailFact, EventFact, ProfileChange, ProfileErasure
from mailwright_segment.incremental import compile_rule
from mailwright_segment.specs import Spec
from mailwright_segment.store import memberships as membership_store
from mailwright_segment.store import projection, tables
from mailwright_segment.store.compile import Scope, members_query
from mailwright_segment.values import MICROS_PER_DAY, to_micros

NOW = to_micros(datetime(2024, 6, 1, 12, tzinfo=UTC))
DAY = MICROS_PER_DAY
WS = "acme"


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def service(engine: sa.Engine, now: int = NOW, retention_days: int = 400) -> MembershipEngine:
    return MembershipEngine(engine, clock=Clock(now), retention=timedelta(days=retention_days))


def order(message_id: str, at: int, revenue: str = "10") -> EventFact:
    return EventFact(message_id, "Order Completed", at, {"revenue": Decimal(revenue)})


def rows(engine: sa.Engine, table: sa.Table, **where: object) -> list[sa.Row]:  # type: ignore[type-arg]
    query = sa.select(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return list(conn.execute(query))


def pk_of(engine: sa.Engine, profile_id: str) -> int | None:
    with engine.connect() as conn:
        return projection.lock_profile(conn, WS, profile_id)


def members(engine: sa.Engine, text: str, now: int) -> set[str]:
    with engine.connect() as conn:
        query = members_query(parse(text), Scope(WS, now), engine.dialect.name)
        return {r.profile_id for r in conn.execute(query)}


def incremental(engine: sa.Engine, text: str, profile_id: str, now: int) -> bool:
    plan = compile_rule(parse(text))
    with engine.connect() as conn:
        pk = projection.lock_profile(conn, WS, profile_id)
        assert pk is not None
        coverage = projection.pruned_before(conn, WS)
        state = projection.load_state(conn, WS, pk, plan.spec_ids, emails=True, coverage=coverage)
    return plan.evaluate(state, now)


def test_a_merge_moves_events_buckets_and_sends_to_the_kept_person(engine: sa.Engine) -> None:
    membership = service(engine)
    membership.apply(
        ProfileChange(
            WS,
            "kept",
            1,
            traits={"country": "FR"},
            events=(order("o1", NOW - DAY),),
            emails=(EmailFact("e1", "s1", "sent", NOW - 2 * DAY),),
        )
    )
    membership.apply(
        ProfileChange(
            WS,
            "gone",
            1,
            traits={"country": "DE"},
            events=(order("o2", NOW - DAY + 1, "5.5"),),
            emails=(EmailFact("e2", "s1", "open", NOW - DAY),),
        )
    )
    kept, gone = pk_of(engine, "kept"), pk_of(engine, "gone")
    membership.apply(ProfileChange(WS, "kept", 2, merged_profile_ids=("gone",)))
    assert pk_of(engine, "gone") is None
    (bucket,) = rows(engine, tables.buckets, pk=kept, spec_id=Spec("Order Completed").id)
    assert (bucket._mapping["count"], bucket.day) == (2, (NOW - DAY) // DAY)
    assert {r.message_id for r in rows(engine, tables.events, pk=kept)} == {"o1", "o2"}
    for table in (tables.events, tables.hits, tables.buckets, tables.sends, tables.traits):
        assert rows(engine, table, pk=gone) == []
    (send,) = rows(engine, tables.sends, pk=kept)
    assert (send.sent_at, send.first_open) == (NOW - 2 * DAY, NOW - DAY)
    text = 'sum(revenue) of event "Order Completed" in last 7 days = 15.5'
    assert members(engine, 'event "Order Completed" count = 2', NOW) == {"kept"}
    assert incremental(engine, "opened any of last 1 emails", "kept", NOW)
    SegmentCatalog(membership, retention=timedelta(days=400)).preview(WS, RuleInput(text), 5)
    assert members(engine, text, NOW) == {"kept"}
    assert incremental(engine, text, "kept", NOW)


def test_erasure_removes_everything_of_the_person(engine: sa.Engine) -> None:
    membership = service(engine)
    catalog = SegmentCatalog(membership, retention=timedelta(days=400))
    catalog.create(WS, "buyers", "", "", (), RuleInput('event "Order Completed"'))
    membership.apply(ProfileChange(WS, "p1", 1, traits={"tags": ["a"]}, events=(order("o1", NOW),)))
    membership.apply(ProfileChange(WS, "p2", 1, events=(order("o2", NOW),)))
    with engine.begin() as conn:
        membership_store.mark_published(conn, membership_store.unpublished(conn, None, 100))
    pk = pk_of(engine, "p1")
    outcome = membership.erase(ProfileErasure(WS, "p1"))
    for table in (
        tables.events,
        tables.hits,
        tables.buckets,
        tables.sends,
        tables.email_actions,
        tables.traits,
        tables.trait_items,
    ):
        assert rows(engine, table, pk=pk) == []
    assert rows(engine, tables.memberships, profile_pk=pk) == []
    (exit_,) = rows(engine, tables.membership_log, profile_id="p1")
    assert (exit_.transition, exit_.cause, exit_.erase, exit_.id) == (
        "exited",
        "deletion",
        True,
        outcome.log_ids[0],
    )
    with engine.begin() as conn:
        membership_store.mark_published(conn, membership_store.unpublished(conn, None, 100))
    assert rows(engine, tables.membership_log, profile_id="p1") == []
    assert [r.profile_id for r in rows(engine, tables.membership_log)] == ["p2"]


def test_a_redelivered_change_leaves_the_projection_as_it_was(engine: sa.Engine) -> None:
    membership = service(engine)
    change = ProfileChange(
        WS,
        "p1",
        1,
        events=(order("o1", NOW),),
        emails=(EmailFact("c1", "s1", "click", NOW),),
    )
    membership.apply(change)
    before = [rows(engine, t) for t in (tables.events, tables.hits, tables.buckets, tables.sends)]
    membership.apply(change)
    after = [rows(engine, t) for t in (tables.events, tables.hits, tables.buckets, tables.sends)]
    assert after == before


def test_a_long_change_partly_held_adds_only_its_new_events_with_exact_sums(
    engine: sa.Engine,
) -> None:
    """More events than one multi-row INSERT takes (500), the first 300 already held: each
    new event is recorded once, in the events, the hits and the day bucket's exact sums."""
    membership = service(engine)
    rule = 'sum(revenue) of event "Order Completed" > 1'
    SegmentCatalog(membership, retention=timedelta(days=400)).preview(WS, RuleInput(rule), 1)
    spec = Spec("Order Completed", measure="revenue")
    orders = tuple(order(f"o{i}", NOW - DAY - i, f"{i}.01") for i in range(1_200))
    membership.apply(ProfileChange(WS, "p1", 1, events=orders[:300]))
    membership.apply(ProfileChange(WS, "p1", 2, events=orders))
    assert len(rows(engine, tables.events)) == 1_200
    assert len(rows(engine, tables.hits, spec_id=spec.id)) == 1_200
    (bucket,) = rows(engine, tables.buckets, spec_id=spec.id)
    assert bucket.count == bucket.n == 1_200
    assert bucket.total == sum(Decimal(f"{i}.01") for i in range(1_200))
    assert (bucket.minimum, bucket.maximum) == (Decimal("0.01"), Decimal("1199.01"))
    assert members(engine, 'sum(revenue) of event "Order Completed" = 719412', NOW) == {"p1"}


def test_an_older_version_does_not_overwrite_newer_traits(engine: sa.Engine) -> None:
    membership = service(engine)
    membership.apply(ProfileChange(WS, "p1", 5, traits={"country": "FR"}))
    membership.apply(ProfileChange(WS, "p1", 4, traits={"country": "DE"}))
    assert members(engine, 'trait country = "FR"', NOW) == {"p1"}


def test_pruned_history_still_counts_through_day_buckets(engine: sa.Engine) -> None:
    membership = service(engine, now=NOW, retention_days=30)
    old = NOW - 45 * DAY
    events = tuple(order(f"o{i}", old + i * DAY // 5) for i in range(3))
    events += (order("recent", NOW - 2 * DAY),)
    membership.apply(ProfileChange(WS, "p1", 1, events=events))
    SegmentCatalog(membership, retention=timedelta(days=400)).preview(
        WS, RuleInput('event "Order Completed" where revenue > 1'), 1
    )
    deleted = membership.prune()
    assert deleted > 0
    assert [r.message_id for r in rows(engine, tables.events)] == ["recent"]
    for text, expected in (
        ('event "Order Completed" count = 4', True),
        ('event "Order Completed" where revenue > 1 count = 4', True),
        ('event "Order Completed" count = 1 in last 30 days', True),
        ('event "Order Completed" count = 3 between 2024-04-16 and 2024-04-18', True),
    ):
        assert (members(engine, text, NOW) == {"p1"}) is expected, text
        assert incremental(engine, text, "p1", NOW) is expected, text


def test_an_unmerge_takes_the_restored_persons_events_back(engine: sa.Engine) -> None:
    membership = service(engine)
    membership.apply(ProfileChange(WS, "a", 1, events=(order("o1", NOW - DAY),)))
    membership.apply(ProfileChange(WS, "b", 1, events=(order("o2", NOW - DAY),)))
    membership.apply(ProfileChange(WS, "a", 2, merged_profile_ids=("b",)))
    assert members(engine, 'event "Order Completed" count = 2', NOW) == {"a"}
    membership.apply(ProfileChange(WS, "b", 1, events=(order("o2", NOW - DAY),), unmerged_from="a"))
    assert members(engine, 'event "Order Completed" count = 1', NOW) == {"a", "b"}
    assert incremental(engine, 'event "Order Completed" count = 1', "a", NOW)
