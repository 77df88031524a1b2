"""Bounce and complaint reports in the shapes real mail systems send, for tests and demos.

Each builder wraps `original` (the message as the SMTP provider sent it) the way that
system does: Postfix (`Undelivered Mail Returned to Sender`, the message or only its
headers returned), Exim (`Mail delivery failed`, a Status of only its class with the
precise code in the diagnostic), Microsoft 365 (`Undeliverable:`, a human part that is
itself multipart/alternative, `5.1.10` status codes, headers returned as
`text/rfc822-headers`), Gmail (`Delivery Status Notification (Failure)` or `(Delay)`,
`X-Original-Message-ID` among the per-message fields) and feedback-loop complaints from
Yahoo (`Original-Rcpt-To` given) and Microsoft (the recipient withheld). The fields and
their order follow what those systems write; the wording of human parts is abridged.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import format_datetime

CRLF = "\r\n"


def _date() -> str:
    """Now, as a Date header: ingest refuses events older than its `max_past`."""
    return format_datetime(datetime.now(UTC).replace(microsecond=0))


def _lines(*lines: str) -> str:
    return CRLF.join(lines)


def _headers_of(original: bytes) -> str:
    head, _, _ = original.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head.decode("ascii", "replace").replace("\n", CRLF) + CRLF


def _folded(field: str, width: int = 76) -> list[str]:
    """`field` folded at spaces into lines of about `width` (continuations indented)."""
    lines, line = [], ""
    for word in field.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "    " + word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def _returned(original: bytes, headers_only: bool) -> tuple[str, str]:
    """(content type, content) of the returned message part."""
    if headers_only:
        return "text/rfc822-headers", _headers_of(original)
    return "message/rfc822", original.decode("utf-8", "replace").replace("\r\n", "\n").replace(
        "\n", CRLF
    )


def postfix_bounce(
    original: bytes,
    recipient: str,
    *,
    status: str = "5.1.1",
    diagnostic: str = "",
    action: str = "failed",
    headers_only: bool = False,
    more_recipients: Sequence[str] = (),
    report_id: str = "20261129044107.4F1A2B3C4D@relay.shop.example",
) -> bytes:
    """Postfix's bounce(8) notice: `Notification`, `Delivery report`, the message back.

    `more_recipients` are further per-recipient blocks, as raw field lines."""
    reply = diagnostic or (
        f"550 {status} <{recipient}>: Recipient address rejected: User unknown in virtual "
        "mailbox table"
    )
    kind, returned = _returned(original, headers_only)
    boundary = "4F1A2B3C4D.1764391267/relay.shop.example"
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    text = _lines(
        "Return-Path: <>",
        "Received: by relay.shop.example (Postfix)",
        "\tid 4F1A2B3C4D; " + _date(),
        f"Date: {_date()}",
        "From: MAILER-DAEMON@relay.shop.example (Mail Delivery System)",
        f"Subject: {subject}",
        "To: bounces@mail.shop.example",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
        "Content-Transfer-Encoding: 7bit",
        f"Message-Id: <{report_id}>",
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This is the mail system at host relay.shop.example.",
        "",
        "I'm sorry to have to inform you that your message could not",
        "be delivered to one or more recipients. It's attached below.",
        "",
        f"<{recipient}>: host mx.example.net[203.0.113.25] said: {reply} (in reply to",
        "    RCPT TO command)",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; relay.shop.example",
        "X-Postfix-Queue-ID: 4F1A2B3C4D",
        "X-Postfix-Sender: rfc822; bounces@mail.shop.example",
        "Arrival-Date: " + _date() + " (UTC)",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Original-Recipient: rfc822;{recipient}",
        f"Action: {action}",
        f"Status: {status}",
        "Remote-MTA: dns; mx.example.net",
        *_folded("Diagnostic-Code: smtp; " + reply),
        "",
        *(block.replace("\n", CRLF) + CRLF for block in more_recipients),
        f"--{boundary}",
        "Content-Description: Undelivered " + ("Message Headers" if headers_only else "Message"),
        f"Content-Type: {kind}",
        "",
        returned,
        f"--{boundary}--",
        "",
    )
    return text.encode()


def exim_bounce(
    original: bytes,
    recipient: str,
    *,
    reply: str = "552 5.2.2 <{rcpt}>: mailbox is full",
    report_id: str = "E1vQxyz-000Abc-7k@mx1.example.org",
) -> bytes:
    """Exim's bounce: `X-Failed-Recipients`, a `5.0.0` Status, the reply in the diagnostic."""
    said = reply.format(rcpt=recipient)
    boundary = "1764391267-eximdsn-1804289383"
    return _lines(
        "Return-path: <>",
        "X-Failed-Recipients: " + recipient,
        "Auto-Submitted: auto-replied",
        "From: Mail Delivery System <Mailer-Daemon@mx1.example.org>",
        "To: bounces@mail.shop.example",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=" + boundary,
        "MIME-Version: 1.0",
        "Subject: Mail delivery failed: returning message to sender",
        f"Message-Id: <{report_id}>",
        f"Date: {_date()}",
        "",
        "--" + boundary,
        "Content-type: text/plain; charset=us-ascii",
        "",
        "This message was created automatically by mail delivery software.",
        "",
        "A message that you sent could not be delivered to one or more of its",
        "recipients. This is a permanent error. The following address(es) failed:",
        "",
        "  " + recipient,
        "    host mx.example.org [198.51.100.7]",
        "    SMTP error from remote mail server after RCPT TO:<" + recipient + ">:",
        "    " + said,
        "",
        "--" + boundary,
        "Content-type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx1.example.org",
        "",
        "Action: failed",
        "Final-Recipient: rfc822;" + recipient,
        "Status: 5.0.0",
        "Remote-MTA: dns; mx.example.org",
        "Diagnostic-Code: smtp; " + said,
        "",
        "--" + boundary,
        "Content-type: message/rfc822",
        "",
        _returned(original, False)[1],
        "--" + boundary + "--",
        "",
    ).encode()


