"""Bounce and complaint reports POSTed to ingest, as email events (the webhook capability).

A mail server's pipe (Postfix `pipe` running `curl --data-binary @-`) or an inbound-mail
forwarder POSTs each message that reaches the bounce mailbox (`envelope_from`) to
`/webhooks/smtp/{workspace}`: the body is the raw message, `Content-Type:
message/rfc822`, authenticated with the connector's `webhook_secret` as `Authorization:
Bearer <secret>` (or as the password of HTTP Basic, for forwarders that only take a URL
with credentials). The delivery id is the report's own Message-ID (a hash of the body when
it has none), so a pipe that retries the same report is answered `duplicate`.

- delivery status notification → one `Email Bounced` per recipient whose `Action` is
  `failed` (`bounce_type` hard, or soft where the SMTP reply table says so: 5.2.2 mailbox
  full); delayed (a warning: the server keeps trying), delivered, relayed and expanded
  recipients are ignored;
- feedback report of type abuse, fraud or virus → `Email Marked as Spam`;
- a report whose original headers carry no `X-Mailwright-Send` is acknowledged and yields
  nothing: delivery applies bounces and complaints to a send (its own address, its
  suppression), and the event taxonomy requires `send_id` on `Email Bounced`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Sequence
from datetime import datetime
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from google.protobuf import struct_pb2

from mailwright.common.v1.common_pb2 import Identity
from mailwright.common.v1.event_pb2 import EVENT_TYPE_TRACK, Event
from mailwright.connectors import RejectReason, WebhookDelivery, WebhookRejected, WebhookRequest
from mailwright_smtp.config import SmtpConfig
from mailwright_smtp.message import SEND_HEADER
from mailwright_smtp.reports import (
    COMPLAINT_TYPES,
    DELIVERY_STATUS,
    Failure,
    Report,
    ReportError,
    read_report,
)

log = logging.getLogger(__name__)

SOURCE = "smtp"
# What a pipe or forwarder may call a raw message; curl without -H says form-urlencoded.
_CONTENT_TYPES = frozenset({"message/rfc822", "application/octet-stream", "text/plain", ""})


class SmtpReportWebhook:
    """The webhook capability of the `smtp` connector: reports by email, as events."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._secret = config.report_secret()

    async def verify(self, request: WebhookRequest) -> WebhookDelivery:
        self._authenticate(request)
        if request.method.upper() != "POST":
            raise WebhookRejected(RejectReason.MALFORMED, "a report is POSTed")
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type not in _CONTENT_TYPES:
            raise WebhookRejected(
                RejectReason.MALFORMED,
                f"Content-Type {content_type[:60]!r}: send the raw message as message/rfc822",
            )
        if not request.body.strip():
            raise WebhookRejected(RejectReason.MALFORMED, "empty body: no report")
        if len(request.body) > self.config.report_max_bytes:
            raise WebhookRejected(
                RejectReason.MALFORMED,
                f"report of {len(request.body)} bytes is over report_max_bytes "
                f"({self.config.report_max_bytes})",
            )
        head = BytesHeaderParser(policy=policy.default).parsebytes(request.body)
        own_id = str(head.get("Message-ID", "") or "").strip().strip("<>").strip()
        delivery_id = own_id[:200] or "sha256:" + hashlib.sha256(request.body).hexdigest()
        kind = str(head.get_param("report-type", "", header="content-type") or "")
        return WebhookDelivery(f"{SOURCE}:{delivery_id}", kind.strip().lower()[:64] or "message")

    def _authenticate(self, request: WebhookRequest) -> None:
        values = request.headers.get_all("authorization")
        if not values:
            raise WebhookRejected(RejectReason.FORGED, "no Authorization header")
        if len(values) > 1:
            raise WebhookRejected(RejectReason.FORGED, f"Authorization sent {len(values)} times")
        scheme, _, credentials = values[0].strip().partition(" ")
        given = credentials.strip().encode()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(given, validate=True)
            except (binascii.Error, ValueError):
                raise WebhookRejected(RejectReason.FORGED, "Basic credentials not base64") from None
            given = decoded.partition(b":")[2]
        elif scheme.lower() != "bearer":
            raise WebhookRejected(RejectReason.FORGED, "Authorization is not Bearer or Basic")
        if not hmac.compare_digest(given, self._secret):
            raise WebhookRejected(RejectReason.FORGED, "the secret does not match")

    def parse(self, request: WebhookRequest, delivery: WebhookDelivery) -> Sequence[Event]:
        try:
            report = read_report(request.body)
        except ReportError as error:
            raise WebhookRejected(RejectReason.MALFORMED, str(error)) from None
        if not report.original.send_id:
            log.info(
                "report %s names no send (no %s in its original headers); ignored",
                delivery.delivery_id[:80],
                SEND_HEADER,
            )
            return []
        when = _when(report.written_at, request.received_at)
        if report.kind == DELIVERY_STATUS:
            return [
                self._bounce(delivery, report, failure, when, n)
                for n, failure in enumerate(report.failures)
            ]
        if report.feedback_type not in COMPLAINT_TYPES:
            return []
        props = {
            "feedback_type": report.feedback_type,
            "reporter": report.reporter or None,
        }
        return [
            _event(delivery, report, "Email Marked as Spam", report.complainant, when, 0, props)
        ]

    def _bounce(
        self, delivery: WebhookDelivery, report: Report, failure: Failure, when: datetime, n: int
    ) -> Event:
        props = {
            "bounce_type": failure.bounce_type,
            "status": failure.status,
            "action": failure.action,
            "reason": failure.diagnostic or f"status {failure.status}",
        }
        return _event(delivery, report, "Email Bounced", failure.recipient, when, n, props)

    async def aclose(self) -> None:
        return None


def _event(
    delivery: WebhookDelivery,
    report: Report,
    name: str,
    recipient: str,
    when: datetime,
    n: int,
    props: dict[str, Any],
) -> Event:
    send_id = report.original.send_id
    # The person is the recipient when the report names one (feedback loops often
    # withhold it); delivery finds the send, and with it the address, by `send_id`.
    person = hashlib.sha256((recipient or f"send:{send_id}").encode()).hexdigest()[:40]
    properties = struct_pb2.Struct()
    properties.update(
        {
            "send_id": send_id,
            "provider": SOURCE,
            **(
                {"provider_message_id": report.original.message_id}
                if report.original.message_id
                else {}
            ),
            **{key: value for key, value in props.items() if value is not None},
        }
    )
    event = Event(
        type=EVENT_TYPE_TRACK,
        event=name,
        message_id=f"{delivery.delivery_id[:200]}:{n}",
        anonymous_id=f"{SOURCE}:recipient:{person}",
        identities=[Identity(type="email", value=recipient)] if recipient else [],
        properties=properties,
        source=SOURCE,
    )
    event.timestamp.FromDatetime(when)
    return event


def _when(written_at: datetime | None, received_at: datetime) -> datetime:
    """When the report was written (its Date), unless missing or later than its arrival."""
    if written_at is None or written_at > received_at:
        return received_at
    return written_at
