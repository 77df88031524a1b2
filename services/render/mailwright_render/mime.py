"""A rendered message as a complete MIME message (multipart/alternative, text then HTML)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from mailwright_render.context import Sender
from mailwright_render.render import RenderedEmail

_RESERVED = frozenset(
    {"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
     "content-transfer-encoding", "reply-to"}
)  # fmt: skip


def _message_id(send_id: str, domain: str | None) -> str:
    """Derived from the send, so a re-render (a retry) carries the same Message-ID and a
    receiver that deduplicates on it sees one message; random only for previews."""
    if not send_id:
        return make_msgid(domain=domain)
    digest = hashlib.sha256(send_id.encode()).hexdigest()[:32]
    return f"<{digest}@{domain or 'mailwright.invalid'}>"


def to_mime(
    rendered: RenderedEmail,
    sender: Sender,
    to: str,
    *,
    to_name: str = "",
    message_id: str | None = None,
    date: datetime | None = None,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> EmailMessage:
    """Build the message: From, To, Subject, Date, Message-ID, List-Unsubscribe, parts.

    Both parts are UTF-8 and quoted-printable, so long HTML lines survive SMTP's line
    limit; headers are encoded per RFC 2047 where needed. `extra_headers` may not
    replace the structural ones.
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=sender.name, addr_spec=sender.email)
    message["To"] = Address(display_name=to_name, addr_spec=to)
    if sender.reply_to:
        message["Reply-To"] = sender.reply_to
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date or datetime.now(UTC))
    domain = sender.email.rpartition("@")[2] or None
    message["Message-ID"] = message_id or _message_id(rendered.send_id, domain)
    for name, value in (*rendered.headers, *extra_headers):
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name!r} cannot be set as an extra header")
        message[name] = value
    message.set_content(rendered.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message
