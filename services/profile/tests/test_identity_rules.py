"""The rule book of deterministic identity (`identity.plan_links`), on its own."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailwright_profile.identity import (
    DEFAULT_POLICY,
    Identity,
    IdentityError,
    MergePolicy,
    normalize_identity,
    plan_links,
    strength,
    strongest,
)

USER = "user_id"


class Graph:
    """Who holds which identity, as the store would answer."""

    def __init__(
        self, held: Mapping[str, list[Identity]], separated: Iterable[tuple[str, str]] = ()
    ):
        self.held = held
        self.pairs = {frozenset(p) for p in separated}
        self.created = {p: i for i, p in enumerate(sorted(held))}

    def owner(self, identity: Identity) -> tuple[str, str] | None:
        for profile, identities in self.held.items():
            if identity in identities:
                return profile, profile
        return None

    def unique_values(self, profile: str) -> Mapping[str, Iterable[str]]:
        found: dict[str, set[str]] = {}
        for identity in self.held.get(profile, []):
            found.setdefault(identity.type, set()).add(identity.value)
        return {k: v for k, v in found.items() if k in DEFAULT_POLICY.unique_identity_types}

    def separated(self, first: str, second: str) -> bool:
        return frozenset((first, second)) in self.pairs

    def older(self, first: str, second: str) -> tuple[str, str]:
        if self.created[first] <= self.created[second]:
            return first, second
        return second, first


def ident(kind: str, value: str) -> Identity:
    return Identity(kind, value)


def test_an_event_of_nobody_known_starts_a_new_profile() -> None:
    plan = plan_links([ident("anonymous_id", "a1")], Graph({}), DEFAULT_POLICY)
    assert plan.target is None
    assert plan.links == [ident("anonymous_id", "a1")]


def test_signing_in_links_the_user_id_to_the_anonymous_profile() -> None:
    graph = Graph({"P": [ident("anonymous_id", "a1")]})
    plan = plan_links([ident(USER, "u1"), ident("anonymous_id", "a1")], graph, DEFAULT_POLICY)
    assert (plan.target, plan.merges, plan.links) == ("P", [], [ident(USER, "u1")])


def test_an_identify_joining_two_profiles_merges_them_into_the_older() -> None:
    graph = Graph({"A": [ident("anonymous_id", "a1")], "B": [ident(USER, "u1")]})
    plan = plan_links([ident(USER, "u1"), ident("anonymous_id", "a1")], graph, DEFAULT_POLICY)
    assert plan.target == "A"
    (merge,) = plan.merges
    assert (merge.kept, merge.absorbed) == ("A", "B")
    assert set(merge.shared) == {ident(USER, "u1"), ident("anonymous_id", "a1")}


def test_joining_two_user_ids_is_refused_and_the_event_stays_with_the_strongest() -> None:
    graph = Graph({"A": [ident(USER, "u1")], "B": [ident(USER, "u2"), ident("anonymous_id", "a1")]})
    plan = plan_links([ident(USER, "u1"), ident("anonymous_id", "a1")], graph, DEFAULT_POLICY)
    assert plan.target == "A"
    assert plan.merges == []
    (refusal,) = plan.refusals
    assert (refusal.profile, refusal.other, refusal.identity_type) == ("A", "B", USER)


def test_a_second_user_on_a_shared_device_gets_a_profile_of_its_own() -> None:
    graph = Graph({"A": [ident(USER, "u1"), ident("anonymous_id", "a1")]})
    plan = plan_links([ident(USER, "u2"), ident("anonymous_id", "a1")], graph, DEFAULT_POLICY)
    assert plan.target is None
    assert plan.links == [ident(USER, "u2")]
    assert plan.refusals[0].profile == "A"


def test_without_unique_types_two_user_ids_may_join() -> None:
    graph = Graph({"A": [ident(USER, "u1")], "B": [ident(USER, "u2"), ident("anonymous_id", "a1")]})
    policy = MergePolicy(unique_identity_types=())
    plan = plan_links([ident(USER, "u1"), ident("anonymous_id", "a1")], graph, policy)
    assert [(m.kept, m.absorbed) for m in plan.merges] == [("A", "B")]


def test_profiles_a_person_unmerged_are_not_joined_again() -> None:
    graph = Graph(
        {"A": [ident("email", "x@y.io")], "B": [ident("anonymous_id", "a1")]}, [("A", "B")]
    )
    plan = plan_links(
        [ident("email", "x@y.io"), ident("anonymous_id", "a1")], graph, DEFAULT_POLICY
    )
    assert plan.merges == []
    assert plan.refusals[0].reason == "the profiles were unmerged by a person"


def test_emails_are_one_identity_however_written() -> None:
    assert normalize_identity("email", " John.Smith+news@GoogleMail.com ") == Identity(
        "email", "johnsmith@gmail.com"
    )


def test_phones_need_a_country_unless_international() -> None:
    assert normalize_identity("phone", "+44 20 7946 0958").value == "+442079460958"
    assert normalize_identity("phone", "020 7946 0958", "GB").value == "+442079460958"
    with pytest.raises(IdentityError):
        normalize_identity("phone", "020 7946 0958")


@pytest.mark.parametrize("kind", ["shopify:customer", "salesforce:contact", "device_id"])
def test_connector_and_device_ids_are_identities(kind: str) -> None:
    assert normalize_identity(kind, " 123 ") == Identity(kind, "123")


@pytest.mark.parametrize("kind", ["", "Email", "shopify", "x:y:z", "user id"])
def test_unknown_identity_types_are_refused(kind: str) -> None:
    with pytest.raises(IdentityError) as error:
        normalize_identity(kind, "v")
    assert error.value.field == "type"


@given(
    st.lists(
        st.builds(
            Identity,
            st.sampled_from(["user_id", "email", "phone", "device_id", "anonymous_id", "a:b"]),
            st.sampled_from(["x", "y"]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_strongest_is_the_first_in_strength_order(identities: list[Identity]) -> None:
    held = tuple(identities)
    assert strongest(held) == min(held, key=strength)
    assert strongest(held) == strongest(tuple(identities))  # remembered: the same answer
