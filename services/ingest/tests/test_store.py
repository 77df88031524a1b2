"""The ingest store on SQLite and PostgreSQL: workspaces, policies, definitions, keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

from mailwright.runtime.db import Database
from mailwright.taxonomy import EventFamily, EventSpec, PropertySpec, PropertyType, default_taxonomy
from mailwright_ingest.app import MIGRATIONS
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.policy import Policy, Unplanned
from mailwright_ingest.store import IngestStore

DEFAULTS = Policy.defaults(IngestSettings())
SEED = default_taxonomy().events
SIGNUP = EventSpec(
    "Signed Up",
    EventFamily.TRACK,
    "A person created an account.",
    (PropertySpec("plan", PropertyType.STRING, True, ("free", "pro")),),
    ("acquisition",),
    5.0,
)


@pytest.fixture
def store(database_url: str) -> Iterator[IngestStore]:
    db = Database(database_url, service="ingest", migrations=MIGRATIONS)
    db.migrate()
    try:
        yield IngestStore(db)
    finally:
        db.close()


def test_migrations_reach_the_head(store: IngestStore) -> None:
    assert store.db.current_revision() == store.db.head_revision()


def test_a_new_workspace_gets_the_default_policy_and_taxonomy_once(store: IngestStore) -> None:
    assert store.ensure_workspace("acme", DEFAULTS, SEED)
    assert store.get_policy("acme") == DEFAULTS
    assert len(store.all_definitions("acme")) == len(SEED)
    store.delete_definition("acme", "order-completed")
    assert not store.ensure_workspace("acme", DEFAULTS, SEED)
    assert store.get_definition("acme", "order-completed") is None


def test_definitions_round_trip_with_every_field(store: IngestStore) -> None:
    stored, created = store.upsert_definition("acme", SIGNUP)
    assert created
    assert stored.id == "signed-up"
    again = store.get_definition("acme", "signed-up")
    assert again is not None
    assert again.spec == SIGNUP
    _, created = store.upsert_definition("acme", replace(SIGNUP, weight=7.0))
    assert not created
    found = store.get_definition("acme", "signed-up")
    assert found is not None
    assert found.spec.weight == 7.0


def test_workspaces_do_not_see_each_others_definitions(store: IngestStore) -> None:
    store.upsert_definition("acme", SIGNUP)
    assert store.get_definition("other", "signed-up") is None
    assert store.all_definitions("other") == []


def test_listing_pages_through_ids_and_filters_by_tag(store: IngestStore) -> None:
    store.ensure_workspace("acme", DEFAULTS, SEED)
    first = store.list_definitions("acme", "", 5)
    second = store.list_definitions("acme", first[-1].id, 5)
    assert [d.id for d in first] == sorted(d.id for d in first)
    assert first[-1].id < second[0].id
    tagged = store.list_definitions("acme", "", 100, tag="cart abandonment")
    assert {d.spec.event for d in tagged} >= {"Product Added", "Checkout Started"}
    assert all("cart abandonment" in d.spec.tags for d in tagged)


def test_apply_creates_updates_and_prunes_in_one_go(store: IngestStore) -> None:
    store.ensure_workspace("acme", DEFAULTS, SEED)
    order = next(s for s in SEED if s.event == "Order Completed")
    applied = store.apply_taxonomy("acme", [SIGNUP, order], prune=True)
    assert (applied.created, applied.updated) == (0, 2)
    assert applied.deleted == len(SEED) - 2
    assert {d.spec.event for d in store.all_definitions("acme")} == {"Signed Up", "Order Completed"}


def test_a_dry_run_changes_nothing_but_counts(store: IngestStore) -> None:
    store.ensure_workspace("acme", DEFAULTS, SEED)
    applied = store.apply_taxonomy("acme", [SIGNUP], prune=True, dry_run=True)
    assert applied.deleted == len(SEED) - 1
    assert len(store.all_definitions("acme")) == len(SEED)


def test_policies_are_replaced_whole(store: IngestStore) -> None:
    store.ensure_workspace("acme", DEFAULTS, ())
    wanted = replace(
        DEFAULTS,
        unplanned=Unplanned.REJECT,
        dedup_window=timedelta(hours=1),
        allowed_origins=("https://shop.example",),
    )
    store.put_policy("acme", wanted)
    assert store.get_policy("acme") == wanted


def test_write_keys_are_found_by_hash_and_revoked_once(store: IngestStore) -> None:
    created = store.create_write_key("acme", "k1", "website", "h" * 64, "mwk_abcdef")
    assert store.find_write_key("h" * 64) == created
    assert store.find_write_key("x" * 64) is None
    revoked = store.revoke_write_key("acme", "k1")
    assert revoked is not None
    assert revoked.revoke_time is not None
    again = store.revoke_write_key("acme", "k1")
    assert again is not None
    assert again.revoke_time == revoked.revoke_time
    assert store.revoke_write_key("other", "k1") is None


def test_write_keys_list_in_id_order(store: IngestStore) -> None:
    for index in range(3):
        store.create_write_key("acme", f"k{index}", "w", f"{index}" * 64, "p")
    assert [k.key_id for k in store.list_write_keys("acme", "k0", 10)] == ["k1", "k2"]
