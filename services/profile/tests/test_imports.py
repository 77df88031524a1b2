"""Imports: checking records, matching them against stored profiles, applying them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from mailwright.errors import InvalidArgument
from mailwright_profile.identity import Identity
from mailwright_profile.imports import Decision, read_records
from mailwright_profile.outbox import Outbox
from mailwright_profile.profiles import Profiles
from mailwright_profile.simulate import Clock, identify
from mailwright_profile.store import ProfileStore
from mailwright_profile.views import MergeReason

Apply = Callable[..., Any]


class Sink:
    """A bus stand-in that keeps what is published (the outbox's only need)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def publish_many(self, messages: list[Any]) -> list[str]:
        self.sent += messages
        return [str(i) for i in range(len(messages))]


def profiles_of(store: ProfileStore, clock: Clock) -> Profiles:
    outbox = Outbox(Sink(), store, clock)  # type: ignore[arg-type]
    return Profiles(store, outbox, clock)


def test_records_with_unknown_fields_or_ids_are_refused_naming_each() -> None:
    with pytest.raises(InvalidArgument) as error:
        read_records(
            [
                ("r1", {"email": "a@example.com", "favourite_colour": "blue"}, "crm"),
                ("", {"email": "b@example.com"}, "crm"),
                ("r1", {"city": "x" * 1001}, "crm"),
            ]
        )
    fields = [v.field for v in error.value.violations]
    assert fields == [
        'records[0].fields["favourite_colour"]',
        "records[1].record_id",
        "records[2].record_id",
        "records[2].fields.city",
    ]


def test_unreadable_values_are_noted_on_the_record_and_left_out() -> None:
    batch = read_records(
        [("r1", {"email": "not-an-email", "phone": "12", "country": "Atlantis"}, "")]
    )
    (record,) = batch.records
    assert {v.field for v in record.problems} == {"fields.email", "fields.phone", "fields.country"}
    assert record.identities() == []
    assert record.source == "import"


def test_a_batch_has_a_size_limit() -> None:
    with pytest.raises(InvalidArgument):
        read_records([(f"r{i}", {}, "") for i in range(10_001)])


PEOPLE = [
    (
        "r1",
        {
            "first_name": "Katherine",
            "last_name": "Johnson",
            "birth_date": "1918-08-26",
            "email": "kj@nasa.example",
            "city": "Hampton",
            "postal_code": "23666",
            "country": "US",
        },
    ),
    (
        "r2",
        {
            "first_name": "Kathy",
            "last_name": "Johnson",
            "birth_date": "08/26/1918",
            "city": "Hampton",
            "postal_code": "23666",
            "country": "US",
            "phone": "+1 757 555 0100",
        },
    ),
    (
        "r3",
        {
            "first_name": "Dorothy",
            "last_name": "Vaughan",
            "birth_date": "1910-09-20",
            "email": "dv@nasa.example",
            "country": "US",
        },
    ),
]


def test_a_dry_run_decides_without_storing(store: ProfileStore, clock: Clock) -> None:
    profiles = profiles_of(store, clock)
    batch = read_records([(rid, fields, "crm") for rid, fields in PEOPLE])
    outcome = asyncio.run(profiles.resolve_records("acme", batch, apply=False))
    decisions = {r.record_id: r.decision for r in outcome.records}
    assert decisions == {"r1": Decision.NEW, "r2": Decision.MATCHED, "r3": Decision.NEW}
    matched = next(r for r in outcome.records if r.record_id == "r2")
    assert matched.score >= 0.9
    assert {e["field"] for e in matched.evidence} >= {"first_name", "birth_date"}
    assert outcome.clusters == 2
    assert store.lookup("acme", Identity("email", "kj@nasa.example")) is None


def test_applied_records_join_a_stored_profile_and_the_merge_can_be_undone(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    apply(
        identify(
            user_id="u-kj",
            traits={
                "first_name": "Katherine",
                "last_name": "Johnson",
                "birth_date": "1918-08-26",
                "city": "Hampton",
                "postal_code": "23666",
                "country": "US",
            },
            source="shop",
        )
    )
    stored = store.lookup("acme", Identity("user_id", "u-kj"))
    assert stored is not None
    profiles = profiles_of(store, clock)
    batch = read_records([("r2", dict(PEOPLE[1][1]), "crm"), ("r3", dict(PEOPLE[2][1]), "crm")])
    outcome = asyncio.run(profiles.resolve_records("acme", batch, apply=True))
    by_id = {r.record_id: r for r in outcome.records}
    assert (by_id["r2"].decision, by_id["r2"].profile_id) == (Decision.MATCHED, stored.profile_id)
    assert by_id["r3"].decision == Decision.NEW
    assert store.lookup("acme", Identity("phone", "+17575550100")).profile_id == stored.profile_id  # type: ignore[union-attr]
    merges = store.explain("acme", stored.profile_id, None, None).merges
    (merge,) = merges
    assert merge.reason == MergeReason.PROBABILISTIC
    assert merge.score >= 0.9
    store.unmerge("acme", merge.merge_id, "ops", clock())
    restored = store.lookup("acme", Identity("phone", "+17575550100"))
    assert restored is not None
    assert restored.profile_id != stored.profile_id
    assert restored.traits["first_name"] == "Kathy"


def test_importing_the_same_records_twice_changes_nothing(
    store: ProfileStore, clock: Clock
) -> None:
    profiles = profiles_of(store, clock)
    batch = read_records([(rid, fields, "crm") for rid, fields in PEOPLE])
    first = asyncio.run(profiles.resolve_records("acme", batch, apply=True))
    second = asyncio.run(profiles.resolve_records("acme", batch, apply=True))
    assert [r.profile_id for r in first.records] == [r.profile_id for r in second.records]
    assert {r.decision for r in second.records} == {Decision.MATCHED}


def test_a_record_owned_by_one_profile_and_like_another_is_left_for_review(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    traits = {
        "first_name": "Mary",
        "last_name": "Jackson",
        "birth_date": "1921-04-09",
        "postal_code": "23666",
        "city": "Hampton",
        "country": "US",
    }
    apply(identify(user_id="u-mj", traits=traits))
    apply(identify(user_id="u-other", traits={"email": "mj@work.example"}))
    profiles = profiles_of(store, clock)
    batch = read_records([("r9", {**traits, "email": "mj@work.example"}, "crm")])
    asyncio.run(profiles.resolve_records("acme", batch, apply=True))
    candidates, _ = asyncio.run(profiles.candidates("acme", 10, ""))
    mary = store.lookup("acme", Identity("user_id", "u-mj"))
    other = store.lookup("acme", Identity("user_id", "u-other"))
    assert mary is not None
    assert other is not None
    assert mary.profile_id != other.profile_id
    assert [{c.left_id, c.right_id} for c in candidates] == [{mary.profile_id, other.profile_id}]
