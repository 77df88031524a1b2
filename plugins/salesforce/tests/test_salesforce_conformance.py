"""The Salesforce connector passes the kit's source and audience sync suites."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from mailwright.connectors import AudienceMember, AudienceSync, Source
from mailwright.testing.conformance import (
    AudienceHarness,
    AudienceSyncConformance,
    SourceConformance,
    SourceHarness,
)
from mailwright.testing.fakes import FakeServer, Fault
from mailwright_salesforce.audience import SalesforceAudienceSync
from mailwright_salesforce.config import SalesforceConfig
from mailwright_salesforce.fake import FakeSalesforce
from mailwright_salesforce.source import SalesforceSource

CONCURRENT = [
    {"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]


def throttle(server: FakeServer, times: int) -> None:
    # Too many long-running requests at once: Salesforce's retryable throttle.
    server.fail(Fault(403, CONCURRENT, times=times, path="/services/data"))


class SalesforceSourceHarness:
    connector = "salesforce"
    events_per_record = 1

    def __init__(
        self, fake: FakeSalesforce, server: FakeServer, config: SalesforceConfig, stream: str
    ) -> None:
        self.fake, self.server, self.config, self.stream = fake, server, config, stream
        self.sobject = "Contact" if stream == "contacts" else "Lead"
        self.page_size = config.page_size

    def open(self) -> Source:
        return SalesforceSource(self.config)

    def seed(self, count: int) -> None:
        self.fake.add(self.sobject, count)

    def change(self, count: int) -> None:
        self.fake.edit(self.sobject, count)

    def rate_limit(self, times: int) -> float | None:
        throttle(self.server, times)
        return None

    def server_error(self, times: int) -> None:
        body = [{"message": "Service Unavailable", "errorCode": "SERVER_UNAVAILABLE"}]
        self.server.fail(Fault(503, body, times=times))

    def refuse_credentials(self) -> None:
        self.fake.client_secret = "rotated"


class TestSalesforceContacts(SourceConformance):
    @pytest.fixture
    def source_harness(
        self,
        salesforce: FakeSalesforce,
        salesforce_server: FakeServer,
        salesforce_config: Callable[..., SalesforceConfig],
    ) -> SourceHarness:
        return SalesforceSourceHarness(
            salesforce, salesforce_server, salesforce_config(), "contacts"
        )


class TestSalesforceLeads(SourceConformance):
    @pytest.fixture
    def source_harness(
        self,
        salesforce: FakeSalesforce,
        salesforce_server: FakeServer,
        salesforce_config: Callable[..., SalesforceConfig],
    ) -> SourceHarness:
        return SalesforceSourceHarness(salesforce, salesforce_server, salesforce_config(), "leads")


class SalesforceAudienceHarness:
    def __init__(self, fake: FakeSalesforce, server: FakeServer, config: SalesforceConfig) -> None:
        self.fake, self.server, self.config = fake, server, config

    def open(self) -> AudienceSync:
        return SalesforceAudienceSync(self.config)

    def member(self, n: int) -> AudienceMember:
        return AudienceMember(
            profile_id=f"p{n}",
            email=f"Person{n}@Example.com",
            traits={"first_name": f"Ada{n}", "last_name": "Lovelace"},
        )

    def unsyncable_member(self) -> AudienceMember | None:
        # Salesforce requires a contact's LastName.
        return AudienceMember(profile_id="p-nameless", email="x@example.com", traits={})

    def key(self, member: AudienceMember) -> str:
        return member.profile_id

    def members_of(self, segment_id: str, segment_name: str) -> set[str]:
        campaign = self.fake.campaign_named(f"Mailwright: {segment_name}")
        if campaign is None:
            return set()
        contacts = self.fake.records["Contact"]
        return {
            contacts[m["ContactId"]][self.fake.external_id_field]
            for m in self.fake.members_of(campaign["Id"])
        }

    def traits_of(self, member: AudienceMember) -> Mapping[str, Any]:
        contact = self.fake.contact_by_external_id(member.profile_id)
        assert contact is not None
        return {"first_name": contact.get("FirstName"), "last_name": contact.get("LastName")}

    def snapshot(self) -> object:
        skip = {"SystemModstamp", "LastModifiedDate", "CreatedDate"}
        return {
            sobject: {rid: {k: v for k, v in r.items() if k not in skip} for rid, r in rows.items()}
            for sobject, rows in self.fake.records.items()
        }

    def rate_limit(self, times: int) -> float | None:
        throttle(self.server, times)
        return None

    def refuse_credentials(self) -> None:
        self.fake.client_secret = "rotated"


class TestSalesforceAudience(AudienceSyncConformance):
    @pytest.fixture
    def audience_harness(
        self,
        salesforce: FakeSalesforce,
        salesforce_server: FakeServer,
        salesforce_config: Callable[..., SalesforceConfig],
    ) -> AudienceHarness:
        return SalesforceAudienceHarness(salesforce, salesforce_server, salesforce_config())
