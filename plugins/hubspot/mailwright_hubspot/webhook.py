"""HubSpot webhooks: signature v3 (or v1/v2), a five-minute window, events per contact.

**v3** — `X-HubSpot-Signature-v3` is the base64 HMAC-SHA256, keyed with the app's client
secret, of `method + URI + body + timestamp`, the timestamp being
`X-HubSpot-Request-Timestamp` (epoch milliseconds). A timestamp more than
`signature_window` (five minutes) from the time of receipt is `STALE`. HubSpot's
documentation decodes a few URL-encoded characters of the URI before signing; both the URI
as received and the decoded one are tried. When a request carries a v3 signature, only v3
counts (no downgrade to the older, timestamp-less versions).

**v1 / v2** — `X-HubSpot-Signature` with `X-HubSpot-Signature-Version`: the hex SHA-256
of `client secret + body` (v1, CRM object webhooks) or `client secret + method + URI +
body` (v2). Accepted only when `allow_legacy_signatures` is on and no v3 signature came.

The body is a JSON array of up to 100 events (`eventId`, `subscriptionId`, `portalId`,
`occurredAt`, `subscriptionType`, `attemptNumber`, `objectId`, …). A retry resends the
same events with a higher `attemptNumber` (another body, another signature), so the
delivery id is a hash of the events' (portal, subscription, event) ids, not of the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mailwright.common.v1.event_pb2 import Event
from mailwright.connectors import (
    RejectReason,
    WebhookDelivery,
    WebhookRejected,
    WebhookRequest,
)
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.events import ContactError, webhook_event

log = logging.getLogger(__name__)

SIGNATURE_V3 = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
SIGNATURE = "X-HubSpot-Signature"
VERSION = "X-HubSpot-Signature-Version"
MAX_EVENTS = 100

# HubSpot decodes these in the request URI before computing a v3 signature.
DECODED_IN_URI = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def decode_uri(uri: str) -> str:
    for encoded, plain in DECODED_IN_URI.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    return uri


def _single(request: WebhookRequest, name: str) -> str | None:
    values = request.headers.get_all(name)
    if len(values) > 1:
        raise WebhookRejected(RejectReason.FORGED, f"{name} sent {len(values)} times")
    return values[0].strip() if values else None


class HubSpotWebhook:
    """The webhook capability for one HubSpot app (and, if configured, one account)."""

    def __init__(self, config: HubSpotConfig) -> None:
        secret = config.require("client_secret", "webhook")
        assert not isinstance(secret, int)
        self.config = config
        self._secret = secret.get_secret_value().encode()
        # verify and then parse read the same body: keep its events from one to the other.
        self._last: tuple[bytes, list[Mapping[str, Any]]] | None = None

    def uris(self, request: WebhookRequest) -> list[str]:
        """The URIs HubSpot may have signed: as called (behind a proxy: at `public_url`)."""
        url = request.url
        if self.config.public_url is not None:
            public = urlsplit(self.config.public_url)
            called = urlsplit(url)
            url = urlunsplit((public.scheme, public.netloc, called.path, called.query, ""))
        return list(dict.fromkeys([url, decode_uri(url)]))

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        signature = _single(request, SIGNATURE_V3)
        if signature is not None:
            self._verify_v3(request, signature)
        else:
            self._verify_legacy(request)
        return self._delivery(request)

    def _verify_v3(self, request: WebhookRequest, signature: str) -> None:
        stamp = _single(request, TIMESTAMP)
        if stamp is None or not stamp.isdigit() or len(stamp) > 15:
            raise WebhookRejected(RejectReason.FORGED, f"{TIMESTAMP} missing or not a number")
        signed_at = datetime.fromtimestamp(int(stamp) / 1000, UTC)
        if abs(request.received_at - signed_at) > self.config.signature_window:
            raise WebhookRejected(
                RejectReason.STALE,
                f"signed at {signed_at.isoformat()}, outside the "
                f"{self.config.signature_window} window",
            )
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected(RejectReason.FORGED, f"{SIGNATURE_V3} is not base64") from None
        method = request.method.upper().encode()
        digests = [
            hmac.new(
                self._secret, method + uri.encode() + request.body + stamp.encode(), hashlib.sha256
            ).digest()
            for uri in self.uris(request)
        ]
        if not any([hmac.compare_digest(given, digest) for digest in digests]):
            raise WebhookRejected(RejectReason.FORGED, "v3 signature does not match the request")

    def _verify_legacy(self, request: WebhookRequest) -> None:
        signature = _single(request, SIGNATURE)
        if signature is None:
            raise WebhookRejected(RejectReason.FORGED, f"no {SIGNATURE_V3} or {SIGNATURE} header")
        if not self.config.allow_legacy_signatures:
            raise WebhookRejected(RejectReason.FORGED, "only v3 signatures are accepted")
        version = (_single(request, VERSION) or "v1").lower()
        method = request.method.upper().encode()
        if version == "v1":
            sources = [self._secret + request.body]
        elif version == "v2":
            sources = [
                self._secret + method + uri.encode() + request.body for uri in self.uris(request)
            ]
        else:
            raise WebhookRejected(RejectReason.FORGED, f"unknown signature version {version!r}")
        given = signature.lower().encode()
        digests = [hashlib.sha256(source).hexdigest().encode() for source in sources]
        if not any([hmac.compare_digest(given, digest) for digest in digests]):
            raise WebhookRejected(RejectReason.FORGED, f"{version} signature does not match")

    def _items(self, request: WebhookRequest) -> list[Mapping[str, Any]]:
        if self._last is not None and self._last[0] is request.body:
            return self._last[1]
        try:
            payload: Any = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRejected(RejectReason.MALFORMED, "body is not JSON") from None
        if isinstance(payload, Mapping):
            payload = [payload]
        if not isinstance(payload, list) or not payload:
            raise WebhookRejected(RejectReason.MALFORMED, "body is not a list of events")
        if len(payload) > MAX_EVENTS:
            raise WebhookRejected(RejectReason.MALFORMED, f"more than {MAX_EVENTS} events")
        if not all(isinstance(item, Mapping) for item in payload):
            raise WebhookRejected(RejectReason.MALFORMED, "an event is not an object")
        self._last = (request.body, payload)
        return payload

    def _delivery(self, request: WebhookRequest) -> WebhookDelivery:
        keys = []
        topics = []
        for n, item in enumerate(self._items(request)):
            ids = [item.get(name) for name in ("portalId", "subscriptionId", "eventId")]
            if not all(isinstance(i, int | str) and str(i).isdigit() for i in ids):
                raise WebhookRejected(RejectReason.MALFORMED, f"event {n} lacks its ids")
            portal = int(str(ids[0]))
            if self.config.portal_id is not None and portal != self.config.portal_id:
                raise WebhookRejected(RejectReason.FORGED, f"event {n} is of another account")
            keys.append(":".join(str(i) for i in ids))
            topics.append(str(item.get("subscriptionType", "")))
        digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
        topic = topics[0] if len(set(topics)) == 1 else "batch"
        return WebhookDelivery(f"hubspot:{digest[:48]}", topic[:64])

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        events = []
        for n, item in enumerate(self._items(request)):
            try:
                event = webhook_event(item, self.config.properties)
            except ContactError as error:
                raise WebhookRejected(RejectReason.MALFORMED, f"event {n}: {error}") from None
            if event is not None:
                events.append(event)
        return events

    async def aclose(self) -> None:
        return None
