"""Mailchimp Transactional: requests as Mandrill documents them, events from its webhooks."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from mailwright.connectors import (
    ConnectorConfigError,
    ErrorKind,
    OutboundMessage,
    ProviderError,
    RejectReason,
    WebhookRejected,
    load_config,
)
from mailwright.testing.fakes import FakeServer, RecordedWaits
from mailwright.testing.webhooks import IngestDesk, webhook_request
from mailwright_mailchimp.config import TransactionalConfig
from mailwright_mailchimp.fake_transactional import FakeTransactional
from mailwright_mailchimp.transactional import SUPPRESSIONS, TransactionalEmailProvider
from mailwright_mailchimp.transactional_webhook import TransactionalWebhook, signature

MakeConfig = Callable[..., TransactionalConfig]
URL = "https://mailwright.example/webhooks/mailchimp-transactional/acme"

MIME = (
    b"From: Shop <news@shop.example>\r\nTo: reader@example.com\r\nSubject: Hello\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\n"
)


def message(**fields: object) -> OutboundMessage:
    values: dict[str, object] = {
        "send_id": "send-1",
        "idempotency_key": "c1:p1",
        "from_address": "Shop <news@shop.example>",
        "to_address": "Reader <reader@example.com>",
        "subject": "Hello",
        "html": "<p>Hello</p>",
        "workspace": "acme",
        "tags": ("receipt",),
    }
    values.update(fields)
    return OutboundMessage(**values)  # type: ignore[arg-type]


async def send(config: TransactionalConfig, outbound: OutboundMessage) -> str:
    provider = TransactionalEmailProvider(config)
    try:
        return await provider.send(outbound)
    finally:
        await provider.aclose()


async def test_fields_are_sent_with_the_key_in_the_body_and_the_send_id_as_metadata(
    transactional: FakeTransactional,
    transactional_server: FakeServer,
    transactional_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    provider_id = await send(transactional_config(), message())
    (request,) = transactional_server.requests_to("/api/1.0/messages/send")
    body = request.json()
    assert body["key"] == transactional.api_key
    assert body["message"]["to"] == [
        {"email": "reader@example.com", "type": "to", "name": "Reader"}
    ]
    assert body["message"]["from_name"] == "Shop"
    assert body["message"]["metadata"] == {
        "mailwright_send_id": "send-1",
        "mailwright_workspace": "acme",
    }
    assert transactional.sent[0]["_id"] == provider_id


async def test_a_rendered_mime_goes_to_send_raw_with_x_mc_metadata(
    transactional: FakeTransactional,
    transactional_server: FakeServer,
    transactional_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    await send(transactional_config(), message(mime=MIME))
    (request,) = transactional_server.requests_to("/api/1.0/messages/send-raw")
    raw = email.message_from_string(request.json()["raw_message"], policy=email.policy.default)
    assert json.loads(str(raw["X-MC-Metadata"]))["mailwright_send_id"] == "send-1"
    assert str(raw["X-MC-Tags"]) == "receipt"
    assert raw.get_content().strip() == "Hello there"
    assert transactional.sent[0]["metadata"]["mailwright_send_id"] == "send-1"


@pytest.mark.parametrize("reason", sorted(SUPPRESSIONS))
async def test_reject_reasons_that_suppress_say_so_in_their_code(
    transactional: FakeTransactional,
    transactional_config: MakeConfig,
    recorded_waits: RecordedWaits,
    reason: str,
) -> None:
    transactional.reject("reader@example.com", reason)
    with pytest.raises(ProviderError) as caught:
        await send(transactional_config(), message())
    assert caught.value.code == f"reject:{reason}"
    assert not caught.value.retryable


async def test_an_invalid_key_is_auth_and_not_retried(
    transactional: FakeTransactional,
    transactional_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    config = transactional_config()
    transactional.api_key = "revoked"
    with pytest.raises(ProviderError) as caught:
        await send(config, message())
    assert caught.value.kind is ErrorKind.AUTH
    assert caught.value.code == "Invalid_Key"
    assert not recorded_waits.seconds


async def test_a_500_is_not_retried_since_mandrill_may_have_sent(
    transactional: FakeTransactional,
    transactional_server: FakeServer,
    transactional_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    from mailwright.testing.fakes import Fault

    transactional_server.fail(
        Fault(
            500,
            {
                "status": "error",
                "code": -99,
                "name": "GeneralError",
                "message": "An unexpected error occurred",
            },
        )
    )
    with pytest.raises(ProviderError) as caught:
        await send(transactional_config(), message())
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert len(transactional_server.requests) == 1


def test_the_provider_demands_its_key_naming_the_variable() -> None:
    config = load_config("mailchimp-transactional", TransactionalConfig, {}, environ={})
    with pytest.raises(ConnectorConfigError) as caught:
        TransactionalEmailProvider(config)
    assert "MAILWRIGHT_CONNECTOR_MAILCHIMP_TRANSACTIONAL_API_KEY" in str(caught.value)


# -- webhooks ------------------------------------------------------------------------------


@pytest.fixture
def hook(transactional_config: MakeConfig) -> TransactionalWebhook:
    return TransactionalWebhook(transactional_config(base_url="https://mandrillapp.com/api/1.0"))


def test_the_signature_is_the_documented_hmac_sha1_of_url_and_sorted_parameters() -> None:
    # URL, then each key and value sorted by key, HMAC-SHA1, base64.
    import base64
    import hashlib
    import hmac

    signed = "https://x.example/hookabc" + "a1" + "b2"
    expected = base64.b64encode(hmac.new(b"k", signed.encode(), hashlib.sha1).digest()).decode()
    assert signature("k", "https://x.example/hookabc", {"b": "2", "a": "1"}) == expected


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("send", "Email Sent"),
        ("deferral", "Email Deferred"),
        ("hard_bounce", "Email Bounced"),
        ("soft_bounce", "Email Bounced"),
        ("open", "Email Opened"),
        ("click", "Email Clicked"),
        ("spam", "Email Marked as Spam"),
        ("unsub", "Email Unsubscribed"),
        ("reject", "Email Rejected"),
    ],
)
async def test_message_events_become_email_events_with_the_send_id(
    transactional: FakeTransactional, hook: TransactionalWebhook, kind: str, name: str
) -> None:
    event = transactional.message_event(
        kind, "Reader@Example.com", message_id="m1", send_id="send-42"
    )
    body, headers = transactional.delivery([event], url=URL)
    (out,) = await IngestDesk().receive(hook, webhook_request(body, headers, url=URL))
    assert out.event == name
    assert out.properties["send_id"] == "send-42"
    assert out.properties["provider_message_id"] == "m1"
    assert out.source == "mailchimp-transactional"
    assert [(i.type, i.value) for i in out.identities] == [("email", "reader@example.com")]


async def test_bounce_details_are_kept_without_the_address(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    event = transactional.message_event("hard_bounce", "reader@example.com", message_id="m1")
    body, headers = transactional.delivery([event], url=URL)
    (out,) = await IngestDesk().receive(hook, webhook_request(body, headers, url=URL))
    assert out.properties["bounce_type"] == "hard"
    assert "reader@example.com" not in out.properties["diagnostic"]
    assert "550 5.1.1" in out.properties["diagnostic"]


async def test_the_head_check_and_the_test_key_post_are_validations(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    head = webhook_request(b"", url=URL, method="HEAD")
    assert await IngestDesk().receive(hook, head) == []
    body, headers = transactional.delivery([], url=URL, key="test-webhook")
    assert await IngestDesk().receive(hook, webhook_request(body, headers, url=URL)) == []


async def test_the_test_key_signs_nothing_but_an_empty_batch(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    event = transactional.message_event("open", "reader@example.com")
    body, headers = transactional.delivery([event], url=URL, key="test-webhook")
    with pytest.raises(WebhookRejected) as caught:
        await hook.verify(webhook_request(body, headers, url=URL))
    assert caught.value.reason is RejectReason.FORGED


async def test_the_registered_url_is_what_is_signed_behind_a_proxy(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    event = transactional.message_event("open", "reader@example.com")
    body, headers = transactional.delivery([event], url=URL)
    internal = "http://ingest.internal:8080/webhooks/mailchimp-transactional/acme"
    assert await IngestDesk().receive(hook, webhook_request(body, headers, url=internal))


async def test_sync_and_inbound_events_are_acknowledged_and_ignored(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    now = int(datetime.now(UTC).timestamp())
    events = [
        {"type": "blacklist", "action": "add", "ts": now, "reject": {"email": "x@y.z"}},
        {"event": "inbound", "ts": now, "msg": {"email": "x@y.z"}},
    ]
    body, headers = transactional.delivery(events, url=URL)
    assert await IngestDesk().receive(hook, webhook_request(body, headers, url=URL)) == []


async def test_an_old_batch_is_stale(
    transactional: FakeTransactional, hook: TransactionalWebhook
) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    event = transactional.message_event("open", "reader@example.com", ts=old)
    body, headers = transactional.delivery([event], url=URL)
    with pytest.raises(WebhookRejected) as caught:
        await hook.verify(webhook_request(body, headers, url=URL))
    assert caught.value.reason is RejectReason.STALE
