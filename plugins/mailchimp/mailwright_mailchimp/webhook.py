"""Mailchimp audience webhooks: form-encoded, unsigned, authenticated by a secret URL.

Mailchimp POSTs `application/x-www-form-urlencoded` bodies — `type` (`subscribe`,
`unsubscribe`, `profile`, `upemail`, `cleaned`, `campaign`), `fired_at`
(`YYYY-MM-DD HH:MM:SS`, GMT) and `data[...]` fields (`data[email]`, `data[list_id]`,
`data[merges][FNAME]`, …) — and signs nothing. The webhook is therefore registered at a
URL carrying a secret:

    https://<mailwright>/webhooks/mailchimp/<workspace>?secret=<webhook_secret>

and `verify` compares that query parameter with `webhook_secret` in constant time
(missing, different or repeated: `FORGED`). The body itself is protected by TLS alone,
so serve the edge over https. When a webhook is created Mailchimp checks the URL with a
GET (and some accounts with an empty POST): with the right secret it is accepted as a
`validation` delivery that yields no events, so the edge answers 200.

Mailchimp gives no delivery id; a retry sends the same body, so the delivery id is a
hash of the body, and events' message ids derive from it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import RejectReason, WebhookDelivery, WebhookRejected, WebhookRequest
from mailwright_mailchimp.config import MARKETING, MailchimpConfig
from mailwright_mailchimp.events import PayloadError, email_of, fired_at, identify, track

MAX_BODY = 256 * 1024
MAX_FIELDS = 500
VALIDATION = "validation"
TOPICS = frozenset({"subscribe", "unsubscribe", "profile", "upemail", "cleaned", "campaign"})


def form(body: bytes) -> dict[str, str]:
    """A form-encoded body as a flat mapping (`data[merges][FNAME]` → value)."""
    if len(body) > MAX_BODY:
        raise WebhookRejected(RejectReason.MALFORMED, f"body is larger than {MAX_BODY} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected(RejectReason.MALFORMED, "body is not a readable form") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise WebhookRejected(RejectReason.MALFORMED, f"field {key[:40]!r} sent twice")
        fields[key] = value
    return fields


class MailchimpWebhook:
    """The webhook capability for one Mailchimp audience (or several, same secret)."""

    def __init__(self, config: MailchimpConfig) -> None:
        self.config = config
        self._secret = config.secret("webhook").encode()
        self._parameter = config.webhook_secret_parameter

    def _check_secret(self, request: WebhookRequest) -> None:
        query = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
        given = [value for key, value in query if key == self._parameter]
        if not given:
            raise WebhookRejected(RejectReason.FORGED, f"no {self._parameter} in the URL")
        if len(given) > 1:
            raise WebhookRejected(RejectReason.FORGED, f"{self._parameter} given twice")
        if not hmac.compare_digest(given[0].encode(), self._secret):
            raise WebhookRejected(RejectReason.FORGED, f"{self._parameter} does not match")

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        self._check_secret(request)
        method = request.method.upper()
        if method in ("GET", "HEAD") or (method == "POST" and not request.body.strip()):
            return WebhookDelivery(f"{MARKETING}:{VALIDATION}", VALIDATION)
        if method != "POST":
            raise WebhookRejected(RejectReason.MALFORMED, f"method {method} is not POST")
        fields = form(request.body)
        topic = fields.get("type", "")
        if not topic:
            raise WebhookRejected(RejectReason.MALFORMED, "type: missing")
        digest = hashlib.sha256(request.body).hexdigest()[:48]
        return WebhookDelivery(f"{MARKETING}:{digest}", topic[:64])

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        if delivery.topic == VALIDATION:
            return []
        fields = form(request.body)
        key = delivery.delivery_id.rsplit(":", 1)[-1]
        try:
            return self._events(fields, key)
        except PayloadError as error:
            raise WebhookRejected(RejectReason.MALFORMED, str(error)) from None

    def _events(self, fields: dict[str, str], key: str) -> list[Event]:
        topic = fields.get("type", "")
        if topic not in TOPICS or topic == "campaign":
            return []  # acknowledged: a campaign event concerns no person
        when = fired_at(fields.get("fired_at"))
        data = {k[5:-1]: v for k, v in fields.items() if k.startswith("data[") and k.endswith("]")}
        list_id = data.get("list_id")
        message = f"{MARKETING}:webhook:{key}"
        if topic == "upemail":
            old = email_of(data.get("old_email"), "data[old_email]")
            new = email_of(data.get("new_email"), "data[new_email]")
            event = identify(f"{message}:identify", MARKETING, new, when, {"email": new})
            event.identities.add(type="email", value=old)
            return [event]
        email = email_of(data.get("email") or data.get("merges][EMAIL"), "data[email]")
        props: dict[str, Any] = {"list_id": list_id, "provider": MARKETING}
        if topic in ("subscribe", "profile"):
            traits: dict[str, Any] = {"email": email}
            for tag, trait in self.config.traits_by_tag.items():
                value = data.get(f"merges][{tag}")
                if value is not None:
                    traits[trait] = value
            events = [identify(f"{message}:identify", MARKETING, email, when, traits)]
            if topic == "subscribe":
                events.append(
                    track(f"{message}:track", MARKETING, email, when, "Email Subscribed", props)
                )
            return events
        props["campaign_id"] = data.get("campaign_id") or None
        props["reason"] = data.get("reason") or None
        if topic == "unsubscribe":
            props["action"] = data.get("action") or None
            name = "Email Unsubscribed"
        elif data.get("reason") == "abuse":
            name = "Email Marked as Spam"
        else:
            props["bounce_type"] = "hard"
            name = "Email Bounced"
        return [track(f"{message}:track", MARKETING, email, when, name, props)]

    async def aclose(self) -> None:
        return None


def webhook_url(base: str, secret: str, parameter: str = "secret") -> str:
    """The URL to register with Mailchimp: `base` with the secret as a query parameter."""
    separator = "&" if urlsplit(base).query else "?"
    return f"{base}{separator}{urlencode({parameter: secret})}"
