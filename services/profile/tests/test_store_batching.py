"""A batch applies its events as if they came one at a time (SQLite and PostgreSQL).

The batch apply loads what it needs for the whole batch at once and writes with a few
bulk statements; these cases are where that could differ from applying the events one
by one: the same person twice, a merge, a duplicate message id and an alias after a
track, all inside one batch. Each case applies the same events in one batch in one
workspace and one by one in another, then compares everything the profiles hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from mailwright.common.v1 import event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright_profile.events import read_event
from mailwright_profile.identity import Identity
from mailwright_profile.profile_state import ProfileState
from mailwright_profile.simulate import Clock, alias, event_stream, identify, page, track
from mailwright_profile.store import CHANGED_TOPIC, BatchResult, ProfileStore
from mailwright_profile.store import tables as t
from mailwright_profile.store.rows import load_states

NOW = Clock().now
Events = Callable[[str], list[event_pb2.Event]]


def _summary(store: ProfileStore, workspace: str) -> list[tuple[Any, ...]]:
    """Every live profile of a workspace, without its id: identities, projections and
    history (message ids), sorted so that two workspaces compare."""
    p, i, e = t.profiles, t.identities, t.events
    found = []
    with store.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(p).where(p.c.workspace == workspace, p.c.merged_into.is_(None))
        ).all()
        for row in rows:
            links = conn.execute(
                sa.select(i.c.type, i.c.value).where(
                    i.c.workspace == workspace, i.c.profile_id == row.profile_id
                )
            ).all()
            history = conn.execute(
                sa.select(e.c.message_id).where(
                    e.c.workspace == workspace, e.c.profile_id == row.profile_id
                )
            ).all()
            found.append(
                (
                    sorted((link.type, link.value) for link in links),
                    sorted(h.message_id for h in history),
                    json.dumps(
                        [row.traits, row.trait_meta, row.computed, row.aggregates, row.consents],
                        sort_keys=True,
                        default=str,
                    ),
                    row.first_seen,
                    row.last_seen,
                )
            )
    return sorted(found, key=lambda item: (item[0], item[1]))


def _batch_and_one_by_one(store: ProfileStore, events: Events) -> BatchResult:
    """Apply `events("batched")` in one batch and `events("single")` one at a time;
    assert both workspaces end the same. Returns the batch's result."""
    now = NOW + timedelta(days=1)
    result = store.apply_batch([read_event(ev) for ev in events("batched")], now)
    for ev in events("single"):
        store.apply_batch([read_event(ev)], now)
    assert _summary(store, "batched") == _summary(store, "single")
    return result


def _changed(result: BatchResult) -> list[profile_pb2.ProfileChanged]:
    return [
        profile_pb2.ProfileChanged.FromString(o.payload)
        for o in result.outgoing
        if o.topic == CHANGED_TOPIC
    ]


def _owner(store: ProfileStore, workspace: str, kind: str, value: str) -> str:
    found = store.owner(workspace, Identity(kind, value))
    assert found is not None, f"no profile holds {kind}={value}"
    return found


def test_the_same_person_twice_in_a_batch(store: ProfileStore) -> None:
    def events(ws: str) -> list[event_pb2.Event]:
        return [
            track(
                "Product Viewed",
                workspace=ws,
                anonymous_id="a1",
                message_id="v1",
                at=NOW,
                properties={"product_id": "p1", "category": "shoes"},
            ),
            identify(
                workspace=ws,
                anonymous_id="a1",
                message_id="i1",
                at=NOW + timedelta(minutes=1),
                traits={"first_name": "Ada"},
            ),
            track(
                "Order Completed",
                workspace=ws,
                anonymous_id="a1",
                message_id="o1",
                at=NOW + timedelta(minutes=2),
                properties={"revenue": 30, "currency": "EUR"},
            ),
            identify(
                workspace=ws,
                anonymous_id="a1",
                message_id="i0",
                at=NOW - timedelta(minutes=1),  # older: must not overwrite first_name
                traits={"first_name": "Old"},
            ),
        ]

    result = _batch_and_one_by_one(store, events)
    assert result.applied == 4
    changed = _changed(result)
    assert len(changed) == 1  # one profile, one announcement carrying all four events
    assert changed[0].version == 1
    profile = store.lookup("batched", Identity("anonymous_id", "a1"))
    assert profile is not None
    assert profile.traits["first_name"] == "Ada"
    assert profile.version == 1


