"""Salesforce specifics: logins, sessions, API usage, query locators, write paths."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, unquote

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ConnectorConfigError,
    ErrorKind,
    ProviderError,
    SyncResult,
)
from mailwright.testing.conformance import pull_all
from mailwright.testing.fakes import FakeServer, RecordedWaits
from mailwright_salesforce.audience import SalesforceAudienceSync
from mailwright_salesforce.auth import assertion
from mailwright_salesforce.client import soql_string
from mailwright_salesforce.config import SalesforceConfig
from mailwright_salesforce.fake import FakeSalesforce
from mailwright_salesforce.source import SalesforceSource, query

MakeConfig = Callable[..., SalesforceConfig]


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def pull(
    config: SalesforceConfig, stream: str = "contacts", cursor: str | None = None
) -> list[str]:
    source = SalesforceSource(config)
    try:
        return [e.message_id for b in await pull_all(source, stream, cursor) for e in b.events]
    finally:
        await source.aclose()


def change(
    added: Sequence[AudienceMember] = (), removed: Sequence[AudienceMember] = (), name: str = "VIP"
) -> AudienceChange:
    return AudienceChange("acme", "seg-1", name, uuid.uuid4().hex, tuple(added), tuple(removed))


def people(count: int) -> list[AudienceMember]:
    return [
        AudienceMember(
            f"p{n}", email=f"p{n}@example.com", traits={"first_name": f"P{n}", "last_name": "Doe"}
        )
        for n in range(count)
    ]


async def sync(config: SalesforceConfig, delta: AudienceChange) -> SyncResult:
    audience = SalesforceAudienceSync(config)
    try:
        return await audience.sync(delta)
    finally:
        await audience.aclose()


async def test_the_jwt_bearer_flow_signs_the_documented_claims(
    salesforce: FakeSalesforce,
    salesforce_server: FakeServer,
    salesforce_config: MakeConfig,
    key_pair: tuple[str, str],
    recorded_waits: RecordedWaits,
) -> None:
    private, public = key_pair
    salesforce.public_key = public
    salesforce.add("Contact", 3)
    config = salesforce_config(
        auth_flow="jwt_bearer",
        client_secret=None,
        username=salesforce.username,
        private_key=private,
    )
    assert len(await pull(config)) == 3
    form = parse_qs(salesforce_server.requests_to("/services/oauth2/token")[0].body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0], public, algorithms=["RS256"], audience=salesforce_server.url
    )
    assert (claims["iss"], claims["sub"]) == (salesforce.client_id, salesforce.username)


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme--uat.my.salesforce.com", "https://test.salesforce.com"),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
    ],
)
def test_the_jwt_audience_is_one_salesforce_documents(
    salesforce_config: MakeConfig, key_pair: tuple[str, str], login_url: str, audience: str
) -> None:
    # The aud claim must be https://login.salesforce.com, https://test.salesforce.com or
    # an Experience Cloud site's URL, even when the token is asked of a My Domain.
    private, public = key_pair
    config = salesforce_config(
        login_url=login_url,
        auth_flow="jwt_bearer",
        username="integration@acme.example",
        private_key=private,
    )
    claims = jwt.decode(assertion(config), public, algorithms=["RS256"], audience=audience)
    assert claims["aud"] == audience


async def test_a_jwt_for_another_user_is_refused_as_auth(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    key_pair: tuple[str, str],
    recorded_waits: RecordedWaits,
) -> None:
    private, public = key_pair
    salesforce.public_key = public
    config = salesforce_config(
        auth_flow="jwt_bearer", username="someone@else.example", private_key=private
    )
    with pytest.raises(ProviderError) as caught:
        await pull(config)
    assert caught.value.kind is ErrorKind.AUTH
    assert "hasn't approved" in caught.value.detail


def test_the_jwt_flow_names_the_missing_private_key(salesforce_config: MakeConfig) -> None:
    config = salesforce_config(auth_flow="jwt_bearer", username="u@example.com")
    with pytest.raises(ConnectorConfigError) as caught:
        SalesforceSource(config)
    assert "MAILWRIGHT_CONNECTOR_SALESFORCE_PRIVATE_KEY" in str(caught.value)


def test_thresholds_are_checked_together(salesforce_config: MakeConfig) -> None:
    with pytest.raises(ConnectorConfigError) as caught:
        salesforce_config(api_usage_slow=0.99, api_usage_stop=0.9)
    assert caught.value.field == "api_usage_slow"


async def test_an_expired_session_logs_in_again_once(
    salesforce: FakeSalesforce,
    salesforce_server: FakeServer,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    salesforce.add("Contact", 450)
    source = SalesforceSource(salesforce_config())
    try:
        stream = source.pull("contacts")
        first = await anext(stream)
        salesforce.expire_sessions()
        rest = [b async for b in stream]
    finally:
        await source.aclose()
    assert len(first.events) + sum(len(b.events) for b in rest) == 450
    assert salesforce.logins == 2


async def test_a_resumed_pull_whose_locator_expired_queries_again_from_its_cursor(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    salesforce.add("Contact", 500)
    source = SalesforceSource(salesforce_config())
    try:
        first = await anext(source.pull("contacts"))
    finally:
        await source.aclose()
    assert first.cursor is not None
    assert "next" in json.loads(first.cursor)
    salesforce.expire_locators()
    rest = await pull(salesforce_config(), cursor=first.cursor)
    assert len(rest) == 300
    assert not set(rest) & {e.message_id for e in first.events}


async def test_records_sharing_a_modstamp_are_neither_lost_nor_repeated(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    ids = salesforce.add("Contact", 3)
    same = salesforce.records["Contact"][ids[0]]["SystemModstamp"]
    for record_id in ids:
        salesforce.records["Contact"][record_id]["SystemModstamp"] = same
    source = SalesforceSource(salesforce_config())
    try:
        batches = await pull_all(source, "contacts")
    finally:
        await source.aclose()
    extra = salesforce.add("Contact", 1)
    salesforce.records["Contact"][extra[0]]["SystemModstamp"] = same
    salesforce.records["Contact"][extra[0]]["Id"] = "003999999999999ZZZ"
    salesforce.records["Contact"]["003999999999999ZZZ"] = salesforce.records["Contact"].pop(
        extra[0]
    )
    again = await pull(salesforce_config(), cursor=batches[-1].cursor)
    assert again == [f"salesforce:contact:003999999999999ZZZ:{int(same.timestamp() * 1000)}"]


async def test_a_record_that_cannot_be_read_is_reported_and_the_rest_imported(
    salesforce: FakeSalesforce, salesforce_config: MakeConfig, recorded_waits: RecordedWaits
) -> None:
    ids = salesforce.add("Contact", 5)
    salesforce.records["Contact"][ids[2]]["CreatedDate"] = "last Tuesday"
    source = SalesforceSource(salesforce_config())
    try:
        batches = await pull_all(source, "contacts")
    finally:
        await source.aclose()
    assert sum(len(b.events) for b in batches) == 4
    assert [skip for b in batches for skip in b.skipped] == [
        f"Contact {ids[2]}: CreatedDate: not a datetime"
    ]


def test_the_query_is_keyset_by_systemmodstamp_and_id() -> None:
    soql = query("Contact", ["Email"], ("2026-03-01T12:00:00.000Z", "003000000000001AAA"))
    assert soql == (
        "SELECT Id, SystemModstamp, CreatedDate, Email FROM Contact WHERE SystemModstamp > "
        "2026-03-01T12:00:00.000Z OR (SystemModstamp = 2026-03-01T12:00:00.000Z AND "
        "Id > '003000000000001AAA') ORDER BY SystemModstamp, Id"
    )


def test_soql_strings_escape_quotes_and_backslashes() -> None:
    assert soql_string("O'Brien \\ co") == "'O\\'Brien \\\\ co'"


async def test_api_usage_past_the_slow_mark_spaces_requests(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    salesforce.add("Contact", 600)
    salesforce.api_limit = 100
    salesforce.api_used = 85
    await pull(salesforce_config(slow_interval="3s"))
    assert recorded_waits.seconds.count(3.0) >= 2


async def test_api_usage_at_the_stop_mark_stops_with_a_clear_message(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    salesforce.add("Contact", 600)
    salesforce.api_limit = 100
    salesforce.api_used = 94
    with pytest.raises(ProviderError) as caught:
        await pull(salesforce_config())
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.code == "API_USAGE"
    assert "95 of 100" in caught.value.detail
    assert salesforce.api_used == 95  # it stopped before spending the org's last requests


async def test_the_orgs_daily_limit_is_a_final_rate_limit(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    salesforce.add("Contact", 3)
    salesforce.api_limit = 0
    with pytest.raises(ProviderError) as caught:
        await pull(salesforce_config())
    assert caught.value.kind is ErrorKind.RATE_LIMITED
    assert caught.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert "24 hours" in caught.value.detail
    assert not recorded_waits.seconds


async def test_one_member_is_upserted_by_its_external_id(
    salesforce: FakeSalesforce,
    salesforce_server: FakeServer,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    result = await sync(salesforce_config(), change(added=people(1)))
    assert result.added == 1
    (request,) = salesforce_server.requests_to("/services/data/v62.0/sobjects/Contact/")
    assert request.method == "PATCH"
    assert unquote(request.path).endswith("/Mailwright_Id__c/p0")
    assert request.json() == {"Email": "p0@example.com", "FirstName": "P0", "LastName": "Doe"}


@pytest.mark.parametrize(
    ("path", "overrides"),
    [
        ("one by one", {"composite_threshold": 2}),
        ("composite", {"composite_threshold": 1}),
        ("bulk", {"composite_threshold": 0, "bulk_threshold": 1}),
    ],
)
async def test_an_external_id_on_several_contacts_is_a_member_failure(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
    path: str,
    overrides: dict[str, int],
) -> None:
    # Salesforce documents a 300 (Multiple Choices) for an upsert whose external id
    # matches several records: nothing is saved, and the member must be reported.
    twins = salesforce.add_duplicates("p0")
    result = await sync(salesforce_config(**overrides), change(added=people(2)))
    assert result.added == 1
    assert [(f.profile_id, f.kind) for f in result.failures] == [("p0", ErrorKind.INVALID)]
    assert "DUPLICATE_EXTERNAL_ID" in result.failures[0].detail
    assert all(twin in result.failures[0].detail for twin in twins)
    assert len(salesforce.contacts_by_external_id("p0")) == 2


async def test_a_few_members_go_through_composite_collections(
    salesforce_server: FakeServer,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    await sync(salesforce_config(), change(added=people(5)))
    (request,) = salesforce_server.requests_to(
        "/services/data/v62.0/composite/sobjects/Contact/Mailwright_Id__c"
    )
    body = request.json()
    assert body["allOrNone"] is False
    assert [r["attributes"] for r in body["records"]] == [{"type": "Contact"}] * 5


async def test_many_members_go_through_bulk_api_2(
    salesforce: FakeSalesforce,
    salesforce_server: FakeServer,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    result = await sync(salesforce_config(bulk_threshold=10), change(added=people(30)))
    assert result.added == 30
    (upload,) = salesforce_server.requests_to("/services/data/v62.0/jobs/ingest/", "PUT")
    assert upload.headers["content-type"] == "text/csv"
    assert upload.body.decode().splitlines()[0].startswith("Mailwright_Id__c,Email,FirstName")
    assert 2.0 in recorded_waits.seconds
    job = next(iter(salesforce.jobs.values()))
    assert (job["state"], job["numberRecordsProcessed"]) == ("JobComplete", 30)


async def test_a_refused_row_of_a_bulk_job_is_a_member_failure(
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    bad = AudienceMember("p-bad", email="not-an-email", traits={"last_name": "X"})
    result = await sync(salesforce_config(bulk_threshold=2), change(added=[*people(3), bad]))
    assert result.added == 3
    assert [(f.profile_id, f.kind) for f in result.failures] == [("p-bad", ErrorKind.INVALID)]
    assert "INVALID_EMAIL_ADDRESS" in result.failures[0].detail


async def test_a_known_lead_joins_the_campaign_as_a_lead(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    (lead,) = salesforce.add("Lead", 1)
    member = AudienceMember("p-lead", email="lead@example.com", external_ids={"salesforce": lead})
    await sync(salesforce_config(), change(added=[member]))
    campaign = salesforce.campaign_named("Mailwright: VIP")
    assert campaign is not None
    assert [m.get("LeadId") for m in salesforce.members_of(campaign["Id"])] == [lead]
    assert not salesforce.records["Contact"]
    await sync(salesforce_config(), change(removed=[member]))
    assert not salesforce.members_of(campaign["Id"])


async def test_a_segment_name_with_quotes_finds_its_campaign_again(
    salesforce: FakeSalesforce,
    salesforce_config: MakeConfig,
    recorded_waits: RecordedWaits,
) -> None:
    name = "Bob's \\ best"
    await sync(salesforce_config(), change(added=people(1), name=name))
    await sync(salesforce_config(), change(added=people(2), name=name))
    assert len(salesforce.records["Campaign"]) == 1
