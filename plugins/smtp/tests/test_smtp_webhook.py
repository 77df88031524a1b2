"""Bounce and complaint reports POSTed as raw email: authenticated by the shared secret,
deduplicated by the report's Message-ID, turned into the email events delivery applies —
through `IngestDesk` and through ingest's real `/webhooks/smtp/{workspace}`."""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import (
    ConnectorConfigError,
    OutboundMessage,
    RejectReason,
    WebhookRejected,
    WebhookRequest,
    load_config,
)
from mailwright.testing.platform import StartMailwright
from mailwright.testing.webhooks import IngestDesk, webhook_request
from mailwright_smtp import fake_reports
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.message import prepare
from mailwright_smtp.webhook import SmtpReportWebhook

SECRET = "bounce-secret-0123456789abcdef"
SEND_ID = "k5xq3vb7n2m4p6r8t0w2y4z6"
RECIPIENT = "reader@example.net"
URL = "https://mw.example/webhooks/smtp/acme"
CONNECTOR = {"host": "smtp.relay.example", "webhook_secret": SECRET}


def config(**overrides: Any) -> SmtpConfig:
    return load_config("smtp", SmtpConfig, {**CONNECTOR, **overrides}, environ={})


def sent(send_id: str = SEND_ID) -> bytes:
    message = OutboundMessage(
        send_id=send_id,
        idempotency_key="campaign-7:profile-1",
        from_address="Shop <news@shop.example>",
        to_address=RECIPIENT,
        subject="Your basket is waiting",
        text="Hello",
    )
    return prepare(message, envelope_from=None, message_id_domain=None).data


def posted(body: bytes, *, secret: str = SECRET, **headers: str) -> WebhookRequest:
    values = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {secret}", **headers}
    return webhook_request(body, values, url=URL, received_at=datetime.now(UTC))


async def receive(
    request: WebhookRequest, hook: SmtpReportWebhook | None = None
) -> Sequence[Event]:
    return await IngestDesk().receive(hook or SmtpReportWebhook(config()), request)


async def refusal(request: WebhookRequest, **overrides: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as caught:
        await receive(request, SmtpReportWebhook(config(**overrides)))
    return caught.value


async def test_a_hard_bounce_is_email_bounced_with_what_delivery_reads() -> None:
    original = sent()
    (event,) = await receive(posted(fake_reports.postfix_bounce(original, RECIPIENT)))
    props = dict(event.properties)
    assert event.event == "Email Bounced"
    assert event.source == "smtp"
    assert props["send_id"] == SEND_ID
    assert props["bounce_type"] == "hard"
    assert (props["status"], props["action"]) == ("5.1.1", "failed")
    assert props["reason"].startswith("550 5.1.1 <<address>>: Recipient address rejected")
    assert f"<{props['provider_message_id']}>".encode() in original
    assert [(i.type, i.value) for i in event.identities] == [("email", RECIPIENT)]
    assert event.anonymous_id.startswith("smtp:recipient:")
    assert event.message_id == "smtp:20261129044107.4F1A2B3C4D@relay.shop.example:0"


async def test_a_delay_is_no_bounce() -> None:
    """A delay notice is a warning: the server keeps trying, and reports a failure if it
    gives up. Counted as a soft bounce, it would suppress addresses that got the mail."""
    assert await receive(posted(fake_reports.gmail_bounce(sent(), RECIPIENT, delayed=True))) == []


@pytest.mark.parametrize(
    "report",
    [
        fake_reports.yahoo_complaint(sent(), RECIPIENT),
        fake_reports.microsoft_complaint(sent()),
    ],
    ids=["yahoo", "microsoft"],
)
async def test_a_complaint_is_email_marked_as_spam_for_the_send(report: bytes) -> None:
    (event,) = await receive(posted(report))
    assert event.event == "Email Marked as Spam"
    assert event.properties["send_id"] == SEND_ID
    assert event.properties["feedback_type"] == "abuse"


async def test_a_withheld_complainant_leaves_no_address_but_a_person_per_send() -> None:
    (event,) = await receive(posted(fake_reports.microsoft_complaint(sent())))
    assert list(event.identities) == []
    assert event.anonymous_id.startswith("smtp:recipient:")


async def test_a_not_spam_report_is_acknowledged_and_ignored() -> None:
    report = fake_reports.yahoo_complaint(sent(), RECIPIENT).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: not-spam"
    )
    assert await receive(posted(report)) == []


async def test_a_report_of_a_message_we_did_not_send_is_acknowledged_and_ignored() -> None:
    foreign = b"From: a@else.example\r\nMessage-ID: <x@else.example>\r\n\r\nhi\r\n"
    assert await receive(posted(fake_reports.postfix_bounce(foreign, RECIPIENT))) == []


async def test_basic_credentials_carry_the_secret_as_password() -> None:
    basic = base64.b64encode(f"mailwright:{SECRET}".encode()).decode()
    request = posted(fake_reports.postfix_bounce(sent(), RECIPIENT))
    request = webhook_request(
        request.body, {"Content-Type": "message/rfc822", "Authorization": f"Basic {basic}"}, url=URL
    )
    assert len(await receive(request)) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "message/rfc822"},
        {"Authorization": "Bearer wrong-secret-0123456789"},
        {"Authorization": "Token " + SECRET},
        {"Authorization": "Basic not*base64"},
    ],
    ids=["missing", "wrong", "scheme", "basic-garbage"],
)
async def test_a_request_without_the_secret_is_forged(headers: dict[str, str]) -> None:
    body = fake_reports.postfix_bounce(sent(), RECIPIENT)
    request = webhook_request(body, {"Content-Type": "message/rfc822", **headers}, url=URL)
    assert (await refusal(request)).reason is RejectReason.FORGED