def test_a_merge_inside_a_batch(store: ProfileStore) -> None:
    def events(ws: str) -> list[event_pb2.Event]:
        return [
            page("Home", workspace=ws, anonymous_id="phone", message_id="p1", at=NOW),
            page("Home", workspace=ws, anonymous_id="laptop", message_id="p2", at=NOW),
            identify(
                workspace=ws,
                anonymous_id="phone",
                user_id="u1",
                message_id="i1",
                at=NOW + timedelta(minutes=1),
                traits={"email": "ada@example.com"},
            ),
            identify(
                workspace=ws,
                anonymous_id="laptop",
                user_id="u1",
                message_id="i2",
                at=NOW + timedelta(minutes=2),
                traits={"last_name": "Lovelace"},
            ),
            track("Product Viewed", workspace=ws, anonymous_id="laptop", message_id="v1", at=NOW),
        ]

    result = _batch_and_one_by_one(store, events)
    assert len(result.merges) == 1
    root = _owner(store, "batched", "user_id", "u1")
    assert _owner(store, "batched", "anonymous_id", "phone") == root
    assert _owner(store, "batched", "anonymous_id", "laptop") == root
    rows = store.list_events("batched", root, [], None, None, None, 10)
    assert sorted(r.message_id for r in rows) == ["i1", "i2", "p1", "p2", "v1"]
    # Only the kept profile is announced; the one merged away is not.
    assert [c.profile_id for c in _changed(result)] == [root]


def test_a_merge_of_stored_profiles_inside_a_batch(store: ProfileStore) -> None:
    """The merged profiles exist before the batch (their rows move), and more events
    for both arrive in the batch around the identify that joins them."""
    for ws in ("batched", "single"):
        store.apply_batch(
            [
                read_event(
                    page("Home", workspace=ws, anonymous_id="phone", message_id="s1", at=NOW)
                ),
                read_event(
                    page("Home", workspace=ws, anonymous_id="laptop", message_id="s2", at=NOW)
                ),
            ],
            NOW,
        )

    def events(ws: str) -> list[event_pb2.Event]:
        return [
            page("Cart", workspace=ws, anonymous_id="laptop", message_id="b1", at=NOW),
            identify(workspace=ws, anonymous_id="phone", user_id="u1", message_id="b2", at=NOW),
            identify(workspace=ws, anonymous_id="laptop", user_id="u1", message_id="b3", at=NOW),
            page("Checkout", workspace=ws, anonymous_id="phone", message_id="b4", at=NOW),
        ]

    result = _batch_and_one_by_one(store, events)
    assert len(result.merges) == 1
    root = _owner(store, "batched", "user_id", "u1")
    rows = store.list_events("batched", root, [], None, None, None, 10)
    assert sorted(r.message_id for r in rows) == ["b1", "b2", "b3", "b4", "s1", "s2"]


def test_a_duplicate_message_id_inside_a_batch_is_applied_once(store: ProfileStore) -> None:
    def events(ws: str) -> list[event_pb2.Event]:
        first = track(
            "Order Completed",
            workspace=ws,
            anonymous_id="a1",
            message_id="o1",
            at=NOW,
            properties={"revenue": 10, "currency": "EUR"},
        )
        other = page("Home", workspace=ws, anonymous_id="a1", message_id="p1", at=NOW)
        return [first, other, first]

    result = _batch_and_one_by_one(store, events)
    assert (result.applied, result.duplicates) == (2, 1)
    profile = store.lookup("batched", Identity("anonymous_id", "a1"))
    assert profile is not None
    assert profile.aggregates.orders == 1


def test_an_alias_after_a_track_in_the_same_batch(store: ProfileStore) -> None:
    def events(ws: str) -> list[event_pb2.Event]:
        return [
            identify(workspace=ws, user_id="u1", message_id="i1", at=NOW),
            track("Product Viewed", workspace=ws, anonymous_id="anon", message_id="t1", at=NOW),
            alias(workspace=ws, user_id="u1", previous_id="anon", message_id="a1", at=NOW),
            track("Cart Added", workspace=ws, anonymous_id="anon", message_id="t2", at=NOW),
        ]

    result = _batch_and_one_by_one(store, events)
    root = _owner(store, "batched", "user_id", "u1")
    assert _owner(store, "batched", "anonymous_id", "anon") == root
    rows = store.list_events("batched", root, [], None, None, None, 10)
    assert sorted(r.message_id for r in rows) == ["a1", "i1", "t1", "t2"]
    assert result.profiles["t2"] == root


def test_a_redelivered_batch_changes_nothing(store: ProfileStore) -> None:
    made: Sequence[event_pb2.Event] = [
        identify(workspace="acme", anonymous_id="a1", user_id="u1", message_id="i1", at=NOW),
        track("Product Viewed", workspace="acme", anonymous_id="a1", message_id="v1", at=NOW),
        page("Home", workspace="acme", anonymous_id="a2", message_id="p1", at=NOW),
    ]
    first = store.apply_batch([read_event(e) for e in made], NOW)
    before = _summary(store, "acme")
    again = store.apply_batch([read_event(e) for e in made], NOW + timedelta(minutes=5))
    assert (again.applied, again.duplicates, again.outgoing) == (0, 3, [])
    assert again.profiles == first.profiles
    assert _summary(store, "acme") == before


