"""HubSpot webhooks: v3 with its URI decoding, v1 and v2, no downgrade, the account check,
and each subscription type turned into the right event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import json_format

from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event
from mailwright.connectors import RejectReason, WebhookRejected, WebhookRequest
from mailwright.testing.webhooks import IngestDesk, replacing_header, webhook_request
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.fake import FakeHubSpot
from mailwright_hubspot.webhook import HubSpotWebhook

MakeConfig = Callable[..., HubSpotConfig]
URL = "https://mw.example/webhooks/hubspot/acme"


@pytest.fixture
def config(make_config: MakeConfig) -> HubSpotConfig:
    return make_config(base_url="https://api.hubapi.com")


def request(
    fake: FakeHubSpot,
    events: Sequence[dict[str, Any]],
    *,
    url: str = URL,
    signed_url: str | None = None,
    versions: Sequence[str] = ("v3", "v2"),
    **options: Any,
) -> WebhookRequest:
    now = datetime.now(UTC)
    body, headers = fake.delivery(
        events, url=signed_url or url, timestamp=now, versions=versions, **options
    )
    return webhook_request(body, headers, url=url, received_at=now)


async def receive(config: HubSpotConfig, incoming: WebhookRequest) -> Sequence[Event]:
    return await IngestDesk().receive(HubSpotWebhook(config), incoming)


async def reason(config: HubSpotConfig, incoming: WebhookRequest) -> RejectReason:
    with pytest.raises(WebhookRejected) as caught:
        await receive(config, incoming)
    return caught.value.reason


async def test_v3_is_checked_against_the_uri_with_hubspots_decoded_characters(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    encoded = URL + "?source=crm%3Acontacts%2Cdeals"
    decoded = URL + "?source=crm:contacts,deals"
    incoming = request(hubspot, hubspot.webhook_events(), url=encoded, signed_url=decoded)
    assert await receive(config, incoming)


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_legacy_signatures_are_accepted_without_a_v3_one(
    hubspot: FakeHubSpot, config: HubSpotConfig, version: str
) -> None:
    incoming = request(hubspot, hubspot.webhook_events(), versions=[version])
    assert await receive(config, incoming)


async def test_legacy_signatures_can_be_refused(
    hubspot: FakeHubSpot, make_config: MakeConfig
) -> None:
    config = make_config(base_url="https://api.hubapi.com", allow_legacy_signatures=False)
    incoming = request(hubspot, hubspot.webhook_events(), versions=["v2"])
    assert await reason(config, incoming) is RejectReason.FORGED


async def test_a_wrong_v3_signature_is_not_rescued_by_a_right_v2_one(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    incoming = replacing_header(
        request(hubspot, hubspot.webhook_events()),
        "X-HubSpot-Signature-v3",
        "aW52YWxpZCBzaWduYXR1cmUgb2YgMzIgYnl0ZXMhIQ==",
    )
    assert await reason(config, incoming) is RejectReason.FORGED


async def test_an_unknown_signature_version_is_forged(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    incoming = replacing_header(
        request(hubspot, hubspot.webhook_events(), versions=["v2"]),
        "X-HubSpot-Signature-Version",
        "v9",
    )
    assert await reason(config, incoming) is RejectReason.FORGED


async def test_behind_a_proxy_the_public_url_is_what_was_signed(
    hubspot: FakeHubSpot, make_config: MakeConfig
) -> None:
    config = make_config(base_url="https://api.hubapi.com", public_url="https://mw.example")
    internal = "http://ingest.internal:8080/webhooks/hubspot/acme"
    incoming = request(hubspot, hubspot.webhook_events(), url=internal, signed_url=URL)
    assert await receive(config, incoming)


async def test_events_of_another_account_are_refused(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(portalId=99999)
    assert await reason(config, request(hubspot, events)) is RejectReason.FORGED


async def test_more_than_a_hundred_events_are_malformed(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(101)
    assert await reason(config, request(hubspot, events)) is RejectReason.MALFORMED


async def test_an_event_without_its_ids_is_malformed(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    [event] = hubspot.webhook_events()
    del event["eventId"]
    assert await reason(config, request(hubspot, [event])) is RejectReason.MALFORMED


async def test_a_retry_with_a_higher_attempt_number_is_the_same_delivery(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    webhook = HubSpotWebhook(config)
    first = await webhook.verify(request(hubspot, hubspot.webhook_events(3)))
    retry = await webhook.verify(request(hubspot, hubspot.webhook_events(3, attemptNumber=1)))
    assert first.delivery_id == retry.delivery_id


def traits(event: Event) -> dict[str, Any]:
    return json_format.MessageToDict(event.traits)


async def test_a_contact_creation_is_an_identify_of_the_contact(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(kind="contact.creation")
    [event] = await receive(config, request(hubspot, events))
    assert event.type == EVENT_TYPE_IDENTIFY
    assert event.anonymous_id == "hubspot:contact:512"
    assert event.message_id == "hubspot:event:62515:1000"
    assert [(i.type, i.value) for i in event.identities] == [("hubspot:contact", "512")]


async def test_a_mapped_property_change_becomes_a_trait(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(propertyName="lifecyclestage", propertyValue="customer")
    [event] = await receive(config, request(hubspot, events))
    assert traits(event) == {"lifecycle_stage": "customer"}


async def test_an_email_change_adds_the_email_identity(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(propertyName="email", propertyValue="Grace@Example.com")
    [event] = await receive(config, request(hubspot, events))
    assert ("email", "grace@example.com") in [(i.type, i.value) for i in event.identities]
    assert traits(event) == {"email": "grace@example.com"}


async def test_a_change_of_a_property_not_mapped_gives_no_event(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    events = hubspot.webhook_events(propertyName="hs_analytics_source", propertyValue="x")
    assert await receive(config, request(hubspot, events)) == []


async def test_a_deletion_is_contact_deleted(hubspot: FakeHubSpot, config: HubSpotConfig) -> None:
    events = hubspot.webhook_events(kind="contact.privacyDeletion")
    [event] = await receive(config, request(hubspot, events))
    assert (event.type, event.event) == (EVENT_TYPE_TRACK, "Contact Deleted")
    assert json_format.MessageToDict(event.properties)["privacy"] is True


async def test_generic_object_events_of_contacts_are_read_and_others_ignored(
    hubspot: FakeHubSpot, config: HubSpotConfig
) -> None:
    contact = hubspot.webhook_events(kind="object.creation", objectTypeId="0-1")
    deal = hubspot.webhook_events(kind="object.creation", objectTypeId="0-3", first_event_id=7)
    events = await receive(config, request(hubspot, contact + deal))
    assert [e.anonymous_id for e in events] == ["hubspot:contact:512"]