async def test_two_authorization_headers_are_forged() -> None:
    body = fake_reports.postfix_bounce(sent(), RECIPIENT)
    headers = [("Authorization", f"Bearer {SECRET}"), ("Authorization", "Bearer x")]
    assert (await refusal(webhook_request(body, headers, url=URL))).reason is RejectReason.FORGED


async def test_a_report_over_the_size_limit_is_refused() -> None:
    body = fake_reports.postfix_bounce(sent(), RECIPIENT)
    rejected = await refusal(posted(body), report_max_bytes=1024)
    assert rejected.reason is RejectReason.MALFORMED
    assert "report_max_bytes" in rejected.detail


async def test_a_json_body_is_refused_naming_the_content_type() -> None:
    rejected = await refusal(posted(b'{"bounce": true}', **{"Content-Type": "application/json"}))
    assert rejected.reason is RejectReason.MALFORMED
    assert "message/rfc822" in rejected.detail


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fake_reports.not_a_report(), "not a bounce or complaint report"),
        (b"\x00garbage without headers", "not"),
        (b"   ", "empty body"),
    ],
)
async def test_what_is_not_a_report_is_malformed(body: bytes, reason: str) -> None:
    rejected = await refusal(posted(body))
    assert rejected.reason is RejectReason.MALFORMED
    assert reason in rejected.detail


async def test_a_retried_report_is_the_same_delivery() -> None:
    hook = SmtpReportWebhook(config())
    desk = IngestDesk()
    body = fake_reports.exim_bounce(sent(), RECIPIENT)
    await desk.receive(hook, posted(body))
    with pytest.raises(WebhookRejected) as caught:
        await desk.receive(hook, posted(body))
    assert caught.value.reason is RejectReason.REPLAYED


async def test_a_report_without_a_message_id_is_known_by_its_hash() -> None:
    body = fake_reports.postfix_bounce(sent(), RECIPIENT).replace(b"Message-Id: <", b"X-Id: <")
    hook = SmtpReportWebhook(config())
    first = await hook.verify(posted(body))
    assert first.delivery_id.startswith("smtp:sha256:")
    assert (await hook.verify(posted(body))).delivery_id == first.delivery_id


def test_receiving_reports_needs_the_secret_naming_its_variable() -> None:
    without = load_config("smtp", SmtpConfig, {"host": "smtp.relay.example"}, environ={})
    with pytest.raises(ConnectorConfigError, match="MAILWRIGHT_CONNECTOR_SMTP_WEBHOOK_SECRET"):
        SmtpReportWebhook(without)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ConnectorConfigError, match="webhook_secret"):
        config(webhook_secret="short")


async def test_the_event_is_dated_by_the_report_unless_its_date_is_later_than_arrival() -> None:
    report = fake_reports.exim_bounce(sent(), RECIPIENT)
    written = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)
    dated = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: " + format_datetime(written).encode(), report)
    (event,) = await receive(posted(dated))
    assert event.timestamp.ToDatetime(UTC) == written
    request = posted(dated.replace(b"Jan 2026", b"Jan 2099"))
    (later,) = await receive(request)
    assert later.timestamp.ToDatetime(UTC) == request.received_at


# -- through ingest ------------------------------------------------------------------------


async def test_reports_posted_to_ingest_are_published_as_email_events(
    start_mailwright: StartMailwright,
) -> None:
    running = await start_mailwright(["ingest"], connectors={"smtp": CONNECTOR})
    original = sent()
    reports = [
        fake_reports.postfix_bounce(original, RECIPIENT),
        fake_reports.outlook_bounce(original, RECIPIENT),
        fake_reports.yahoo_complaint(original, RECIPIENT),
    ]
    headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {SECRET}"}
    base = f"http://127.0.0.1:{running.platform.http_port}"
    async with httpx.AsyncClient(base_url=base) as http:
        answers = [
            await http.post("/webhooks/smtp/acme", content=r, headers=headers) for r in reports
        ]
        again = await http.post("/webhooks/smtp/acme", content=reports[0], headers=headers)
        forged = await http.post(
            "/webhooks/smtp/acme", content=reports[0], headers={"Authorization": "Bearer nope"}
        )
        junk = await http.post(
            "/webhooks/smtp/acme", content=fake_reports.not_a_report(), headers=headers
        )
    assert [(a.status_code, a.json()["accepted"]) for a in answers] == [(200, 1)] * 3
    assert again.json()["status"] == "duplicate"
    assert forged.status_code == 401
    assert junk.status_code == 400
    events = await running.wait_for_events(3)
    assert sorted(e.event for e in events) == [
        "Email Bounced",
        "Email Bounced",
        "Email Marked as Spam",
    ]
    assert {e.workspace for e in events} == {"acme"}
    assert {e.family for e in events} == {"email"}
    assert {e.properties["send_id"] for e in events} == {SEND_ID}
