"""Identity in the store: stitching, aliases, refused merges, merge and unmerge, explain
(SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from mailwright.errors import FailedPrecondition
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.simulate import Clock, alias, identify, page, track
from mailwright_profile.store import ProfileStore
from mailwright_profile.store.identities import Refused
from mailwright_profile.views import MergeReason, ProfileView

NOW = Clock().now
Apply = Callable[..., Any]


def profile_of(store: ProfileStore, kind: str, value: str) -> ProfileView:
    found = store.lookup("acme", Identity(kind, value))
    assert found is not None, f"no profile holds {kind} {value}"
    return found


def history(store: ProfileStore, profile_id: str) -> list[str]:
    rows = store.list_events("acme", profile_id, [], None, None, None, 1000)
    return sorted(row.message_id for row in rows)


def snapshot(store: ProfileStore, profile_id: str, clock: Clock) -> dict[str, Any]:
    view = store.get("acme", profile_id)
    assert view is not None
    from mailwright_profile.computed.registry import evaluate_all

    return {
        "identities": sorted((link.identity, link.home_id) for link in view.identities),
        "traits": view.traits,
        "trait_meta": view.trait_meta,
        "computed": evaluate_all(view.aggregates, view.consents, clock()),
        "consents": view.consents,
        "events": history(store, profile_id),
        "first_seen": view.first_seen,
        "last_seen": view.last_seen,
    }


def test_anonymous_history_follows_the_person_who_signs_in(
    store: ProfileStore, apply: Apply
) -> None:
    apply(page("Home", anonymous_id="a1", message_id="p1", at=NOW))
    apply(track("Product Viewed", anonymous_id="a1", message_id="v1", at=NOW))
    apply(identify(user_id="u1", anonymous_id="a1", message_id="i1", traits={"plan": "pro"}))
    profile = profile_of(store, "user_id", "u1")
    assert profile.profile_id == profile_of(store, "anonymous_id", "a1").profile_id
    assert history(store, profile.profile_id) == ["i1", "p1", "v1"]


def test_a_known_person_browsing_on_a_new_device_merges_both_histories(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(identify(user_id="u1", anonymous_id="a1", message_id="i1", traits={"plan": "pro"}))
    apply(page("Home", anonymous_id="a2", message_id="p2", at=NOW))
    result = apply(identify(user_id="u1", anonymous_id="a2", message_id="i2"))
    profile = profile_of(store, "user_id", "u1")
    assert history(store, profile.profile_id) == ["i1", "i2", "p2"]
    (merge,) = result.merges
    assert merge.reason == MergeReason.IDENTIFY
    assert merge.message_id == "i2"
    assert set(merge.shared) == {Identity("user_id", "u1"), Identity("anonymous_id", "a2")}
    assert merge.absorbed_id in profile.merged_profiles
    assert store.get("acme", merge.absorbed_id).profile_id == profile.profile_id  # type: ignore[union-attr]


def test_alias_links_an_anonymous_id_to_the_user(store: ProfileStore, apply: Apply) -> None:
    apply(page("Home", anonymous_id="a1", message_id="p1"))
    apply(identify(user_id="u1", message_id="i1", traits={"plan": "pro"}))
    result = apply(alias(user_id="u1", previous_id="a1", message_id="al1"))
    profile = profile_of(store, "user_id", "u1")
    assert profile_of(store, "anonymous_id", "a1").profile_id == profile.profile_id
    assert history(store, profile.profile_id) == ["al1", "i1", "p1"]
    assert [m.reason for m in result.merges] == [MergeReason.ALIAS]


def test_alias_of_an_old_user_id_is_refused_by_the_unique_user_id_policy(
    store: ProfileStore, apply: Apply
) -> None:
    apply(identify(user_id="old", message_id="i1"))
    apply(identify(user_id="new", message_id="i2"))
    result = apply(alias(user_id="new", previous_id="old", message_id="al1"))
    assert result.merges == []
    assert (
        profile_of(store, "user_id", "old").profile_id
        != profile_of(store, "user_id", "new").profile_id
    )
    explanation = store.explain("acme", profile_of(store, "user_id", "new").profile_id, None, None)
    assert [r.identity_type for r in explanation.refusals] == ["user_id"]


def test_an_identify_joining_two_user_ids_is_refused_and_recorded(
    store: ProfileStore, apply: Apply
) -> None:
    apply(identify(user_id="u1", anonymous_id="shared-laptop", message_id="i1"))
    apply(identify(user_id="u2", anonymous_id="shared-laptop", message_id="i2"))
    first = profile_of(store, "user_id", "u1")
    second = profile_of(store, "user_id", "u2")
    assert first.profile_id != second.profile_id
    assert profile_of(store, "anonymous_id", "shared-laptop").profile_id == first.profile_id
    assert history(store, second.profile_id) == ["i2"]
    refusals = store.explain("acme", first.profile_id, None, None).refusals
    assert [(r.profile_id, r.other_id, r.message_id) for r in refusals] == [
        (first.profile_id, second.profile_id, "i2")
    ]


def test_a_workspace_may_make_email_unique(store: ProfileStore, apply: Apply, clock: Clock) -> None:
    store.put_policy("acme", MergePolicy(unique_identity_types=("user_id", "email")), clock())
    apply(identify(anonymous_id="a1", message_id="i1", traits={"email": "x@example.com"}))
    apply(identify(anonymous_id="a2", message_id="i2", traits={"email": "y@example.com"}))
    apply(identify(anonymous_id="a1", message_id="i3", identities={"email": "y@example.com"}))
    assert (
        profile_of(store, "anonymous_id", "a1").profile_id
        != profile_of(store, "anonymous_id", "a2").profile_id
    )


def test_source_priority_keeps_the_crm_value_over_a_newer_web_value(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    store.put_policy("acme", MergePolicy(source_priority=("salesforce",)), clock())
    apply(identify(user_id="u1", traits={"first_name": "Robert"}, source="salesforce", at=NOW))
    apply(
        identify(
            user_id="u1", traits={"first_name": "Bob"}, source="http", at=NOW + timedelta(days=1)
        )
    )
    assert profile_of(store, "user_id", "u1").traits["first_name"] == "Robert"


def _two_people(apply: Apply) -> None:
    apply(
        identify(
            user_id="u1",
            anonymous_id="a1",
            message_id="i1",
            at=NOW,
            traits={"plan": "pro", "city": "Paris"},
        ),
        track(
            "Order Completed",
            user_id="u1",
            message_id="o1",
            at=NOW,
            properties={"revenue": "40", "currency": "EUR"},
        ),
        track("Unsubscribed", user_id="u1", message_id="un1", at=NOW, properties={"send_id": "s1"}),
        page("Home", anonymous_id="a1", message_id="p1", at=NOW, category="shoes"),
    )
    apply(
        identify(
            anonymous_id="b1",
            message_id="j1",
            at=NOW + timedelta(hours=1),
            traits={"plan": "free", "email": "b@example.com"},
        ),
        track(
            "Product Viewed",
            anonymous_id="b1",
            message_id="v1",
            at=NOW + timedelta(hours=2),
            properties={"product_id": "sku-1", "category": "bags"},
        ),
    )


def test_merge_then_unmerge_restores_both_profiles_exactly(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    _two_people(apply)
    kept = profile_of(store, "user_id", "u1").profile_id
    absorbed = profile_of(store, "anonymous_id", "b1").profile_id
    before = {p: snapshot(store, p, clock) for p in (kept, absorbed)}
    outcome = store.merge("acme", kept, [absorbed], "ops@acme", "same customer", clock())
    assert not isinstance(outcome, Refused)
    merged = snapshot(store, kept, clock)
    assert merged["events"] == sorted(before[kept]["events"] + before[absorbed]["events"])
    assert merged["traits"]["plan"] == "free"  # the newer write wins
    (merge,) = outcome.merges
    assert (merge.reason, merge.actor) == (MergeReason.MANUAL, "ops@acme")
    store.unmerge("acme", merge.merge_id, "ops@acme", clock())
    after = {p: snapshot(store, p, clock) for p in (kept, absorbed)}
    assert after == before


def test_unmerge_gives_back_what_arrived_through_the_absorbed_side(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(identify(user_id="u1", message_id="i1", at=NOW))
    apply(page("Home", anonymous_id="a1", message_id="p1", at=NOW))
    result = apply(identify(user_id="u1", anonymous_id="a1", message_id="i2", at=NOW))
    apply(page("Later", anonymous_id="a1", message_id="p2", at=NOW + timedelta(hours=1)))
    apply(page("Account", user_id="u1", message_id="p3", at=NOW + timedelta(hours=1)))
    (merge,) = result.merges
    store.unmerge("acme", merge.merge_id, "ops", clock())
    user = profile_of(store, "user_id", "u1").profile_id
    anonymous = profile_of(store, "anonymous_id", "a1").profile_id
    assert user != anonymous
    assert history(store, user) == ["i1", "i2", "p3"]
    assert history(store, anonymous) == ["p1", "p2"]


def test_unmerged_profiles_are_not_merged_again_by_later_events(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(identify(user_id="u1", message_id="i1"))
    apply(page(anonymous_id="a1", message_id="p1"))
    (merge,) = apply(identify(user_id="u1", anonymous_id="a1", message_id="i2")).merges
    store.unmerge("acme", merge.merge_id, "ops", clock())
    again = apply(identify(user_id="u1", anonymous_id="a1", message_id="i3"))
    assert again.merges == []
    assert (
        profile_of(store, "user_id", "u1").profile_id
        != profile_of(store, "anonymous_id", "a1").profile_id
    )


def test_an_unmerge_keeps_its_pair_apart_only_in_its_own_workspace(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    # The batch asks once per workspace whether any unmerge happened there, and skips
    # the search for one otherwise: an unmerge in acme must not be missed by a batch
    # that also merges in globex, nor stop globex's merges.
    for ws in ("acme", "globex"):
        apply(identify(user_id="u1", message_id=f"{ws}-i1", workspace=ws))
        apply(page(anonymous_id="a1", message_id=f"{ws}-p1", workspace=ws))
    (merge,) = apply(identify(user_id="u1", anonymous_id="a1", message_id="acme-i2")).merges
    store.unmerge("acme", merge.merge_id, "ops", clock())
    result = apply(
        identify(user_id="u1", anonymous_id="a1", message_id="globex-i2", workspace="globex"),
        identify(user_id="u1", anonymous_id="a1", message_id="acme-i3"),
    )
    assert [m.workspace for m in result.merges] == ["globex"]
    assert (
        profile_of(store, "user_id", "u1").profile_id
        != profile_of(store, "anonymous_id", "a1").profile_id
    )
    user = store.lookup("globex", Identity("user_id", "u1"))
    anonymous = store.lookup("globex", Identity("anonymous_id", "a1"))
    assert user is not None
    assert anonymous is not None
    assert user.profile_id == anonymous.profile_id


def test_a_merge_is_reversed_once(store: ProfileStore, apply: Apply, clock: Clock) -> None:
    apply(identify(user_id="u1", message_id="i1"))
    apply(page(anonymous_id="a1", message_id="p1"))
    (merge,) = apply(identify(user_id="u1", anonymous_id="a1", message_id="i2")).merges
    store.unmerge("acme", merge.merge_id, "ops", clock())
    with pytest.raises(FailedPrecondition):
        store.unmerge("acme", merge.merge_id, "ops", clock())


def test_a_manual_merge_of_two_user_ids_is_refused_and_recorded(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(identify(user_id="u1"), identify(user_id="u2"))
    first = profile_of(store, "user_id", "u1").profile_id
    second = profile_of(store, "user_id", "u2").profile_id
    outcome = store.merge("acme", first, [second], "ops", "", clock())
    assert isinstance(outcome, Refused)
    assert "user_id" in outcome.reasons[0]
    assert store.get("acme", second).profile_id == second  # type: ignore[union-attr]
    assert len(store.explain("acme", first, None, None).refusals) == 1


def test_explain_gives_the_chain_of_merges_between_two_identities(
    store: ProfileStore, apply: Apply
) -> None:
    apply(page(anonymous_id="a1", message_id="p1"))
    apply(page(anonymous_id="a2", message_id="p2"))
    apply(identify(user_id="u1", anonymous_id="a1", message_id="i1"))
    apply(identify(user_id="u1", anonymous_id="a2", message_id="i2"))
    root = profile_of(store, "user_id", "u1").profile_id
    explanation = store.explain(
        "acme", root, Identity("anonymous_id", "a1"), Identity("anonymous_id", "a2")
    )
    assert explanation.same_profile
    assert [m.message_id for m in explanation.merges] == ["i2"]
    assert {link.identity for link in explanation.links} == {
        Identity("anonymous_id", "a1"),
        Identity("anonymous_id", "a2"),
    }
    whole = store.explain("acme", root, None, None)
    assert [m.message_id for m in whole.merges] == ["i2"]
    assert len(whole.links) == 3


@pytest.mark.parametrize("stored", ["none", "one", "both"])
def test_history_sent_early_in_a_batch_follows_a_merge_made_later_in_it(
    store: ProfileStore, apply: Apply, monkeypatch: pytest.MonkeyPatch, stored: str
) -> None:
    """On PostgreSQL the history goes out while a batch is applied
    (`BatchApply.stream_history`): an event sent under a profile that a later event of
    the same batch merges away ends up under the profile it was merged into, whether the
    two profiles were made in the batch or stored before it (SQLite writes the history
    at the end: the same outcome)."""
    import sqlalchemy as sa

    from mailwright_profile.store import apply as apply_module
    from mailwright_profile.store import tables as t

    before = {
        "none": [],
        "one": [page("Home", anonymous_id="a2", message_id="p0", at=NOW)],
        "both": [
            page("Home", anonymous_id="a2", message_id="p0", at=NOW),
            identify(user_id="u1", anonymous_id="a1", message_id="i0"),
        ],
    }[stored]
    if before:
        apply(*before)
    monkeypatch.setattr(apply_module, "HISTORY_CHUNK", 1)
    apply(
        identify(user_id="u1", anonymous_id="a1", message_id="i1"),
        page("Home", anonymous_id="a2", message_id="p2", at=NOW),
        track("Product Viewed", anonymous_id="a2", message_id="v2", at=NOW),
        identify(user_id="u1", anonymous_id="a2", message_id="i2"),
        page("Cart", anonymous_id="a2", message_id="p3", at=NOW),
    )
    profile = profile_of(store, "user_id", "u1")
    expected = ["i1", "i2", "p2", "p3", "v2"] + [e.message_id for e in before]
    assert history(store, profile.profile_id) == sorted(expected)
    with store.db.engine.connect() as conn:
        held = conn.execute(sa.select(t.events.c.profile_id).distinct()).scalars().all()
    assert held == [profile.profile_id]
