"""HubSpot audience sync and single send, beyond the conformance suites."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ConnectorConfigError,
    ErrorKind,
    OutboundMessage,
    ProviderError,
)
from mailwright.testing.fakes import FakeServer, RecordedWaits
from mailwright_hubspot.audience import HubSpotAudienceSync, property_value
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.email import HubSpotEmailProvider, send_id
from mailwright_hubspot.fake import FakeHubSpot

MakeConfig = Callable[..., HubSpotConfig]


def change(*added: AudienceMember, removed: tuple[AudienceMember, ...] = ()) -> AudienceChange:
    return AudienceChange(
        workspace="acme",
        segment_id="seg-1",
        segment_name="Loyal buyers",
        change_id=uuid.uuid4().hex,
        added=added,
        removed=removed,
    )


def member(n: int, **extra: object) -> AudienceMember:
    return AudienceMember(profile_id=f"p{n}", email=f"m{n}@example.com", **extra)  # type: ignore[arg-type]


async def test_the_segments_list_is_created_once_and_found_by_name_afterwards(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    for n in range(2):
        sync = HubSpotAudienceSync(make_config())
        await sync.sync(change(member(n)))
        await sync.aclose()
    assert [lst["name"] for lst in hubspot.lists.values()] == ["Mailwright: Loyal buyers [seg-1]"]
    assert len(hubspot_server.requests_to("/crm/v3/lists", method="POST")) == 1


async def test_an_email_hubspot_refuses_is_a_member_failure(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    sync = HubSpotAudienceSync(make_config())
    bad = AudienceMember(profile_id="p-bad", email="not an email")
    result = await sync.sync(change(member(1), bad))
    await sync.aclose()
    assert result.added == 1
    [failure] = result.failures
    assert (failure.profile_id, failure.kind) == ("p-bad", ErrorKind.INVALID)
    assert "VALIDATION_ERROR" in failure.detail


async def test_one_refused_email_does_not_keep_the_rest_of_its_batch_out(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    # HubSpot refuses a whole batch (400 VALIDATION_ERROR) for one invalid input: the
    # others must still join, and exactly the refused ones be reported.
    sync = HubSpotAudienceSync(make_config())
    bad = [AudienceMember(profile_id=f"p-bad{n}", email=f"bad{n} address") for n in range(2)]
    members = [member(n) for n in range(10)]
    result = await sync.sync(change(*members[:3], bad[0], *members[3:7], bad[1], *members[7:]))
    await sync.aclose()
    assert result.added == 10
    assert sorted((f.profile_id, f.kind) for f in result.failures) == [
        ("p-bad0", ErrorKind.INVALID),
        ("p-bad1", ErrorKind.INVALID),
    ]
    assert all("INVALID_EMAIL" in f.detail for f in result.failures)
    found = hubspot.list_named("Mailwright: Loyal buyers [seg-1]")
    assert found is not None
    listed = {hubspot.contacts[i]["properties"]["email"] for i in found["members"]}
    assert listed == {m.email for m in members}


async def test_a_trait_mapped_to_a_property_hubspot_lacks_fails_the_request(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    sync = HubSpotAudienceSync(make_config(properties={"plan": "mw_plan"}))
    with pytest.raises(ProviderError) as caught:
        await sync.sync(change(*(member(n, traits={"plan": "pro"}) for n in range(3))))
    await sync.aclose()
    assert caught.value.kind is ErrorKind.INVALID
    assert "mw_plan" in caught.value.detail
    assert len(hubspot_server.requests_to("/crm/v3/objects/contacts/batch/upsert")) == 1


async def test_a_member_known_by_hubspot_id_alone_is_listed_and_removed_by_it(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    hubspot.add_contacts(1)
    [record_id] = hubspot.contacts
    known = AudienceMember(profile_id="p9", external_ids={"hubspot": record_id})
    sync = HubSpotAudienceSync(make_config())
    await sync.sync(change(known))
    [listed] = hubspot.lists.values()
    assert listed["members"] == {record_id}
    await sync.sync(change(removed=(known,)))
    await sync.aclose()
    assert listed["members"] == set()
    assert not hubspot_server.requests_to("/crm/v3/objects/contacts/batch/read")


def test_traits_are_written_as_hubspot_property_text() -> None:
    assert [property_value(v) for v in (True, 12.5, ["a", "b"], None)] == [
        "true",
        "12.5",
        "a;b",
        "",
    ]


def message(n: int, **extra: object) -> OutboundMessage:
    values: dict[str, object] = {
        "send_id": f"s{n}",
        "idempotency_key": f"k{n}",
        "from_address": "news@shop.example",
        "to_address": f"r{n}@example.com",
        "subject": "Hi",
        "html": "<p>Hi</p>",
        "workspace": "acme",
    }
    values.update(extra)
    return OutboundMessage(**values)  # type: ignore[arg-type]


async def test_a_send_carries_the_rendered_message_in_custom_properties(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    provider = HubSpotEmailProvider(make_config())
    status_id = await provider.send(message(1, subject="Your cart"))
    await provider.aclose()
    [sent] = hubspot.sends.values()
    assert sent["statusId"] == status_id
    request = sent["request"]
    assert request["emailId"] == 4242
    assert request["message"]["to"] == "r1@example.com"
    assert request["customProperties"]["mailwright_subject"] == "Your cart"
    assert request["customProperties"]["mailwright_html"] == "<p>Hi</p>"
    assert request["message"]["sendId"] == send_id(message(1))


def test_the_send_id_is_stable_and_kept_apart_by_workspace() -> None:
    assert send_id(message(1)) == send_id(message(1))
    assert send_id(message(1)) != send_id(message(1, workspace="other"))
    assert len(send_id(message(1))) <= 64


async def test_the_transactional_endpoint_can_be_chosen(
    hubspot: FakeHubSpot,
    hubspot_server: FakeServer,
    make_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    provider = HubSpotEmailProvider(make_config(email_endpoint="transactional"))
    await provider.send(message(1))
    await provider.aclose()
    assert hubspot_server.requests_to("/marketing/v3/transactional/single-email/send")


def test_the_email_provider_needs_the_email_id(make_config: MakeConfig) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        HubSpotEmailProvider(make_config(email_id=None, base_url="https://api.hubapi.com"))
    assert caught.value.field == "email_id"