def outlook_bounce(
    original: bytes,
    recipient: str,
    *,
    status: str = "5.1.10",
    report_id: str = "a1b2c3d4-e5f6-4a5b-9c8d-1e2f3a4b5c6d@AM0PR01MB1234.eurprd01.prod.outlook.com",
) -> bytes:
    """Microsoft 365's NDR: multipart/alternative human part, headers only returned."""
    outer = "_004_a1b2c3d4e5f64a5b9c8d1e2f3a4b5c6dAM0PR01MB1234_"
    inner = "_000_a1b2c3d4e5f64a5b9c8d1e2f3a4b5c6dAM0PR01MB1234_"
    return _lines(
        "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.com>",
        "To: <bounces@mail.shop.example>",
        "Date: " + _date(),
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{outer}"',
        "Content-Language: en-US",
        f"Message-ID: <{report_id}>",
        "In-Reply-To: <original@mail.shop.example>",
        "Subject: Undeliverable: Your basket is waiting",
        "Auto-Submitted: auto-replied",
        "X-MS-Exchange-Message-Is-Ndr:",
        "X-MS-PublicTrafficType: Email",
        "MIME-Version: 1.0",
        "",
        "--" + outer,
        "Content-Type: multipart/alternative;",
        f'\tboundary="{inner}"',
        "",
        "--" + inner,
        'Content-Type: text/plain; charset="us-ascii"',
        "",
        "Your message to " + recipient + " couldn't be delivered.",
        "The email address wasn't found at the destination domain.",
        "",
        "--" + inner,
        'Content-Type: text/html; charset="us-ascii"',
        "",
        "<html><body><p>Your message couldn't be delivered.</p></body></html>",
        "",
        "--" + inner + "--",
        "",
        "--" + outer,
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.exchangelabs.com",
        "Received-From-MTA: dns;mail.shop.example",
        "Arrival-Date: " + _date(),
        "",
        "Final-Recipient: rfc822;" + recipient,
        "Action: failed",
        "Status: " + status,
        f"Diagnostic-Code: smtp;550 {status} RESOLVER.ADR.RecipientNotFound; Recipient not",
        " found by SMTP address lookup",
        "X-Display-Name: Reader",
        "",
        "",
        "--" + outer,
        "Content-Type: text/rfc822-headers",
        "",
        _headers_of(original),
        "--" + outer + "--",
        "",
    ).encode()


