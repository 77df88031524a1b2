"""Bounce and complaint reports that come back by email, read.

A relay accepts a message with 250 and the remote server's refusal comes back later to
the envelope sender as a delivery status notification (RFC 3464: `multipart/report;
report-type=delivery-status`, one block of fields per recipient); a mailbox provider's
feedback loop sends complaints as an abuse report (RFC 5965: `multipart/report;
report-type=feedback-report`). Both carry the original message, or its headers, in
their last part: its `X-Mailwright-Send` header (written by `mailwright_smtp.message`)
names the send, and its Message-ID is the provider message id.

Plain Python on the `email` package; `mailwright_smtp.webhook` turns a `Report` into events.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import parsedate_to_datetime

from mailwright.connectors import redact
from mailwright_smtp.message import SEND_HEADER
from mailwright_smtp.replies import reported_bounce_type

DELIVERY_STATUS = "delivery-status"
FEEDBACK_REPORT = "feedback-report"

# RFC 3464 §2.3.3: what the reporting MTA did for the recipient.
FAILED, DELAYED = "failed", "delayed"
# "delayed" is a warning: the reporting server keeps trying, and a failure will be
# reported in its turn if it gives up; a message that was late is no bounce.
_IGNORED_ACTIONS = frozenset({"delivered", "relayed", "expanded", DELAYED})
# RFC 5965 §7.3 feedback types that are a complaint about the message (not "not-spam",
# nor RFC 6591's "auth-failure", which reports a DMARC failure, not a person).
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus"})

_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_FEEDBACK_TYPES = frozenset({"message/feedback-report"})
_ORIGINAL_TYPES = frozenset(
    {
        "message/rfc822",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global",
        "message/global-headers",
    }
)
_MAX_ADDRESS = 320


class ReportError(ValueError):
    """A body that is not a report this plugin can read; the message says why."""


@dataclass(frozen=True)
class Original:
    """What the report says of the message we sent."""

    send_id: str = ""
    message_id: str = ""
    """Without angle brackets: the provider message id the SMTP provider returned."""


@dataclass(frozen=True)
class Failure:
    """One recipient a delivery status notification reports as failed."""

    recipient: str
    action: str
    status: str
    bounce_type: str
    diagnostic: str
    """The remote server's reply, addresses redacted; empty when the report has none."""


@dataclass(frozen=True)
class Report:
    """A delivery status notification (`kind` delivery-status) or a feedback report."""

    kind: str
    original: Original
    written_at: datetime | None
    failures: tuple[Failure, ...] = ()
    feedback_type: str = ""
    complainant: str = ""
    """The complaining recipient (`Original-Rcpt-To`); often withheld by the provider."""
    reporter: str = ""
    """The feedback report's `User-Agent` (`Yahoo!-Mail-Feedback/2.0`)."""


