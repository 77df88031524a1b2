"""Both Mailchimp connectors pass the kit's conformance suites of their capabilities."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from mailwright.connectors import (
    AudienceMember,
    AudienceSync,
    EmailProvider,
    ErrorKind,
    OutboundMessage,
    Webhook,
    WebhookRequest,
)
from mailwright.testing.conformance import (
    AudienceHarness,
    AudienceSyncConformance,
    EmailHarness,
    EmailProviderConformance,
    ErrorCase,
    WebhookConformance,
    WebhookHarness,
)
from mailwright.testing.fakes import FakeServer, Fault
from mailwright.testing.webhooks import webhook_request
from mailwright_mailchimp.audience import MailchimpAudienceSync
from mailwright_mailchimp.config import MailchimpConfig, TransactionalConfig
from mailwright_mailchimp.fake import FakeMailchimp, audience_webhook, problem
from mailwright_mailchimp.fake_transactional import FakeTransactional
from mailwright_mailchimp.transactional import TransactionalEmailProvider
from mailwright_mailchimp.transactional_webhook import TransactionalWebhook
from mailwright_mailchimp.webhook import MailchimpWebhook

WEBHOOK_SECRET = "hook-secret-0123456789abcdef"  # as the conftest configures
MANDRILL_URL = "https://mailwright.example/webhooks/mailchimp-transactional/acme"
AUDIENCE_URL = "https://mailwright.example/webhooks/mailchimp/acme"


class MailchimpAudienceHarness:
    def __init__(self, fake: FakeMailchimp, server: FakeServer, config: MailchimpConfig) -> None:
        self.fake, self.server, self.config = fake, server, config

    def open(self) -> AudienceSync:
        return MailchimpAudienceSync(self.config)

    def member(self, n: int) -> AudienceMember:
        return AudienceMember(
            profile_id=f"p{n}",
            email=f"Person{n}@Example.com",
            traits={"first_name": f"Ada{n}", "last_name": "Lovelace"},
        )

    def unsyncable_member(self) -> AudienceMember | None:
        return AudienceMember(profile_id="p-bad", email="not-an-address", traits={})

    def key(self, member: AudienceMember) -> str:
        return (member.email or "").lower()

    def members_of(self, segment_id: str, segment_name: str) -> set[str]:
        return self.fake.tagged(segment_name)

    def traits_of(self, member: AudienceMember) -> Mapping[str, Any]:
        found = self.fake.member(member.email or "")
        assert found is not None
        merges = found["merge_fields"]
        return {"first_name": merges["FNAME"], "last_name": merges["LNAME"]}

    def snapshot(self) -> object:
        return self.fake.snapshot()

    def rate_limit(self, times: int) -> float | None:
        body = problem(
            429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections."
        ).body
        self.server.fail(
            Fault(429, bytes(body), {"Content-Type": "application/problem+json"}, times=times)
        )
        return None  # Mailchimp sends no Retry-After

    def refuse_credentials(self) -> None:
        self.fake.api_key = "revoked0123456789-us21"


class TestMailchimpAudience(AudienceSyncConformance):
    @pytest.fixture
    def audience_harness(
        self,
        mailchimp: FakeMailchimp,
        mailchimp_server: FakeServer,
        marketing_config: Callable[..., MailchimpConfig],
    ) -> AudienceHarness:
        return MailchimpAudienceHarness(mailchimp, mailchimp_server, marketing_config())


class MailchimpWebhookHarness:
    connector = "mailchimp"
    signature_headers: Sequence[str] = ()
    secret_parameter = "secret"
    window = None

    def __init__(self, config: MailchimpConfig) -> None:
        self.config = config

    def open(self) -> Webhook:
        return MailchimpWebhook(self.config)

    def sample_body(self, n: int = 0) -> bytes:
        when = datetime(2026, 3, 1, 12, 0, n, tzinfo=UTC)
        return audience_webhook(
            "subscribe", f"person{n}@example.com", merges={"FNAME": f"Ada{n}"}, fired_at=when
        )

    def sign(
        self, body: bytes, *, signed_at: datetime, received_at: datetime, secret: str | None = None
    ) -> WebhookRequest:
        url = f"{AUDIENCE_URL}?{urlencode({'secret': secret or WEBHOOK_SECRET})}"
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        return webhook_request(body, headers, url=url, received_at=received_at)

    def redeliver(self, request: WebhookRequest, *, at: datetime) -> WebhookRequest:
        return webhook_request(
            request.body, request.headers.pairs(), url=request.url, received_at=at
        )


class TestMailchimpWebhook(WebhookConformance):
    @pytest.fixture
    def webhook_harness(self, marketing_config: Callable[..., MailchimpConfig]) -> WebhookHarness:
        return MailchimpWebhookHarness(
            marketing_config(base_url="https://us21.api.mailchimp.com/3.0")
        )


class TransactionalWebhookHarness:
    connector = "mailchimp-transactional"
    signature_headers = ("X-Mandrill-Signature",)
    window = timedelta(hours=24)

    def __init__(self, fake: FakeTransactional, config: TransactionalConfig) -> None:
        self.fake, self.config = fake, config

    def open(self) -> Webhook:
        return TransactionalWebhook(self.config)

    def sample_body(self, n: int = 0) -> bytes:
        events = [
            self.fake.message_event(
                "hard_bounce", f"reader{n}@example.com", message_id=f"msg-{n}", send_id=f"send-{n}"
            ),
            self.fake.message_event("open", f"reader{n}@example.com", message_id=f"msg-{n}"),
        ]
        body, _ = self.fake.delivery(events, url=MANDRILL_URL)
        return body

    def sign(
        self, body: bytes, *, signed_at: datetime, received_at: datetime, secret: str | None = None
    ) -> WebhookRequest:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
        try:
            events = json.loads(params["mandrill_events"])
        except (KeyError, ValueError):
            events = None
        if isinstance(events, list):  # Mandrill's events carry when they happened
            for event in events:
                event["ts"] = int(signed_at.timestamp())
            body = urlencode({"mandrill_events": json.dumps(events)}).encode()
        body, headers = self.fake.signed(body, url=MANDRILL_URL, key=secret)
        return webhook_request(body, headers, url=MANDRILL_URL, received_at=received_at)

    def redeliver(self, request: WebhookRequest, *, at: datetime) -> WebhookRequest:
        # Mandrill retries the same batch of events, signed again.
        body, headers = self.fake.signed(request.body, url=MANDRILL_URL)
        return webhook_request(body, headers, url=MANDRILL_URL, received_at=at)


class TestTransactionalWebhook(WebhookConformance):
    @pytest.fixture
    def webhook_harness(
        self,
        transactional: FakeTransactional,
        transactional_config: Callable[..., TransactionalConfig],
    ) -> WebhookHarness:
        config = transactional_config(base_url="https://mandrillapp.com/api/1.0")
        return TransactionalWebhookHarness(transactional, config)


class TransactionalEmailHarness:
    deduplicates = False

    def __init__(
        self, fake: FakeTransactional, server: FakeServer, config: TransactionalConfig
    ) -> None:
        self.fake, self.server, self.config = fake, server, config

    def open(self) -> EmailProvider:
        return TransactionalEmailProvider(self.config)

    def message(self, n: int) -> OutboundMessage:
        return OutboundMessage(
            send_id=f"send-{n}",
            idempotency_key=f"campaign-1:p{n}",
            from_address="Shop <news@shop.example>",
            to_address=f"reader{n}@example.com",
            subject="Your cart misses you",
            html="<p>Hello</p>",
            text="Hello",
            workspace="acme",
        )

    def accepted(self) -> int:
        return len(self.fake.sent)

    def error_cases(self) -> Sequence[ErrorCase]:
        def reject(reason: str) -> Callable[[OutboundMessage], None]:
            return lambda message: self.fake.reject(message.to_address, reason)

        def malformed(message: OutboundMessage) -> None:
            self.fake.refuse_request(message.to_address)

        return [
            ErrorCase("hard bounce", ErrorKind.HARD_BOUNCE, reject("hard-bounce")),
            ErrorCase("soft bounce", ErrorKind.SOFT_BOUNCE, reject("soft-bounce")),
            ErrorCase("spam complaint", ErrorKind.REJECTED, reject("spam")),
            ErrorCase("unsubscribed", ErrorKind.REJECTED, reject("unsub")),
            ErrorCase("custom rejection", ErrorKind.REJECTED, reject("custom")),
            ErrorCase("invalid sender", ErrorKind.REJECTED, reject("invalid-sender")),
            ErrorCase("unsigned domain", ErrorKind.REJECTED, reject("unsigned")),
            ErrorCase("rule", ErrorKind.REJECTED, reject("rule")),
            ErrorCase("test mode limit", ErrorKind.REJECTED, reject("test-mode-limit")),
            ErrorCase("invalid recipient", ErrorKind.INVALID, reject("invalid")),
            ErrorCase("ValidationError", ErrorKind.INVALID, malformed),
        ]

    def rate_limit(self, times: int) -> float | None:
        body = {
            "status": "error",
            "code": -50,
            "name": "TooManyRequests",
            "message": "Too many requests",
        }
        self.server.fail(Fault(429, body, {"Retry-After": "3"}, times=times))
        return 3.0

    def server_error(self, times: int) -> None:
        body = {
            "status": "error",
            "code": -99,
            "name": "ServiceUnavailable",
            "message": "Service temporarily unavailable",
        }
        self.server.fail(Fault(503, body, times=times))

    def refuse_credentials(self) -> None:
        self.fake.api_key = "revoked"


class TestTransactionalEmail(EmailProviderConformance):
    @pytest.fixture
    def email_harness(
        self,
        transactional: FakeTransactional,
        transactional_server: FakeServer,
        transactional_config: Callable[..., TransactionalConfig],
    ) -> EmailHarness:
        return TransactionalEmailHarness(
            transactional, transactional_server, transactional_config()
        )
