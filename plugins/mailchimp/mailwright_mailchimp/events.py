"""Mailchimp audience webhooks and Mailchimp Transactional delivery events, as events.

Audience webhooks (connector `mailchimp`):

| `type` | event |
|---|---|
| `subscribe` | identify (merge fields as traits) and track `Email Subscribed` |
| `profile` | identify (merge fields as traits) |
| `upemail` | identify with the old and the new address (one person) |
| `unsubscribe` | track `Email Unsubscribed` (`action` unsub or delete, `reason`, campaign) |
| `cleaned` | track `Email Bounced` (`reason` hard) or `Email Marked as Spam` (`abuse`) |
| `campaign` | nothing: it concerns a campaign, not a person |

Transactional (connector `mailchimp-transactional`), one event per message event:
`send` → `Email Sent`, `deferral` → `Email Deferred`, `hard_bounce` / `soft_bounce` →
`Email Bounced` (`bounce_type` hard or soft), `open` → `Email Opened`, `click` →
`Email Clicked`, `spam` → `Email Marked as Spam`, `unsub` → `Email Unsubscribed`,
`reject` → `Email Rejected`. Each carries `send_id` (from the message's metadata, put
there at send time), `provider_message_id` and `provider`.

A person is `anonymous_id = mailchimp:subscriber:<MD5 of the address>` (Mailchimp's own
subscriber hash) with the `email` identity, in both connectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_IDENTIFY, EVENT_TYPE_TRACK, Event

MESSAGE_EVENTS: Mapping[str, str] = {
    "send": "Email Sent",
    "deferral": "Email Deferred",
    "hard_bounce": "Email Bounced",
    "soft_bounce": "Email Bounced",
    "open": "Email Opened",
    "click": "Email Clicked",
    "spam": "Email Marked as Spam",
    "unsub": "Email Unsubscribed",
    "reject": "Email Rejected",
}


class PayloadError(ValueError):
    """A webhook payload that cannot be read; the message names the field."""


def person(email: str) -> str:
    digest = hashlib.md5(email.strip().lower().encode(), usedforsecurity=False).hexdigest()
    return f"mailchimp:subscriber:{digest}"


def email_of(value: object, field: str) -> str:
    if not isinstance(value, str) or "@" not in value or len(value) > 320:
        raise PayloadError(f"{field}: not an email address")
    return value.strip().lower()


def stamp(when: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(when)
    return out


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update({k: v for k, v in values.items() if v is not None})
    return out


def identities(*emails: str) -> list[Identity]:
    return [Identity(type="email", value=email) for email in dict.fromkeys(emails)]


def identify(
    message_id: str, source: str, email: str, when: datetime, traits: Mapping[str, Any]
) -> Event:
    return Event(
        type=EVENT_TYPE_IDENTIFY,
        message_id=message_id,
        anonymous_id=person(email),
        identities=identities(email),
        timestamp=stamp(when),
        traits=struct(traits),
        source=source,
    )


def track(
    message_id: str, source: str, email: str, when: datetime, name: str, props: Mapping[str, Any]
) -> Event:
    return Event(
        type=EVENT_TYPE_TRACK,
        event=name,
        message_id=message_id,
        anonymous_id=person(email),
        identities=identities(email),
        timestamp=stamp(when),
        properties=struct(props),
        source=source,
    )


def fired_at(value: object) -> datetime:
    """Mailchimp's `fired_at`: `YYYY-MM-DD HH:MM:SS`, in GMT."""
    if not isinstance(value, str):
        raise PayloadError("fired_at: missing")
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise PayloadError("fired_at: not a 'YYYY-MM-DD HH:MM:SS' time") from None


def epoch(value: object, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{field}: not a Unix time")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError, ValueError):
        raise PayloadError(f"{field}: not a Unix time") from None
