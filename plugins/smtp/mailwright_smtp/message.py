"""An `OutboundMessage` as SMTP needs it: an envelope and CRLF MIME bytes.

Message-IDs are derived from the send's idempotency key, so a retried send carries the
same Message-ID (receivers that deduplicate on it will), and bounces that quote it map
back to the send. Every message also carries `X-Mailwright-Send: <send id>`: relays such
as Amazon SES replace the Message-ID, and delivery's event taxonomy wants the send id
itself, so the bounce and complaint reports (`mailwright_smtp.reports`) find the send by
this header in the original headers they return.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.header import Header
from email.parser import BytesHeaderParser
from email.utils import format_datetime, formataddr, parseaddr

from mailwright.connectors import ErrorKind, OutboundMessage, ProviderError

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# A bare address in its plainest form: a dot-atom local part and ASCII labels of 1 to 63
# characters. parseaddr gives such an address back unchanged with no display name, and
# IDNA leaves its domain as it is; most recipients look like this, so they skip both.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9-]{1,63}"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
SEND_HEADER = "X-Mailwright-Send"
_LINE_END = re.compile(rb"\r\n|\r|\n")
_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
# Headers the message's own fields set; extra headers must not contradict them.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "bcc",
        "dkim-signature",
        SEND_HEADER.lower(),
    }
)


@dataclass(frozen=True)
class Prepared:
    """What goes on the wire: envelope sender and recipient, the data, its Message-ID."""

    envelope_from: str
    recipient: str
    data: bytes
    message_id: str


def mailbox(address: str, field: str) -> str:
    """The bare address of `address` (display name dropped), IDNA-encoded domain.

    Raises `ProviderError(INVALID)` naming `field` for anything that is not one address.
    """
    return _parsed(address, field)[1]


@functools.lru_cache(maxsize=4096)
def _parsed(address: str, field: str) -> tuple[str, str]:
    """(display name, mailbox) of `address`, parsed once: the sender's address repeats
    in every message of a campaign, and parsing costs more than the rest of the head."""
    return _parse(address, field)


def _parse(address: str, field: str) -> tuple[str, str]:
    if _PLAIN_ADDRESS.fullmatch(address):
        return "", address
    return _parse_any(address, field)


def _parse_any(address: str, field: str) -> tuple[str, str]:
    if any(char in address for char in "\r\n\0"):
        raise ProviderError(ErrorKind.INVALID, f"{field}: line break in address")
    name, bare = parseaddr(address)
    local, at, domain = bare.rpartition("@")
    if not at or not local or not domain or any(char.isspace() for char in bare):
        raise ProviderError(ErrorKind.INVALID, f"{field}: not an email address")
    if not local.isascii():
        raise ProviderError(ErrorKind.INVALID, f"{field}: non-ASCII local part (needs SMTPUTF8)")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ProviderError(ErrorKind.INVALID, f"{field}: invalid domain") from None
    return name, f"{local}@{ascii_domain}"


def message_id_for(idempotency_key: str, domain: str) -> str:
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def prepare(
    message: OutboundMessage,
    *,
    envelope_from: str | None,
    message_id_domain: str | None,
    now: datetime | None = None,
) -> Prepared:
    """The envelope and data for `message`; `ProviderError(INVALID)` if it can't be sent."""
    sender = mailbox(message.from_address, "from_address")
    recipient = mailbox(message.to_address, "to_address")
    bounce = mailbox(envelope_from, "envelope_from") if envelope_from else sender
    message_id = message_id_for(
        message.idempotency_key, message_id_domain or sender.rpartition("@")[2]
    )
    date = now or datetime.now(UTC)
    if message.mime is not None:
        data, message_id = _complete(message.mime, message_id, date, message.send_id)
    else:
        data = _build(message, message_id, date)
    return Prepared(bounce, recipient, data, message_id)