def read_report(raw: bytes) -> Report:
    """The report in `raw` (an RFC 5322 message); `ReportError` if it is not one."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise ReportError("not an email message")
    if message.get_content_type() != "multipart/report":
        raise ReportError(
            f"not a bounce or complaint report: a {message.get_content_type()}, not a "
            "multipart/report"
        )
    kind = str(message.get_param("report-type", "") or "").strip().lower()
    parts: list[Message] = list(message.iter_parts())
    original = _original(parts)
    written_at = _date(message.get("Date"))
    if kind == DELIVERY_STATUS:
        blocks = _fields(parts, _STATUS_TYPES)
        return Report(kind, original, written_at, failures=_failures(blocks))
    if kind == FEEDBACK_REPORT:
        blocks = _fields(parts, _FEEDBACK_TYPES)
        return _feedback(blocks[0], original, written_at)
    raise ReportError(f"report-type {kind[:40]!r}: only delivery-status and feedback-report")


def _fields(parts: Sequence[Message], content_types: frozenset[str]) -> list[Message]:
    """The blocks of fields of the report's machine-readable part, the per-message block
    first. Read from the part's text rather than trusted to the parser, which splits only
    `message/delivery-status` into blocks (RFC 6533's `message/global-delivery-status`
    reads as one message) and leaves a base64 part undecoded."""
    for part in parts:
        if part.get_content_type() not in content_types:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            text = "\n\n".join(_text_of(block) for block in payload if isinstance(block, Message))
        else:
            text = str(payload)
        blocks = _blocks(_decoded(text, str(part.get("Content-Transfer-Encoding", ""))))
        if blocks:
            return blocks
    raise ReportError(f"no {' or '.join(sorted(content_types))} part")


def _text_of(block: Message) -> str:
    head = "\n".join(f"{name}: {' '.join(str(value).split())}" for name, value in block.items())
    body = block.get_payload()
    return f"{head}\n\n{body}" if isinstance(body, str) and body.strip() else head


def _decoded(text: str, encoding: str) -> str:
    encoding = encoding.strip().lower()
    try:
        if encoding == "base64":
            return base64.b64decode("".join(text.split())).decode("utf-8", "replace")
        if encoding == "quoted-printable":
            return quopri.decodestring(text.encode("ascii", "replace")).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        raise ReportError(f"report part: not valid {encoding}") from None
    return text


def _blocks(text: str) -> list[Message]:
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [HeaderParser(policy=policy.default).parsestr(chunk) for chunk in chunks if chunk]


def _failures(blocks: list[Message]) -> tuple[Failure, ...]:
    # The per-message block (Reporting-MTA, …) names no recipient and drops out here.
    recipients = [block for block in blocks if _recipient(block)]
    if not recipients:
        raise ReportError("delivery-status: no Final-Recipient in any recipient block")
    found = []
    for block in recipients:
        failure = _failure(block)
        if failure is not None:
            found.append(failure)
    return tuple(found)


def _failure(block: Message) -> Failure | None:
    diagnostic = _diagnostic(str(block.get("Diagnostic-Code", "")))
    status = _status(str(block.get("Status", "")), diagnostic)
    action = str(block.get("Action", "")).strip().lower().split(" ")[0]
    if not action and status is not None:
        action = {5: FAILED, 4: DELAYED}.get(status[0], "delivered")
    if action in _IGNORED_ACTIONS or action != FAILED:
        return None
    if status is None:
        status = (5, 0, 0)
    bounce_type = reported_bounce_type(status, diagnostic)
    return Failure(
        recipient=_recipient(block),
        action=action,
        status=".".join(map(str, status)),
        bounce_type=bounce_type,
        diagnostic=redact(diagnostic),
    )


def _status(field: str, diagnostic: str) -> tuple[int, int, int] | None:
    """The Status field's code; when it says only its class (Exim's `5.0.0`), the more
    precise code of the same class the diagnostic quotes (`552 5.2.2 mailbox full`)."""
    given = _STATUS.search(field)
    quoted = _STATUS.search(diagnostic)
    status = tuple(int(n) for n in given.groups()) if given else None
    detail = tuple(int(n) for n in quoted.groups()) if quoted else None
    vague = status is not None and status[1:] == (0, 0)
    if status is None or (vague and detail is not None and detail[0] == status[0]):
        status = detail
    return (status[0], status[1], status[2]) if status is not None else None


def _diagnostic(field: str) -> str:
    """The reply after the diagnostic type (`smtp; 550 5.1.1 …` → `550 5.1.1 …`)."""
    kind, separator, text = " ".join(field.split()).partition(";")
    return text.strip() if separator and " " not in kind.strip() else " ".join(field.split())


def _recipient(block: Message) -> str:
    for name in ("Final-Recipient", "Original-Recipient"):
        address = _address(str(block.get(name, "")))
        if address:
            return address
    return ""


def _address(field: str) -> str:
    """The mailbox of an `rfc822; someone@example.org` field (address type optional)."""
    value = field.strip()
    kind, separator, rest = value.partition(";")
    if separator:
        if kind.strip().lower() != "rfc822":
            return ""
        value = rest
    value = value.strip().strip("<>").strip()
    if "@" not in value or len(value) > _MAX_ADDRESS or any(c.isspace() for c in value):
        return ""
    return value.lower()


def _feedback(fields: Message, original: Original, written_at: datetime | None) -> Report:
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if not feedback_type:
        raise ReportError("feedback-report: no Feedback-Type")
    recipients = fields.get_all("Original-Rcpt-To") or []
    complainant = next((a for a in (_address(str(r)) for r in recipients) if a), "")
    return Report(
        FEEDBACK_REPORT,
        original,
        written_at,
        feedback_type=feedback_type,
        complainant=complainant,
        reporter=redact(str(fields.get("User-Agent", "")))[:100],
    )


def _original(parts: Sequence[Message]) -> Original:
    """The send header and Message-ID of the returned message or headers, if any."""
    for part in parts:
        if part.get_content_type() not in _ORIGINAL_TYPES:
            continue
        headers = _original_headers(part)
        if headers is None:
            continue
        send_id = " ".join(str(headers.get(SEND_HEADER, "")).split())
        message_id = str(headers.get("Message-ID", "")).strip().strip("<>").strip()
        return Original(send_id=send_id[:200], message_id=message_id[:300])
    return Original()


def _original_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    if isinstance(payload, str):
        text = part.get_content() if isinstance(part, EmailMessage) else payload
        return HeaderParser(policy=policy.default).parsestr(str(text))
    return None


def _date(value: object) -> datetime | None:
    if value is None:
        return None
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else None
