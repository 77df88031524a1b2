"""Mailchimp audience webhooks: secret URL, validation requests, events per type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest

from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK
from mailwright.connectors import RejectReason, WebhookRejected
from mailwright.testing.webhooks import IngestDesk, webhook_request
from mailwright_mailchimp.config import MailchimpConfig
from mailwright_mailchimp.fake import audience_webhook
from mailwright_mailchimp.webhook import MailchimpWebhook, webhook_url

SECRET = "hook-secret-0123456789abcdef"
BASE = "https://mw.example/webhooks/mailchimp/acme"
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def webhook(marketing_config: Callable[..., MailchimpConfig]) -> MailchimpWebhook:
    return MailchimpWebhook(marketing_config(base_url="https://us21.api.mailchimp.com/3.0"))


def request(body: bytes, method: str = "POST", secret: str = SECRET) -> object:
    return webhook_request(body, url=webhook_url(BASE, secret), method=method)


async def receive(webhook: MailchimpWebhook, body: bytes) -> list[object]:
    return list(await IngestDesk().receive(webhook, request(body)))  # type: ignore[arg-type]


async def test_mailchimps_get_validation_is_accepted_and_yields_nothing(
    webhook: MailchimpWebhook,
) -> None:
    assert await IngestDesk().receive(webhook, request(b"", method="GET")) == []  # type: ignore[arg-type]


async def test_validation_without_the_secret_is_forged(webhook: MailchimpWebhook) -> None:
    forged = webhook_request(b"", url=BASE, method="GET")
    with pytest.raises(WebhookRejected) as caught:
        await webhook.verify(forged)
    assert caught.value.reason is RejectReason.FORGED


async def test_a_subscribe_is_an_identify_with_merge_fields_and_a_subscription(
    webhook: MailchimpWebhook,
) -> None:
    body = audience_webhook(
        "subscribe", "Ada@Example.com", merges={"FNAME": "Ada", "LNAME": "L"}, fired_at=WHEN
    )
    identify, subscribed = await receive(webhook, body)
    assert identify.type == EVENT_TYPE_IDENTIFY  # type: ignore[attr-defined]
    assert dict(identify.traits) == {
        "email": "ada@example.com",
        "first_name": "Ada",  # type: ignore[attr-defined]
        "last_name": "L",
    }
    assert identify.timestamp.ToDatetime(UTC) == WHEN  # type: ignore[attr-defined]
    assert subscribed.event == "Email Subscribed"  # type: ignore[attr-defined]
    assert [(i.type, i.value) for i in subscribed.identities] == [("email", "ada@example.com")]  # type: ignore[attr-defined]


async def test_an_unsubscribe_is_email_unsubscribed_with_its_reason(
    webhook: MailchimpWebhook,
) -> None:
    body = audience_webhook(
        "unsubscribe",
        "ada@example.com",
        fired_at=WHEN,
        action="unsub",
        reason="manual",
        campaign_id="cb398d21d2",
    )
    (event,) = await receive(webhook, body)
    assert event.type == EVENT_TYPE_TRACK  # type: ignore[attr-defined]
    assert event.event == "Email Unsubscribed"  # type: ignore[attr-defined]
    assert event.properties["reason"] == "manual"  # type: ignore[attr-defined]
    assert event.properties["campaign_id"] == "cb398d21d2"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("reason", "name"), [("hard", "Email Bounced"), ("abuse", "Email Marked as Spam")]
)
async def test_a_cleaned_address_is_a_bounce_or_a_complaint(
    webhook: MailchimpWebhook, reason: str, name: str
) -> None:
    body = audience_webhook(
        "cleaned", "ada@example.com", fired_at=WHEN, reason=reason, campaign_id="4fjk2ma9xd"
    )
    (event,) = await receive(webhook, body)
    assert event.event == name  # type: ignore[attr-defined]


async def test_an_email_change_links_the_old_and_new_address(webhook: MailchimpWebhook) -> None:
    body = audience_webhook(
        "upemail", "new@example.com", fired_at=WHEN, old_email="old@example.com"
    )
    (event,) = await receive(webhook, body)
    assert {i.value for i in event.identities} == {"new@example.com", "old@example.com"}  # type: ignore[attr-defined]
    assert event.traits["email"] == "new@example.com"  # type: ignore[attr-defined]


async def test_a_campaign_event_is_acknowledged_without_events(webhook: MailchimpWebhook) -> None:
    body = urlencode(
        {
            "type": "campaign",
            "fired_at": "2026-03-01 12:00:00",
            "data[id]": "5aa2102003",
            "data[subject]": "Spring",
            "data[status]": "sent",
            "data[list_id]": "a1b2c3d4e5",
        }
    ).encode()
    assert await receive(webhook, body) == []


async def test_a_body_without_type_is_malformed(webhook: MailchimpWebhook) -> None:
    with pytest.raises(WebhookRejected) as caught:
        await webhook.verify(request(b"fired_at=2026-03-01+12%3A00%3A00"))  # type: ignore[arg-type]
    assert caught.value.reason is RejectReason.MALFORMED


async def test_a_bad_fired_at_is_malformed_and_named(webhook: MailchimpWebhook) -> None:
    body = audience_webhook("profile", "ada@example.com").replace(b"fired_at=", b"fired_at=x")
    req = request(body)
    delivery = await webhook.verify(req)  # type: ignore[arg-type]
    with pytest.raises(WebhookRejected) as caught:
        webhook.parse(req, delivery)  # type: ignore[arg-type]
    assert "fired_at" in caught.value.detail


def test_the_request_repr_does_not_show_the_secret() -> None:
    assert SECRET not in repr(request(b"type=profile"))