def _strict(first: Any, second: Any, where: str = "") -> None:
    """Equal values of the same types all the way down (1, 1.0, [1] and (1,) differ)."""
    assert type(first) is type(second), f"{where}: {type(first)} != {type(second)}"
    if isinstance(first, dict):
        assert first.keys() == second.keys(), where
        for key in first:
            _strict(first[key], second[key], f"{where}.{key}")
    elif isinstance(first, list | tuple):
        assert len(first) == len(second), where
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            _strict(a, b, f"{where}[{index}]")
    else:
        assert first == second, f"{where}: {first!r} != {second!r}"


def _as_plain(state: ProfileState) -> dict[str, Any]:
    return {
        "workspace": state.workspace,
        "profile_id": state.profile_id,
        "created_at": state.created_at,
        "version": state.version,
        "first_seen": state.first_seen,
        "last_seen": state.last_seen,
        "traits": state.traits.values,
        "trait_meta": state.traits.meta,
        "aggregates": state.aggregates.to_json(),
        "consents": state.consents.to_json(),
        "computed": state.computed,
        "new": state.new,
        "evaluated_at": state.evaluated_at,
    }


def test_kept_states_are_the_stored_ones(store: ProfileStore) -> None:
    """What the store keeps between batches (store/cache.py) is exactly what reading the
    profile back gives, types included, batch after batch of a shop's stream."""
    events = [read_event(e) for e in event_stream(1200, people=60, seed=5)]
    for start in range(0, len(events), 150):
        store.apply_batch(events[start : start + 150], NOW + timedelta(days=start // 300))
        kept = list(store.states._states.values())
        assert kept
        with store.db.engine.connect() as conn:
            for state in kept:
                stored = load_states(conn, state.workspace, [state.profile_id], lock=False)
                _strict(_as_plain(state), _as_plain(stored[state.profile_id]), state.profile_id)
    assert store.states.hits > 0


def test_a_state_written_elsewhere_is_read_again(store: ProfileStore) -> None:
    """A profile changed by another path (here an unmerge) is not taken from the cache:
    the same story ends the same with states kept between batches and without."""

    def story(ws: str) -> None:
        def at(minutes: int) -> datetime:
            return NOW + timedelta(minutes=minutes)

        def apply(*events: event_pb2.Event) -> BatchResult:
            return store.apply_batch([read_event(e) for e in events], at(len(events)))

        apply(
            page("Home", workspace=ws, anonymous_id="phone", message_id="p1", at=NOW),
            page("Home", workspace=ws, anonymous_id="laptop", message_id="p2", at=NOW),
        )
        merged = apply(
            identify(workspace=ws, anonymous_id="phone", user_id="u1", message_id="i1", at=NOW),
            identify(workspace=ws, anonymous_id="laptop", user_id="u1", message_id="i2", at=NOW),
        )
        assert len(merged.merges) == 1
        store.unmerge(ws, merged.merges[0].merge_id, "test", at(5))
        apply(page("Cart", workspace=ws, anonymous_id="laptop", message_id="p3", at=at(6)))
        apply(page("Cart", workspace=ws, anonymous_id="phone", message_id="p4", at=at(7)))

    story("kept")
    assert store.states.misses > 0  # the unmerged profiles were read again
    store.states.limit = 0
    store.states.clear()
    story("plain")
    assert len(store.states) == 0
    assert _summary(store, "kept") == _summary(store, "plain")


def test_a_newer_write_of_the_same_value_is_stored_with_its_time_and_source(
    store: ProfileStore,
) -> None:
    """A batch writes a profile's traits only when they changed; a winning write that
    keeps the value still changes who wrote it and when, and that is stored too."""

    def apply(*events: event_pb2.Event) -> None:
        store.apply_batch([read_event(e) for e in events], NOW + timedelta(hours=1))

    def stored_meta() -> list[str]:
        profile = _owner(store, "acme", "user_id", "u1")
        with store.db.engine.connect() as conn:
            state = load_states(conn, "acme", [profile], lock=False)[profile]
        return state.traits.meta["first_name"]

    apply(identify(user_id="u1", message_id="i1", at=NOW, traits={"first_name": "Ada"}))
    later = NOW + timedelta(minutes=5)
    apply(
        identify(
            user_id="u1", message_id="i2", at=later, traits={"first_name": "Ada"}, source="crm"
        )
    )
    apply(page("Home", user_id="u1", message_id="p1", at=later))  # traits untouched
    assert stored_meta()[1] == "crm"
    assert stored_meta()[0].startswith(later.isoformat()[:19])
    assert store.states.hits > 0  # the second and third batches took the kept state
