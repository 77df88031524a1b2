"""HubSpot as an email provider: the marketing single-send API.

HubSpot sends emails it holds as templates; Mailwright renders its own. The connector
sends through one HubSpot email (`email_id`) whose subject and body are placeholders for
custom properties, and passes the rendered message in them:

    subject: {{ custom.mailwright_subject }}
    body:    {{ custom.mailwright_html }}

`POST /marketing/v4/email/single-send` (the current marketing single-send API; Marketing
Hub Enterprise, scope `marketing-email`) or, with `email_endpoint: transactional`,
`POST /marketing/v3/transactional/single-email/send` (the transactional email add-on).
Both take `{"emailId", "message": {"to", "from", "sendId"}, "customProperties"}` and
answer `{"status", "statusId", "sendResult"?}`. `sendId` is derived from the send's
idempotency key: HubSpot sends at most one email per `sendId` per account, so a retry
cannot send twice (it answers `IDEMPOTENT_IGNORE`). The provider message id is
`statusId`. There is no batch endpoint: `send_batch` sends one by one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from mailwright.connectors import (
    ErrorKind,
    OutboundMessage,
    ProviderError,
    RateLimit,
    SendOutcome,
)
from mailwright_hubspot.client import HubSpotHttp
from mailwright_hubspot.config import EMAIL_ENDPOINTS, HubSpotConfig

log = logging.getLogger(__name__)

SENT = frozenset({"SENT", "QUEUED", "IDEMPOTENT_IGNORE"})

# HubSpot's `sendResult` values (EmailSendStatusView) by what Mailwright does about them.
SEND_RESULTS: Mapping[ErrorKind, frozenset[str]] = {
    ErrorKind.HARD_BOUNCE: frozenset(
        {"PREVIOUSLY_BOUNCED", "INVALID_TO_ADDRESS", "QUARANTINED_ADDRESS", "UNDELIVERABLE"}
    ),
    ErrorKind.REJECTED: frozenset(
        {
            "BLOCKED_DOMAIN",
            "BLOCKED_ADDRESS",
            "PREVIOUS_SPAM",
            "PREVIOUSLY_UNSUBSCRIBED_MESSAGE",
            "PREVIOUSLY_UNSUBSCRIBED_PORTAL",
            "PREVIOUSLY_UNSUBSCRIBED_BRAND",
            "PREVIOUSLY_UNSUBSCRIBED_BUSINESS_UNIT",
            "ADDRESS_OPTED_OUT",
            "ADDRESS_LIST_BOMBED",
            "GRAYMAIL_SUPPRESSED",
            "RECIPIENT_FATIGUE_SUPPRESSED",
            "BRAND_RECIPIENT_FATIGUE_SUPPRESSED",
            "NON_MARKETABLE_CONTACT",
            "GDPR_DOI_ENABLED",
            "LOW_CONTACT_QUALITY_SCORE",
            "EMAIL_UNCONFIRMED",
            "CAMPAIGN_CANCELLED",
            "CANCELLED_ABUSE",
            "MTA_IGNORE",
            "ADDRESS_ONLY_ACCEPTED_ON_PROD",
            "IDEMPOTENT_FAIL",
            "MARKETING_ACTIVATION_DISALLOWED",
        }
    ),
    ErrorKind.RATE_LIMITED: frozenset({"THROTTLED", "PORTAL_OVER_LIMIT"}),
    ErrorKind.AUTH: frozenset(
        {
            "PORTAL_SUSPENDED",
            "PORTAL_EXPIRED",
            "PORTAL_MISSING_MARKETING_SCOPE",
            "PORTAL_AUTHENTICATION_FAILURE",
            "PORTAL_NOT_AUTHORIZED_FOR_APPLICATION",
            "EMAIL_DISABLED",
            "UNCONFIGURED_SENDING_DOMAIN",
            "CONTACT_VIEW_PERMISSION",
        }
    ),
    ErrorKind.INVALID: frozenset(
        {
            "INVALID_FROM_ADDRESS",
            "VALIDATION_FAILED",
            "MISSING_TEMPLATE_PROPERTIES",
            "MISSING_REQUIRED_PARAMETER",
            "MISSING_CONTENT",
            "CORRUPT_INPUT",
            "TEMPLATE_RENDER_EXCEPTION",
            "TOO_MANY_RECIPIENTS",
            "HUBL_LIMIT_EXCEEDED",
            "INVALID_APP_ID_ATTRIBUTION",
        }
    ),
    ErrorKind.TRANSIENT: frozenset({"ATTACHMENT_DOWNLOAD_QUEUE_FULL"}),
}
KIND_OF_RESULT = {result: kind for kind, results in SEND_RESULTS.items() for result in results}


def send_id(message: OutboundMessage) -> str:
    """HubSpot's `sendId` for a message: stable per workspace and idempotency key."""
    digest = hashlib.sha256(f"{message.workspace}\x00{message.idempotency_key}".encode())
    return "mw-" + digest.hexdigest()[:40]


def refusal(result: str) -> ProviderError:
    # An unknown result is parked rather than retried: retrying what is not understood
    # could send twice or loop.
    kind = KIND_OF_RESULT.get(result, ErrorKind.REJECTED)
    return ProviderError(kind, f"HubSpot did not send: {result}", code=result)


class HubSpotEmailProvider:
    """The email provider capability, through one HubSpot email used as a frame."""

    max_batch_size = 1

    def __init__(self, config: HubSpotConfig) -> None:
        email_id = config.require("email_id", "email provider")
        self.email_id = int(email_id) if isinstance(email_id, int) else 0
        self.endpoint = EMAIL_ENDPOINTS[config.email_endpoint]
        self.client = HubSpotHttp(config, "email provider")
        self.rate_limit = RateLimit(
            per_second=config.email_rate_per_second,
            burst=max(1, int(config.email_rate_per_second)),
        )

    def request(self, message: OutboundMessage) -> dict[str, Any]:
        custom = {
            "mailwright_subject": message.subject,
            "mailwright_html": message.html or "",
            "mailwright_text": message.text or "",
            "mailwright_send_id": message.send_id,
        }
        return {
            "emailId": self.email_id,
            "message": {
                "to": message.to_address,
                "from": message.from_address,
                "sendId": send_id(message),
            },
            "customProperties": custom,
        }

    async def send(self, message: OutboundMessage) -> str:
        body = await self.client.http.post_json(self.endpoint, self.request(message))
        if not isinstance(body, Mapping) or not isinstance(body.get("statusId"), str):
            raise ProviderError(ErrorKind.TRANSIENT, "HubSpot answered without a statusId")
        result = body.get("sendResult")
        if isinstance(result, str) and result not in SENT:
            raise refusal(result)
        if body.get("status") == "CANCELED":
            raise ProviderError(ErrorKind.REJECTED, "HubSpot canceled the send", code="CANCELED")
        log.info("hubspot accepted send %s as %s", message.send_id, body["statusId"])
        return str(body["statusId"])

    async def send_batch(self, messages: Sequence[OutboundMessage]) -> Sequence[SendOutcome]:
        outcomes = []
        for message in messages:
            try:
                provider_id = await self.send(message)
            except ProviderError as error:
                if error.kind is ErrorKind.AUTH:
                    raise
                outcomes.append(SendOutcome(message.send_id, error=error))
            else:
                outcomes.append(SendOutcome(message.send_id, provider_message_id=provider_id))
        return outcomes

    async def aclose(self) -> None:
        await self.client.aclose()