def gmail_bounce(
    original: bytes,
    recipient: str,
    *,
    delayed: bool = False,
    report_id: str = "6752a3f1.050a0220.2f1d4.8a7bSMTPIN_ADDED_MISSING@mx.google.com",
) -> bytes:
    """Google's notice (Workspace SMTP relay): `Delivery Status Notification (Failure)`."""
    boundary = "000000000000f2a1b3062a5c7d11"
    related = "000000000000f29ac0062a5c7d0e"
    if delayed:
        action, status = "delayed", "4.4.1"
        reply = "The recipient server did not accept our requests to connect."
        subject, extra = "Delivery Status Notification (Delay)", "Will-Retry-Until: " + _date()
    else:
        action, status = "failed", "5.1.1"
        reply = (
            "550 5.1.1 The email account that you tried to reach does not exist. Please"
            " try double-checking the recipient's email address for typos."
        )
        subject, extra = "Delivery Status Notification (Failure)", "Last-Attempt-Date: " + _date()
    headers = _headers_of(original)
    original_id = next(
        (
            line.split(":", 1)[1].strip()
            for line in headers.split(CRLF)
            if line.lower().startswith("message-id:")
        ),
        "",
    )
    return _lines(
        "Received: by 2002:a05:6a10:9e4c:b0:5c1:7d2e with SMTP id p12csp1234567pxb;",
        "        " + _date(),
        "Return-Path: <>",
        "Content-Type: multipart/report; boundary=" + f'"{boundary}"; report-type=delivery-status',
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>",
        "To: bounces@mail.shop.example",
        "Auto-Submitted: auto-replied",
        f"Message-ID: <{report_id}>",
        "Date: " + _date(),
        "Subject: " + subject,
        "MIME-Version: 1.0",
        "",
        "--" + boundary,
        "Content-Type: multipart/related; boundary=" + f'"{related}"',
        "",
        "--" + related,
        'Content-Type: text/html; charset="UTF-8"',
        "",
        "<html><body><h2>Address not found</h2></body></html>",
        "--" + related + "--",
        "--" + boundary,
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; googlemail.com",
        "Arrival-Date: " + _date(),
        "X-Original-Message-ID: " + original_id,
        "",
        "Final-Recipient: rfc822; " + recipient,
        "Action: " + action,
        "Status: " + status,
        "Remote-MTA: dns; mx.example.com. (203.0.113.9, the server for the domain example.com.)",
        "Diagnostic-Code: smtp; " + reply,
        extra,
        "",
        "--" + boundary,
        "Content-Type: message/rfc822",
        "",
        _returned(original, False)[1],
        "--" + boundary + "--",
        "",
    ).encode()


def yahoo_complaint(
    original: bytes, recipient: str, *, report_id: str = "1764391267.1234567@arf.mail.yahoo.com"
) -> bytes:
    """Yahoo's complaint feedback loop: an ARF report naming the complaining recipient."""
    boundary = "----=_Part_9876543_1234567.1764391267123"
    return _lines(
        "From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>",
        "To: fbl@mail.shop.example",
        "Subject: FW: Your basket is waiting",
        f"Message-ID: <{report_id}>",
        "Date: " + _date(),
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=feedback-report;",
        f'\tboundary="{boundary}"',
        "",
        "--" + boundary,
        "Content-Type: text/plain; charset=us-ascii",
        "Content-Transfer-Encoding: 7bit",
        "",
        "This is an email abuse report for an email message received from IP",
        "203.0.113.40 on " + _date() + ".",
        "For more information about this format please see http://www.mipassoc.org/arf/.",
        "",
        "--" + boundary,
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: Yahoo!-Mail-Feedback/2.0",
        "Version: 0.1",
        "Original-Mail-From: <bounces@mail.shop.example>",
        "Original-Rcpt-To: " + recipient,
        "Received-Date: " + _date(),
        "Reported-Domain: shop.example",
        "Authentication-Results: mta1012.mail.gq1.yahoo.com  from=shop.example; domainkeys=neutral",
        " (no sig);  from=shop.example; dkim=pass (ok)",
        "",
        "--" + boundary,
        "Content-Type: message/rfc822",
        "Content-Disposition: inline",
        "",
        _returned(original, False)[1],
        "--" + boundary + "--",
        "",
    ).encode()


def microsoft_complaint(
    original: bytes, *, report_id: str = "JMRP-2026112904.a1b2c3@hotmail.com"
) -> bytes:
    """Microsoft's junk mail reporting programme: ARF, the recipient withheld."""
    boundary = "boundary_jmrp_0123456789"
    return _lines(
        "From: staff@hotmail.com",
        "To: fbl@mail.shop.example",
        "Subject: complaint about message from 203.0.113.40",
        f"Message-ID: <{report_id}>",
        "Date: " + _date(),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type="feedback-report"; boundary="{boundary}"',
        "",
        "--" + boundary,
        "Content-Type: text/plain",
        "",
        "This is an email abuse report for an email message received from IP 203.0.113.40.",
        "",
        "--" + boundary,
        "Content-Type: message/feedback-report",
        "",
        "Feedback-Type: abuse",
        "User-Agent: Microsoft Junk Mail Reporting Program",
        "Version: 1",
        "Source-IP: 203.0.113.40",
        "Arrival-Date: " + _date(),
        "",
        "--" + boundary,
        "Content-Type: message/rfc822",
        "",
        _returned(original, False)[1],
        "--" + boundary + "--",
        "",
    ).encode()


def not_a_report(subject: str = "Out of office") -> bytes:
    """An auto-reply that reached the bounce mailbox: a message, not a report."""
    return _lines(
        "From: Reader <reader@example.net>",
        "To: bounces@mail.shop.example",
        "Subject: " + subject,
        "Date: " + _date(),
        "Message-ID: <ooo-1@example.net>",
        "Auto-Submitted: auto-replied",
        "Content-Type: text/plain; charset=utf-8",
        "",
        "I am away until Monday.",
        "",
    ).encode()
