"""Applying events: idempotency, history, traits, and what is announced (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from mailwright.profile.v1 import profile_pb2
from mailwright_profile.identity import Identity
from mailwright_profile.simulate import Clock, identify, page, track
from mailwright_profile.store import CHANGED_TOPIC, ProfileStore

NOW = Clock().now
Apply = Callable[..., Any]


def _changed(result: object) -> list[profile_pb2.ProfileChanged]:
    return [
        profile_pb2.ProfileChanged.FromString(o.payload)
        for o in result.outgoing  # type: ignore[attr-defined]
        if o.topic == CHANGED_TOPIC
    ]


def test_an_event_applied_twice_is_stored_once(store: ProfileStore, apply: Apply) -> None:
    event = track("Product Viewed", anonymous_id="a1", message_id="m1", at=NOW)
    first = apply(event)
    second = apply(event)
    assert (first.applied, second.applied, second.duplicates) == (1, 0, 1)
    profile = store.lookup("acme", Identity("anonymous_id", "a1"))
    assert profile is not None
    rows = store.list_events("acme", profile.profile_id, [], None, None, None, 100)
    assert [row.message_id for row in rows] == ["m1"]
    assert second.outgoing == []


def test_duplicates_within_one_batch_count_once(store: ProfileStore, apply: Apply) -> None:
    event = track("Product Viewed", anonymous_id="a1", message_id="m1", at=NOW)
    result = apply(event, event)
    assert (result.applied, result.duplicates) == (1, 1)


def test_history_is_newest_first_and_pages_by_position(store: ProfileStore, apply: Apply) -> None:
    events = [
        page("Home", anonymous_id="a1", message_id=f"m{i}", at=NOW + timedelta(minutes=i))
        for i in range(7)
    ]
    apply(*events)
    profile = store.lookup("acme", Identity("anonymous_id", "a1"))
    assert profile is not None
    first = store.list_events("acme", profile.profile_id, [], None, None, None, 3)
    after = (first[-1].occurred_at, first[-1].message_id)
    second = store.list_events("acme", profile.profile_id, [], None, None, after, 10)
    assert [r.message_id for r in first] == ["m6", "m5", "m4"]
    assert [r.message_id for r in second] == ["m3", "m2", "m1", "m0"]


def test_history_filters_by_name_and_time(store: ProfileStore, apply: Apply) -> None:
    apply(
        track("Product Viewed", anonymous_id="a1", message_id="v1", at=NOW),
        track("Order Completed", anonymous_id="a1", message_id="o1", at=NOW + timedelta(days=1)),
        track("Product Viewed", anonymous_id="a1", message_id="v2", at=NOW + timedelta(days=2)),
    )
    profile = store.lookup("acme", Identity("anonymous_id", "a1"))
    assert profile is not None
    views = store.list_events("acme", profile.profile_id, ["Product Viewed"], None, None, None, 9)
    window = store.list_events(
        "acme", profile.profile_id, [], NOW + timedelta(hours=1), NOW + timedelta(days=2), None, 9
    )
    assert [r.message_id for r in views] == ["v2", "v1"]
    assert [r.message_id for r in window] == ["o1"]


def test_identify_writes_traits_and_links_email(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"email": " Ada@Example.COM ", "first_name": "Ada"}))
    profile = store.lookup("acme", Identity("email", "ada@example.com"))
    assert profile is not None
    assert profile.traits == {"email": " Ada@Example.COM ", "first_name": "Ada"}
    assert {link.identity for link in profile.identities} == {
        Identity("user_id", "u1"),
        Identity("email", "ada@example.com"),
    }


def test_an_older_event_does_not_overwrite_a_newer_trait(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"plan": "pro"}, at=NOW))
    apply(identify(user_id="u1", traits={"plan": "free"}, at=NOW - timedelta(days=1)))
    profile = store.lookup("acme", Identity("user_id", "u1"))
    assert profile is not None
    assert profile.traits["plan"] == "pro"


def test_a_null_trait_is_removed_and_announced(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"plan": "pro"}, at=NOW))
    result = apply(identify(user_id="u1", traits={"plan": None}, at=NOW + timedelta(hours=1)))
    profile = store.lookup("acme", Identity("user_id", "u1"))
    assert profile is not None
    assert "plan" not in profile.traits
    (changed,) = _changed(result)
    assert "plan" in changed.removed_traits


def test_changes_announce_traits_events_and_computed_traits(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    result = apply(
        identify(user_id="u1", traits={"plan": "pro"}, at=NOW, message_id="i1"),
        track(
            "Order Completed",
            user_id="u1",
            at=NOW,
            message_id="o1",
            properties={"revenue": "12.50", "currency": "EUR"},
        ),
    )
    (changed,) = _changed(result)
    assert changed.workspace == "acme"
    assert changed.version == 1
    assert dict(changed.traits) == {"plan": "pro"}
    assert [e.message_id for e in changed.events] == ["i1", "o1"]
    assert all(e.profile_id == changed.profile_id for e in changed.events)
    assert changed.computed_traits["orders_count"] == 1
    assert changed.computed_traits["total_revenue"] == 12.5
    assert [i.type for i in changed.identities] == ["user_id"]


def test_versions_increase_with_each_change(store: ProfileStore, apply: Apply) -> None:
    first = _changed(apply(page(anonymous_id="a1")))[0]
    second = _changed(apply(page(anonymous_id="a1")))[0]
    assert (first.version, second.version) == (1, 2)


def test_workspaces_never_share_identities(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", workspace="acme", traits={"plan": "pro"}))
    apply(identify(user_id="u1", workspace="globex", traits={"plan": "free"}))
    acme = store.lookup("acme", Identity("user_id", "u1"))
    globex = store.lookup("globex", Identity("user_id", "u1"))
    assert acme is not None
    assert globex is not None
    assert acme.profile_id != globex.profile_id
    assert store.get("globex", acme.profile_id) is None
    assert (acme.traits["plan"], globex.traits["plan"]) == ("pro", "free")


def test_an_event_addressed_to_a_profile_id_lands_there(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"plan": "pro"}))
    profile = store.lookup("acme", Identity("user_id", "u1"))
    assert profile is not None
    apply(
        track(
            "Email Opened",
            anonymous_id="delivery",
            profile_id=profile.profile_id,
            properties={"send_id": "s1"},
        )
    )
    again = store.get("acme", profile.profile_id)
    assert again is not None
    assert "s1" in again.aggregates.sends
    assert store.lookup("acme", Identity("anonymous_id", "delivery")) is not None


def test_observed_trait_keys_are_kept_with_their_type(store: ProfileStore, apply: Apply) -> None:
    apply(identify(user_id="u1", traits={"age": 41, "signup": "2025-01-02T03:04:05Z"}))
    assert store.trait_keys("acme") == [("age", "number"), ("signup", "timestamp")]


def test_computed_traits_kept_with_the_profile_match_a_full_evaluation(
    store: ProfileStore, clock: Clock
) -> None:
    import sqlalchemy as sa

    from mailwright_profile.computed.registry import REGISTRY, Changes, evaluate_all
    from mailwright_profile.events import read_event
    from mailwright_profile.simulate import event_stream
    from mailwright_profile.store import tables as t

    events = list(
        event_stream(600, people=40, seed=5, start=clock() - timedelta(hours=12), days=0.5)
    )
    for start in range(0, len(events), 37):
        store.apply_batch([read_event(e) for e in events[start : start + 37]], clock())
    clock_traits = {trait.key for trait in REGISTRY if trait.changes is Changes.CLOCK}
    with store.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.profiles.c.profile_id, t.profiles.c.computed).where(
                t.profiles.c.merged_into.is_(None)
            )
        ).all()
    assert len(rows) > 10
    for row in rows:
        view = store.get("acme", row.profile_id)
        assert view is not None
        full = evaluate_all(view.aggregates, view.consents, clock())
        kept = {k: v for k, v in row.computed.items() if k not in clock_traits}
        assert kept == {k: v for k, v in full.items() if k not in clock_traits}
