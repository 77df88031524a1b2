"""The HubSpot connector passes the kit's four conformance suites."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from mailwright.connectors import (
    AudienceMember,
    AudienceSync,
    EmailProvider,
    ErrorKind,
    OutboundMessage,
    Source,
    Webhook,
    WebhookRequest,
)
from mailwright.testing.conformance import (
    AudienceHarness,
    AudienceSyncConformance,
    EmailHarness,
    EmailProviderConformance,
    ErrorCase,
    SourceConformance,
    SourceHarness,
    WebhookConformance,
    WebhookHarness,
)
from mailwright.testing.fakes import FakeServer, Fault
from mailwright.testing.webhooks import webhook_request
from mailwright_hubspot.audience import HubSpotAudienceSync
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.email import HubSpotEmailProvider
from mailwright_hubspot.fake import FakeHubSpot, rate_limited
from mailwright_hubspot.source import HubSpotSource
from mailwright_hubspot.webhook import HubSpotWebhook

MakeConfig = Callable[..., HubSpotConfig]
RETRY_AFTER = 3.0
URL = "https://mailwright.example/webhooks/hubspot/acme"


def throttle(server: FakeServer, times: int) -> float:
    body = rate_limited("TEN_SECONDLY_ROLLING").body
    server.fail(Fault(429, bytes(body), {"Retry-After": f"{RETRY_AFTER:g}"}, times=times))
    return RETRY_AFTER


def outage(server: FakeServer, times: int) -> None:
    body = {"status": "error", "message": "Service Unavailable", "category": "SERVICE_UNAVAILABLE"}
    server.fail(Fault(503, body, times=times))


class HubSpotSourceHarness:
    connector = "hubspot"
    stream = "contacts"
    events_per_record = 1

    def __init__(self, fake: FakeHubSpot, server: FakeServer, config: HubSpotConfig) -> None:
        self.fake, self.server, self.config = fake, server, config
        self.page_size = config.page_size

    def open(self) -> Source:
        return HubSpotSource(self.config)

    def seed(self, count: int) -> None:
        self.fake.add_contacts(count)

    def change(self, count: int) -> None:
        self.fake.edit_contacts(count)

    def rate_limit(self, times: int) -> float | None:
        return throttle(self.server, times)

    def server_error(self, times: int) -> None:
        outage(self.server, times)

    def refuse_credentials(self) -> None:
        self.fake.token = "pat-na1-revoked"


class TestHubSpotContacts(SourceConformance):
    @pytest.fixture
    def source_harness(
        self, hubspot: FakeHubSpot, hubspot_server: FakeServer, make_config: MakeConfig
    ) -> SourceHarness:
        return HubSpotSourceHarness(hubspot, hubspot_server, make_config())


class HubSpotWebhookHarness:
    connector = "hubspot"
    signature_headers = ("X-HubSpot-Signature-v3", "X-HubSpot-Signature")
    window = timedelta(minutes=5)

    def __init__(self, fake: FakeHubSpot, config: HubSpotConfig) -> None:
        self.fake, self.config = fake, config

    def open(self) -> Webhook:
        return HubSpotWebhook(self.config)

    def sample_body(self, n: int = 0) -> bytes:
        events = self.fake.webhook_events(2, first_event_id=1000 + 10 * n)
        body, _ = self.fake.delivery(events, url=URL, timestamp=datetime.now())
        return body

    def sign(
        self,
        body: bytes,
        *,
        signed_at: datetime,
        received_at: datetime,
        secret: str | None = None,
    ) -> WebhookRequest:
        headers = self.fake.sign(body, url=URL, timestamp=signed_at, secret=secret)
        return webhook_request(body, headers, url=URL, received_at=received_at)

    def redeliver(self, request: WebhookRequest, *, at: datetime) -> WebhookRequest:
        # HubSpot retries with the same events, attemptNumber + 1, signed anew.
        events = [dict(e, attemptNumber=e["attemptNumber"] + 1) for e in json.loads(request.body)]
        body = json.dumps(events).encode()
        headers = self.fake.sign(body, url=URL, timestamp=at)
        return webhook_request(body, headers, url=URL, received_at=at)


class TestHubSpotWebhook(WebhookConformance):
    @pytest.fixture
    def webhook_harness(self, hubspot: FakeHubSpot, make_config: MakeConfig) -> WebhookHarness:
        return HubSpotWebhookHarness(hubspot, make_config(base_url="https://api.hubapi.com"))


class HubSpotAudienceHarness:
    def __init__(self, fake: FakeHubSpot, server: FakeServer, config: HubSpotConfig) -> None:
        self.fake, self.server, self.config = fake, server, config

    def open(self) -> AudienceSync:
        return HubSpotAudienceSync(self.config)

    def member(self, n: int) -> AudienceMember:
        return AudienceMember(
            profile_id=f"p{n}",
            email=f"Person{n}@Example.com",
            traits={"first_name": f"Ada{n}", "city": "Paris"},
        )

    def unsyncable_member(self) -> AudienceMember | None:
        return AudienceMember(profile_id="p-nobody", traits={"first_name": "Nobody"})

    def key(self, member: AudienceMember) -> str:
        return (member.email or "").lower()

    def members_of(self, segment_id: str, segment_name: str) -> set[str]:
        found = self.fake.list_named(f"Mailwright: {segment_name} [{segment_id}]")
        if found is None:
            return set()
        return {self.fake.contacts[i]["properties"]["email"] for i in found["members"]}

    def traits_of(self, member: AudienceMember) -> Mapping[str, Any]:
        contact = self.fake.by_email(member.email or "")
        assert contact is not None
        props = contact["properties"]
        return {"first_name": props.get("firstname"), "city": props.get("city")}

    def snapshot(self) -> object:
        contacts = {
            cid: {k: v for k, v in c["properties"].items() if k != "lastmodifieddate"}
            for cid, c in self.fake.contacts.items()
        }
        lists = {
            lid: (lst["name"], frozenset(lst["members"])) for lid, lst in self.fake.lists.items()
        }
        return contacts, lists

    def rate_limit(self, times: int) -> float | None:
        return throttle(self.server, times)

    def refuse_credentials(self) -> None:
        self.fake.token = "pat-na1-revoked"


class TestHubSpotAudience(AudienceSyncConformance):
    @pytest.fixture
    def audience_harness(
        self, hubspot: FakeHubSpot, hubspot_server: FakeServer, make_config: MakeConfig
    ) -> AudienceHarness:
        return HubSpotAudienceHarness(hubspot, hubspot_server, make_config())


class HubSpotEmailHarness:
    deduplicates = True

    def __init__(self, fake: FakeHubSpot, server: FakeServer, config: HubSpotConfig) -> None:
        self.fake, self.server, self.config = fake, server, config

    def open(self) -> EmailProvider:
        return HubSpotEmailProvider(self.config)

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
        return len(self.fake.sends)

    def error_cases(self) -> Sequence[ErrorCase]:
        def refuse(result: str) -> Callable[[OutboundMessage], None]:
            return lambda message: self.fake.refuse(message.to_address, result)

        def malformed(message: OutboundMessage) -> None:
            self.fake.refuse_request(message.to_address)

        return [
            ErrorCase("previously bounced", ErrorKind.HARD_BOUNCE, refuse("PREVIOUSLY_BOUNCED")),
            ErrorCase("invalid recipient", ErrorKind.HARD_BOUNCE, refuse("INVALID_TO_ADDRESS")),
            ErrorCase("unsubscribed", ErrorKind.REJECTED, refuse("PREVIOUSLY_UNSUBSCRIBED_PORTAL")),
            ErrorCase("spam report", ErrorKind.REJECTED, refuse("PREVIOUS_SPAM")),
            ErrorCase("over the send limit", ErrorKind.RATE_LIMITED, refuse("PORTAL_OVER_LIMIT")),
            ErrorCase("suspended account", ErrorKind.AUTH, refuse("PORTAL_SUSPENDED")),
            ErrorCase(
                "template properties", ErrorKind.INVALID, refuse("MISSING_TEMPLATE_PROPERTIES")
            ),
            ErrorCase("400 VALIDATION_ERROR", ErrorKind.INVALID, malformed),
        ]

    def rate_limit(self, times: int) -> float | None:
        return throttle(self.server, times)

    def server_error(self, times: int) -> None:
        outage(self.server, times)

    def refuse_credentials(self) -> None:
        self.fake.token = "pat-na1-revoked"


class TestHubSpotEmail(EmailProviderConformance):
    @pytest.fixture
    def email_harness(
        self, hubspot: FakeHubSpot, hubspot_server: FakeServer, make_config: MakeConfig
    ) -> EmailHarness:
        return HubSpotEmailHarness(hubspot, hubspot_server, make_config())