def _build(message: OutboundMessage, message_id: str, date: datetime) -> bytes:
    # Written out by hand: the email package's EmailMessage costs about a millisecond per
    # message, as much as the SMTP exchange with a local relay.
    head = [
        b"From: " + _address_header(message.from_address, "from_address"),
        b"To: " + _address_header(message.to_address, "to_address"),
        b"Subject: " + _text_header("Subject", message.subject, "subject"),
        b"Date: " + _date_header(date),
        b"Message-ID: " + message_id.encode(),
        _send_header(message.send_id),
        b"MIME-Version: 1.0",
    ]
    for name, value in message.headers.pairs():
        if not _HEADER_NAME.match(name):
            raise ProviderError(ErrorKind.INVALID, f"headers: {name!r} is not a header name")
        if name.lower() in _RESERVED:
            raise ProviderError(ErrorKind.INVALID, f"headers: {name} is set by the message")
        head.append(name.encode() + b": " + _text_header(name, value, f"headers.{name}"))
    parts = [
        _part(content, subtype)
        for content, subtype in ((message.text, "plain"), (message.html, "html"))
        if content is not None
    ]
    if len(parts) == 1:
        [(part_head, body)] = parts
        return CRLF.join([*head, *part_head, b"", body])
    boundary = _boundary((body for _, body in parts), message_id)
    lines = [*head, b'Content-Type: multipart/alternative; boundary="' + boundary + b'"', b""]
    for part_head, body in parts:
        lines += [b"--" + boundary, *part_head, b"", body]
    lines += [b"--" + boundary + b"--", b""]
    return CRLF.join(lines)


CRLF = b"\r\n"
MAX_LINE = 998


@functools.lru_cache(maxsize=4096)
def _address_header(address: str, field: str) -> bytes:
    """The header form of `address`, remembered: a campaign's sender repeats in every
    message."""
    name, bare = _parsed(address, field)
    if not name:
        return bare.encode("ascii")
    return formataddr((name, bare), charset="utf-8").encode("ascii")


def _text_header(name: str, value: str, field: str) -> bytes:
    if any(char in value for char in "\r\n\0"):
        # A line break in a header value would start a header of the sender's choosing.
        raise ProviderError(ErrorKind.INVALID, f"{field}: line break in a header value")
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE:
        return value.encode("ascii")
    return Header(value, "utf-8", header_name=name).encode(linesep="\r\n").encode("ascii")


def _part(content: str, subtype: str) -> tuple[list[bytes], bytes]:
    raw = _LINE_END.sub(b"\n", content.encode("utf-8"))
    if raw.isascii() and not _CONTROL.search(raw) and max(map(len, raw.split(b"\n"))) <= MAX_LINE:
        encoding, body = b"7bit", raw
    else:
        encoding, body = b"quoted-printable", binascii.b2a_qp(raw, istext=True)
    head = [
        b"Content-Type: text/" + subtype.encode() + b'; charset="utf-8"',
        b"Content-Transfer-Encoding: " + encoding,
    ]
    return head, body.replace(b"\n", CRLF)


def _date_header(date: datetime) -> bytes:
    return _formatted_date(date.replace(microsecond=0))


@functools.lru_cache(maxsize=8)
def _formatted_date(date: datetime) -> bytes:
    # The Date header shows whole seconds: a batch sent within one shares the text.
    return format_datetime(date).encode()


def _boundary(bodies: Iterable[bytes], message_id: str) -> bytes:
    """A part boundary found in no body: first one drawn from the Message-ID's digest
    (unique per message, and no random bytes to ask the system for), else random."""
    contents = list(bodies)
    boundary = f"=_mw_{message_id.strip('<>').partition('@')[0][:24]}".encode()
    while any(boundary in body for body in contents):
        boundary = f"=_mw_{secrets.token_hex(12)}".encode()
    return boundary


def _send_header(send_id: str) -> bytes:
    return SEND_HEADER.encode() + b": " + _text_header(SEND_HEADER, send_id, "send_id")


def _complete(raw: bytes, message_id: str, date: datetime, send_id: str) -> tuple[bytes, str]:
    """Raw MIME with CRLF line ends, given a Message-ID, a Date and the send header if it
    lacks them."""
    data = _LINE_END.sub(b"\r\n", raw)
    head, separator, _ = data.partition(b"\r\n\r\n")
    if not separator:
        raise ProviderError(ErrorKind.INVALID, "mime: no blank line after the headers")
    headers = BytesHeaderParser(policy=policy.SMTP).parsebytes(head + b"\r\n\r\n")
    if not headers.get("From"):
        raise ProviderError(ErrorKind.INVALID, "mime: no From header")
    prefix = b""
    existing = headers.get("Message-ID")
    if existing:
        message_id = str(existing).strip()
    else:
        prefix += f"Message-ID: {message_id}\r\n".encode()
    if not headers.get("Date"):
        prefix += f"Date: {format_datetime(date)}\r\n".encode()
    if not headers.get(SEND_HEADER):
        prefix += _send_header(send_id) + CRLF
    return prefix + data, message_id
