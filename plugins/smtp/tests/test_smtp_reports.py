"""Bounce (RFC 3464) and complaint (RFC 5965) reports, in the shapes Postfix, Exim,
Microsoft 365, Gmail, Yahoo and Microsoft's feedback loop send, read into failures and
complaints that name the send."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from mailwright.connectors import OutboundMessage
from mailwright_smtp import fake_reports
from mailwright_smtp.message import prepare
from mailwright_smtp.reports import Report, ReportError, read_report

RECIPIENT = "reader@example.net"
NOW = datetime(2026, 11, 29, 4, 40, tzinfo=UTC)


def sent(send_id: str = "k5xq3vb7n2m4p6r8t0w2y4z6") -> bytes:
    """The message as the SMTP provider put it on the wire."""
    message = OutboundMessage(
        send_id=send_id,
        idempotency_key="campaign-7:profile-1",
        from_address="Shop <news@shop.example>",
        to_address=f"Reader <{RECIPIENT}>",
        subject="Your basket is waiting",
        text="Hello",
        html="<p>Hello</p>",
    )
    return prepare(message, envelope_from=None, message_id_domain=None, now=NOW).data


def message_id_of(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode().strip("<>")
    raise AssertionError("no Message-ID")


def only_failure(report: Report) -> tuple[str, str, str, str]:
    (failure,) = report.failures
    return failure.recipient, failure.action, failure.status, failure.bounce_type


@pytest.mark.parametrize("headers_only", [False, True])
def test_a_postfix_bounce_is_a_hard_failure_of_the_send(headers_only: bool) -> None:
    original = sent()
    report = read_report(
        fake_reports.postfix_bounce(original, RECIPIENT, headers_only=headers_only)
    )
    assert report.kind == "delivery-status"
    assert report.original.send_id == "k5xq3vb7n2m4p6r8t0w2y4z6"
    assert report.original.message_id == message_id_of(original)
    assert only_failure(report) == (RECIPIENT, "failed", "5.1.1", "hard")


def test_the_diagnostic_is_kept_without_the_address() -> None:
    report = read_report(fake_reports.postfix_bounce(sent(), RECIPIENT))
    (failure,) = report.failures
    assert failure.diagnostic.startswith("550 5.1.1 <<address>>: Recipient address rejected")
    assert RECIPIENT not in failure.diagnostic
    assert "virtual mailbox table" in failure.diagnostic  # the folded line is joined


def test_a_full_mailbox_is_soft_by_the_same_table_as_a_reply_at_rcpt() -> None:
    bounce = fake_reports.postfix_bounce(
        sent(), RECIPIENT, status="5.2.2", diagnostic="552 5.2.2 Mailbox full"
    )
    assert only_failure(read_report(bounce))[3] == "soft"


def test_an_exim_status_of_only_its_class_takes_the_diagnostics_code() -> None:
    report = read_report(fake_reports.exim_bounce(sent(), RECIPIENT))
    assert only_failure(report) == (RECIPIENT, "failed", "5.2.2", "soft")


def test_an_exim_unknown_user_is_hard() -> None:
    bounce = fake_reports.exim_bounce(sent(), RECIPIENT, reply="550 5.1.1 <{rcpt}>: No such user")
    assert only_failure(read_report(bounce)) == (RECIPIENT, "failed", "5.1.1", "hard")


def test_a_microsoft_365_ndr_with_headers_only_names_the_send() -> None:
    report = read_report(fake_reports.outlook_bounce(sent(), RECIPIENT))
    assert report.original.send_id == "k5xq3vb7n2m4p6r8t0w2y4z6"
    assert only_failure(report) == (RECIPIENT, "failed", "5.1.10", "hard")
    assert "RESOLVER.ADR.RecipientNotFound" in report.failures[0].diagnostic


def test_a_gmail_failure_is_hard_and_a_gmail_delay_no_failure() -> None:
    failed = read_report(fake_reports.gmail_bounce(sent(), RECIPIENT))
    assert only_failure(failed) == (RECIPIENT, "failed", "5.1.1", "hard")
    delayed = read_report(fake_reports.gmail_bounce(sent(), RECIPIENT, delayed=True))
    assert delayed.failures == ()  # a warning: the server keeps trying


def test_a_temporary_status_is_soft_even_when_the_relay_gave_up() -> None:
    bounce = fake_reports.postfix_bounce(
        sent(), RECIPIENT, status="4.4.1", diagnostic="connect to mx.example.net: timed out"
    )
    assert only_failure(read_report(bounce)) == (RECIPIENT, "failed", "4.4.1", "soft")


def test_delivered_relayed_and_expanded_recipients_are_not_failures() -> None:
    others = [
        f"Final-Recipient: rfc822; {action}@example.net\nAction: {action}\nStatus: 2.0.0"
        for action in ("delivered", "relayed", "expanded")
    ]
    bounce = fake_reports.postfix_bounce(sent(), RECIPIENT, more_recipients=others)
    assert [f.recipient for f in read_report(bounce).failures] == [RECIPIENT]


def test_an_internationalised_delivery_status_reads_the_same() -> None:
    # RFC 6533, which Exchange uses for SMTPUTF8 messages: the parser does not split it.
    bounce = fake_reports.postfix_bounce(sent(), RECIPIENT).replace(
        b"Content-Type: message/delivery-status", b"Content-Type: message/global-delivery-status"
    )
    assert only_failure(read_report(bounce)) == (RECIPIENT, "failed", "5.1.1", "hard")


def test_a_base64_delivery_status_is_decoded() -> None:
    bounce = fake_reports.postfix_bounce(sent(), RECIPIENT)
    head, marker, rest = bounce.partition(b"Content-Type: message/delivery-status\r\n\r\n")
    fields, separator, tail = rest.partition(b"\r\n--")
    encoded = base64.encodebytes(fields).replace(b"\n", b"\r\n")
    marker = marker.replace(b"\r\n\r\n", b"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
    report = read_report(head + marker + encoded + separator + tail)
    assert only_failure(report) == (RECIPIENT, "failed", "5.1.1", "hard")


def test_a_yahoo_complaint_names_the_complainant_and_the_send() -> None:
    report = read_report(fake_reports.yahoo_complaint(sent(), RECIPIENT))
    assert report.kind == "feedback-report"
    assert (report.feedback_type, report.complainant) == ("abuse", RECIPIENT)
    assert report.reporter == "Yahoo!-Mail-Feedback/2.0"
    assert report.original.send_id == "k5xq3vb7n2m4p6r8t0w2y4z6"


def test_a_microsoft_complaint_withholds_the_recipient_but_names_the_send() -> None:
    report = read_report(fake_reports.microsoft_complaint(sent()))
    assert (report.feedback_type, report.complainant) == ("abuse", "")
    assert report.original.send_id == "k5xq3vb7n2m4p6r8t0w2y4z6"


def test_a_report_of_a_message_we_did_not_send_names_no_send() -> None:
    foreign = b"From: someone@else.example\r\nMessage-ID: <x@else.example>\r\n\r\nhi\r\n"
    report = read_report(fake_reports.postfix_bounce(foreign, RECIPIENT))
    assert report.original.send_id == ""
    assert report.original.message_id == "x@else.example"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (fake_reports.not_a_report(), "not a multipart/report"),
        (b"\x00\xff garbage \r\n\r\n", "not"),
        (
            b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"'
            b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b--\r\n",
            "only delivery-status and feedback-report",
        ),
        (
            b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"'
            b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--b--\r\n",
            "no message/delivery-status",
        ),
    ],
)
def test_what_is_not_a_readable_report_says_why(body: bytes, reason: str) -> None:
    with pytest.raises(ReportError, match=reason):
        read_report(body)


def test_a_delivery_status_without_any_recipient_is_refused() -> None:
    bounce = fake_reports.postfix_bounce(sent(), RECIPIENT).replace(
        b"Final-Recipient: rfc822; " + RECIPIENT.encode(), b"X-Nothing: here"
    )
    bounce = bounce.replace(b"Original-Recipient: rfc822;" + RECIPIENT.encode(), b"X-Also: no")
    with pytest.raises(ReportError, match="no Final-Recipient"):
        read_report(bounce)
