"""A Shopify consent webhook's event is a consent statement for the profile service.

The Shopify connector words a customer's email marketing consent as the `email_consent`
trait; the profile service reads that trait as a statement of email consent. Both sides
are checked here through their real modules: the signed delivery the fake builds, the
connector's verify and parse, and the profile service's `read_event`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from mailwright.common.v1.event_pb2 import Event
from mailwright.testing.webhooks import IngestDesk, webhook_request
from mailwright_profile.events import read_event
from mailwright_shopify.config import ShopifyConfig
from mailwright_shopify.fake import FakeShopify, rest_email_consent
from mailwright_shopify.webhook import EMAIL_CONSENT_TOPIC, ShopifyWebhook

DELIVERED_AT = datetime(2025, 3, 1, 16, 30, tzinfo=UTC)


async def consent_events(state: str, consent_updated_at: str | None) -> Sequence[Event]:
    fake = FakeShopify()
    config = ShopifyConfig(shop=fake.shop, client_secret=fake.client_secret)
    payload = rest_email_consent(1, state, consent_updated_at)
    body, headers = fake.delivery(EMAIL_CONSENT_TOPIC, payload, event_id="1")
    request = webhook_request(body, headers, received_at=DELIVERED_AT)
    events = await IngestDesk().receive(ShopifyWebhook(config), request)
    for event in events:
        event.workspace = "acme"  # (what ingest sets)
    return events


@pytest.mark.parametrize("state", ["subscribed", "unsubscribed", "pending"])
async def test_a_consent_update_is_read_as_that_email_consent(state: str) -> None:
    [event] = await consent_events(state, "2025-03-01T10:00:00-05:00")
    [statement] = read_event(event).consents
    assert (statement.channel, statement.status, statement.source) == ("email", state, "shopify")
    assert statement.time == datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    assert statement.message_id == event.message_id


async def test_a_customer_who_never_subscribed_states_no_consent() -> None:
    [event] = await consent_events("not_subscribed", None)
    incoming = read_event(event)
    assert incoming.consents == ()
    assert incoming.traits["email_marketing"] == "not_subscribed"
