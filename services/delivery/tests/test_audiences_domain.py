"""The audience sync's plain rules: how a claim becomes a change, provider ids from
identities, and the wait before a failed change is tried again."""

from __future__ import annotations

from datetime import timedelta

from mailwright.connectors import AudienceMember, ErrorKind
from mailwright_delivery.audiences import Claim, Op, external_ids, plan_change, retry_delay


def claim(**ops: Op) -> Claim:
    return Claim("acme", "news", "vip", "c1", ops, 0)


def test_members_to_add_come_from_the_profiles_and_a_missing_profile_is_a_failure() -> None:
    ann = AudienceMember("ann", "ann@example.com", traits={"first_name": "Ann"})
    plan = plan_change(claim(ann=Op.ADD, gone=Op.ADD), "VIP", {"ann": ann}, {}, {})
    assert plan.change.added == (ann,)
    assert plan.change.segment_name == "VIP"
    assert [(f.profile_id, f.kind) for f in plan.missing] == [("gone", ErrorKind.INVALID)]


def test_a_removal_uses_the_address_the_provider_was_given_even_when_the_profile_is_gone() -> None:
    synced = {"bob": AudienceMember("bob", "old@example.com")}
    plan = plan_change(claim(bob=Op.REMOVE), "VIP", {}, synced, {})
    assert plan.change.removed == (AudienceMember("bob", "old@example.com"),)


def test_a_removal_is_skipped_when_another_synced_member_holds_the_address() -> None:
    found = {"merged": AudienceMember("merged", "cy@example.com")}
    plan = plan_change(claim(merged=Op.REMOVE), "VIP", found, {}, {"cy@example.com": "survivor"})
    assert plan.change.removed == ()
    assert plan.skipped_removals == ("merged",)


def test_provider_ids_come_from_identities_typed_provider_colon_kind() -> None:
    linked = [
        ("email", "a@example.com"),
        ("hubspot:contact", "5101"),
        ("salesforce:lead", "00Q1"),
        ("salesforce:contact", "0031"),
        ("user_id", "u-1"),
    ]
    assert external_ids(linked) == {"hubspot": "5101", "salesforce": "00Q1"}


def test_the_retry_wait_doubles_up_to_the_cap_and_honours_retry_after() -> None:
    base, cap = timedelta(seconds=5), timedelta(minutes=1)
    assert retry_delay(1, base, cap, None) == timedelta(seconds=5)
    assert retry_delay(3, base, cap, None) == timedelta(seconds=20)
    assert retry_delay(10, base, cap, None) == cap
    assert retry_delay(1, base, cap, timedelta(seconds=30)) == timedelta(seconds=30)
