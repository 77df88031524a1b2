"""Segments as Salesforce campaigns; members synced back as contacts by an external id.

For a change of segment S:

1. the campaign `<campaign_prefix>S` is found by SOQL (`SELECT Id FROM Campaign WHERE
   Name = '…'`) or created (`POST /sobjects/Campaign`), and cached;
2. added members are upserted as contacts on the external id field that holds the
   Mailwright profile id (`external_id_field`, e.g. `Mailwright_Id__c`), with the traits
   mapped to fields: one contact by `PATCH /sobjects/Contact/<field>/<value>`, a few by
   Composite sObject collections (`PATCH /composite/sobjects/Contact/<field>`, 200 a
   request, `allOrNone: false`), many by Bulk API 2.0 (`bulk`). A member known as a lead
   (`external_ids["salesforce"]` = a `00Q…` id) joins as that lead, without upsert;
3. they join the campaign as `CampaignMember` records (`CampaignId` with `ContactId` or
   `LeadId`, created by Composite, `DUPLICATE_VALUE` — already a member — is fine);
4. removed members' campaign members are found by SOQL and deleted
   (`DELETE /composite/sobjects?ids=…&allOrNone=false`); someone absent is harmless.

A record Salesforce refuses (a required field missing, an invalid email, an external id
value found on several contacts — a 300 for one upsert, `DUPLICATE_EXTERNAL_ID` in a
collection or a bulk job — where nothing is saved) is a `MemberFailure` with its
`statusCode: message`; the others go through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ErrorKind,
    MemberFailure,
    ProviderError,
    SyncResult,
    redact,
)
from mailwright_salesforce.bulk import BulkUpsert
from mailwright_salesforce.client import SalesforceHttp, soql_string
from mailwright_salesforce.config import SalesforceConfig

log = logging.getLogger(__name__)

COLLECTION = 200
MAX_CAMPAIGN_NAME = 80
ALREADY_MEMBER = "DUPLICATE_VALUE"


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def field_value(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return None
    return value


def save_errors(result: Mapping[str, Any]) -> str:
    found = result.get("errors")
    if not isinstance(found, list) or not found:
        return "refused"
    parts = []
    for error in found[:3]:
        if isinstance(error, Mapping):
            fields = error.get("fields") or []
            where = f" ({', '.join(map(str, fields))})" if fields else ""
            parts.append(f"{error.get('statusCode', 'ERROR')}: {error.get('message', '')}{where}")
    return redact("; ".join(parts))


class SalesforceAudienceSync:
    """The audience sync capability: campaign membership, contacts upserted by profile id."""

    max_batch_size = 10_000

    def __init__(self, config: SalesforceConfig) -> None:
        self.config = config
        self.client = SalesforceHttp(config, "audience sync")
        self.bulk = BulkUpsert(self.client, config)
        self.external = config.external_id_field
        self._campaigns: dict[str, str] = {}

    @property
    def data(self) -> str:
        return self.client.data

    def campaign_name(self, change: AudienceChange) -> str:
        return (self.config.campaign_prefix + change.segment_name)[:MAX_CAMPAIGN_NAME]

    async def sync(self, change: AudienceChange) -> SyncResult:
        failures: list[MemberFailure] = []
        campaign = await self._campaign(change)
        leads = {m.profile_id: m.external_ids["salesforce"] for m in change.added if _lead(m)}
        contacts = await self._upsert([m for m in change.added if not _lead(m)], failures)
        joined = await self._join(campaign, contacts, leads, failures)
        await self._leave(campaign, change.removed)
        log.info(
            "salesforce campaign %s: %d joined, %d removed, %d failed (change %s)",
            campaign,
            joined,
            len(change.removed),
            len(failures),
            change.change_id,
        )
        return SyncResult(added=joined, removed=len(change.removed), failures=tuple(failures))

    # -- campaigns -------------------------------------------------------------------------

    async def _campaign(self, change: AudienceChange) -> str:
        cached = self._campaigns.get(change.segment_id)
        if cached is not None:
            return cached
        name = self.campaign_name(change)
        found = await self._query(f"SELECT Id FROM Campaign WHERE Name = {soql_string(name)}")
        if found:
            campaign = str(found[0]["Id"])
        else:
            body = await self.client.json(
                "POST", f"{self.data}/sobjects/Campaign", json={"Name": name, "IsActive": True}
            )
            if not isinstance(body, Mapping) or not isinstance(body.get("id"), str):
                raise ProviderError(ErrorKind.TRANSIENT, "salesforce created a campaign without id")
            campaign = str(body["id"])
        self._campaigns[change.segment_id] = campaign
        return campaign

    async def _query(self, soql: str) -> list[Mapping[str, Any]]:
        records: list[Mapping[str, Any]] = []
        url: str | None = f"{self.data}/query?q={quote(soql)}"
        while url is not None:
            body = await self.client.json("GET", url)
            page = body.get("records") if isinstance(body, Mapping) else None
            records.extend(r for r in page or [] if isinstance(r, Mapping))
            url = None if body.get("done", True) else body.get("nextRecordsUrl")
        return records

    # -- contacts ---------------------------------------------------------------------------

    def fields(self, member: AudienceMember) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field, trait in self.config.contact_fields.items():
            if trait == "email" and member.email:
                values[field] = member.email.strip().lower()
            elif trait in member.traits:
                values[field] = field_value(member.traits[trait])
        return values

    async def _upsert(
        self, members: Sequence[AudienceMember], failures: list[MemberFailure]
    ) -> dict[str, str]:
        """Profile id → contact id of the members upserted."""
        if not members:
            return {}
        if len(members) <= self.config.composite_threshold:
            return await self._upsert_one_by_one(members, failures)
        if len(members) > self.config.bulk_threshold:
            return await self._upsert_in_bulk(members, failures)
        ids: dict[str, str] = {}
        for chunk in chunks(members, COLLECTION):
            records = [
                {"attributes": {"type": "Contact"}, self.external: m.profile_id, **self.fields(m)}
                for m in chunk
            ]
            results = await self.client.json(
                "PATCH",
                f"{self.data}/composite/sobjects/Contact/{self.external}",
                json={"allOrNone": False, "records": records},
            )
            for member, result in zip(chunk, _results(results, len(chunk)), strict=True):
                if result.get("success") and isinstance(result.get("id"), str):
                    ids[member.profile_id] = str(result["id"])
                else:
                    failures.append(
                        MemberFailure(member.profile_id, ErrorKind.INVALID, save_errors(result))
                    )
        return ids

    async def _upsert_one_by_one(
        self, members: Sequence[AudienceMember], failures: list[MemberFailure]
    ) -> dict[str, str]:
        ids: dict[str, str] = {}
        for member in members:
            path = (
                f"{self.data}/sobjects/Contact/{self.external}/{quote(member.profile_id, safe='')}"
            )
            try:
                response = await self.client.request("PATCH", path, json=self.fields(member))
            except ProviderError as error:
                if error.kind is not ErrorKind.INVALID:
                    raise
                failures.append(MemberFailure(member.profile_id, ErrorKind.INVALID, error.detail))
                continue
            record_id = _upserted_id(response)
            if record_id is None:
                failures.append(
                    MemberFailure(member.profile_id, ErrorKind.INVALID, _not_upserted(response))
                )
            else:
                ids[member.profile_id] = record_id
        return ids

    async def _upsert_in_bulk(
        self, members: Sequence[AudienceMember], failures: list[MemberFailure]
    ) -> dict[str, str]:
        rows = [{self.external: m.profile_id, **self.fields(m)} for m in members]
        columns = [self.external, *self.config.contact_fields]
        results = await self.bulk.run("Contact", self.external, columns, rows)
        ids: dict[str, str] = {}
        for member in members:
            result = results.get(member.profile_id)
            if result is not None and result.record_id:
                ids[member.profile_id] = result.record_id
            else:
                detail = redact(result.error or "refused") if result else "not in the job's results"
                failures.append(MemberFailure(member.profile_id, ErrorKind.INVALID, detail))
        return ids

    # -- campaign members ------------------------------------------------------------------

    async def _join(
        self,
        campaign: str,
        contacts: Mapping[str, str],
        leads: Mapping[str, str],
        failures: list[MemberFailure],
    ) -> int:
        wanted = [(p, "ContactId", c) for p, c in contacts.items()]
        wanted += [(p, "LeadId", lead) for p, lead in leads.items()]
        joined = 0
        for chunk in chunks(wanted, COLLECTION):
            records = [
                {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, field: record}
                for _, field, record in chunk
            ]
            results = await self.client.json(
                "POST",
                f"{self.data}/composite/sobjects",
                json={"allOrNone": False, "records": records},
            )
            for (profile, _, _), result in zip(chunk, _results(results, len(chunk)), strict=True):
                codes = {
                    e.get("statusCode")
                    for e in result.get("errors") or []
                    if isinstance(e, Mapping)
                }
                if result.get("success") or codes == {ALREADY_MEMBER}:
                    joined += 1
                else:
                    failures.append(MemberFailure(profile, ErrorKind.INVALID, save_errors(result)))
        return joined

    async def _leave(self, campaign: str, members: Sequence[AudienceMember]) -> None:
        leads = [m.external_ids["salesforce"] for m in members if _lead(m)]
        profiles = [m.profile_id for m in members if not _lead(m)]
        contact_ids: list[str] = []
        for chunk in chunks(profiles, COLLECTION):
            listed = ", ".join(soql_string(p) for p in chunk)
            found = await self._query(f"SELECT Id FROM Contact WHERE {self.external} IN ({listed})")
            contact_ids += [str(r["Id"]) for r in found]
        member_ids: list[str] = []
        for field, ids in (("ContactId", contact_ids), ("LeadId", leads)):
            for chunk in chunks(ids, COLLECTION):
                listed = ", ".join(soql_string(i) for i in chunk)
                found = await self._query(
                    f"SELECT Id FROM CampaignMember WHERE CampaignId = {soql_string(campaign)}"
                    f" AND {field} IN ({listed})"
                )
                member_ids += [str(r["Id"]) for r in found]
        for chunk in chunks(member_ids, COLLECTION):
            results = await self.client.json(
                "DELETE", f"{self.data}/composite/sobjects?ids={','.join(chunk)}&allOrNone=false"
            )
            for result in _results(results, len(chunk)):
                codes = {
                    e.get("statusCode")
                    for e in result.get("errors") or []
                    if isinstance(e, Mapping)
                }
                if not result.get("success") and codes != {"ENTITY_IS_DELETED"}:
                    raise ProviderError(
                        ErrorKind.TRANSIENT,
                        f"salesforce kept a campaign member: {save_errors(result)}",
                    )

    async def aclose(self) -> None:
        await self.client.aclose()


def _upserted_id(response: httpx.Response) -> str | None:
    """The record id of a successful upsert by external id (201 created, 200 updated)."""
    if response.status_code not in (200, 201):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    record_id = body.get("id") if isinstance(body, Mapping) else None
    return record_id if isinstance(record_id, str) and record_id else None


def _not_upserted(response: httpx.Response) -> str:
    """Why an upsert saved nothing. Salesforce answers 300 (Multiple Choices), with the
    matching records' URLs, when the external id value is on several records."""
    if response.status_code == 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        urls = body if isinstance(body, list) else []
        found = [str(url).rsplit("/", 1)[-1] for url in urls[:10]]
        return (
            f"DUPLICATE_EXTERNAL_ID: the external id matches {len(urls) or 'several'} "
            f"contacts ({', '.join(found)}); none was updated"
        )
    return f"salesforce answered the upsert {response.status_code} without a record id"


def _lead(member: AudienceMember) -> bool:
    return member.external_ids.get("salesforce", "").startswith("00Q")


def _results(body: Any, expected: int) -> list[Mapping[str, Any]]:
    if not isinstance(body, list) or len(body) != expected:
        raise ProviderError(
            ErrorKind.TRANSIENT, "salesforce answered a collection of the wrong size"
        )
    return [r if isinstance(r, Mapping) else {} for r in body]
