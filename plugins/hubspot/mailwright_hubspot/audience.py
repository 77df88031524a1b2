"""Segments as HubSpot static lists, traits as contact properties.

A segment is mirrored by a static (`MANUAL`) contact list named
`<list_prefix><segment name> [<segment id>]`, found by name or created on first use
(`GET /crm/v3/lists/object-type-id/0-1/name/{name}`, `POST /crm/v3/lists`). Lists are
what HubSpot users target emails and workflows at, and list membership is a set, so
adding or removing twice is harmless. (A contact property per segment would need a
property created per segment and a read-modify-write of multi-select values.)

A change is applied in three steps, each idempotent:

1. added members are upserted by email (`POST /crm/v3/objects/contacts/batch/upsert`
   with `idProperty: email`, at most 100 inputs), with their traits as the configured
   properties; a member without an email but with a HubSpot id is only listed;
2. removed members are found by HubSpot id, else by email (`batch/read`);
3. one `PUT /crm/v3/lists/{listId}/memberships/add-and-remove` moves them.

A member the provider refuses (no email and no id; an invalid email) is reported in
`SyncResult.failures` and the others go through: HubSpot refuses a whole batch for one
invalid input, so a refused batch is split until the refused inputs stand alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from mailwright.connectors import (
    AudienceChange,
    AudienceMember,
    ErrorKind,
    MemberFailure,
    ProviderError,
    SyncResult,
)
from mailwright_hubspot.client import HubSpotHttp
from mailwright_hubspot.config import HubSpotConfig
from mailwright_hubspot.events import CONTACT_OBJECT_TYPE

log = logging.getLogger(__name__)

MAX_BATCH = 100
MAX_LIST_NAME = 250


def property_value(value: Any) -> str:
    """A trait as HubSpot stores property values: text (`true`, `12.5`, `a;b`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(property_value(v) for v in value)
    return "" if value is None else str(value)


class HubSpotAudienceSync:
    """The audience sync capability: one static list per segment."""

    max_batch_size = MAX_BATCH

    def __init__(self, config: HubSpotConfig) -> None:
        self.config = config
        self.client = HubSpotHttp(config, "audience sync")
        self._lists: dict[str, str] = {}

    def list_name(self, change: AudienceChange) -> str:
        name = f"{self.config.list_prefix}{change.segment_name} [{change.segment_id}]"
        return name[:MAX_LIST_NAME]

    async def sync(self, change: AudienceChange) -> SyncResult:
        failures: list[MemberFailure] = []
        list_id = await self._list(change)
        to_add = await self._upsert(change.added, failures)
        to_remove = await self._find(change.removed)
        if to_add or to_remove:
            await self.client.http.request(
                "PUT",
                f"/crm/v3/lists/{quote(list_id)}/memberships/add-and-remove",
                json={
                    "recordIdsToAdd": sorted(set(to_add.values())),
                    "recordIdsToRemove": sorted(set(to_remove.values())),
                },
            )
        log.info(
            "hubspot list %s: %d added, %d removed, %d failed (change %s)",
            list_id,
            len(to_add),
            len(change.removed),
            len(failures),
            change.change_id,
        )
        return SyncResult(added=len(to_add), removed=len(change.removed), failures=tuple(failures))

    async def _list(self, change: AudienceChange) -> str:
        cached = self._lists.get(change.segment_id)
        if cached is not None:
            return cached
        name = self.list_name(change)
        path = f"/crm/v3/lists/object-type-id/{CONTACT_OBJECT_TYPE}/name/{quote(name, safe='')}"
        try:
            body = await self.client.http.get_json(path)
        except ProviderError as error:
            if error.code != "404":
                raise
            body = await self.client.http.post_json(
                "/crm/v3/lists",
                {"name": name, "objectTypeId": CONTACT_OBJECT_TYPE, "processingType": "MANUAL"},
            )
        found = body.get("list") if isinstance(body, Mapping) else None
        list_id = found.get("listId") if isinstance(found, Mapping) else None
        if not isinstance(list_id, str | int):
            raise ProviderError(ErrorKind.TRANSIENT, "hubspot answered a list without listId")
        self._lists[change.segment_id] = str(list_id)
        return str(list_id)

    def _properties(self, member: AudienceMember) -> dict[str, str]:
        values = {"email": (member.email or "").strip().lower()}
        for trait, prop in self.config.properties.items():
            if trait in member.traits:
                values[prop] = property_value(member.traits[trait])
        return values

    async def _upsert(
        self, members: Sequence[AudienceMember], failures: list[MemberFailure]
    ) -> dict[str, str]:
        """Profile id → HubSpot record id of the members added (upserted or known)."""
        record_ids: dict[str, str] = {}
        by_email: dict[str, AudienceMember] = {}
        for member in members:
            if member.email:
                by_email[member.email.strip().lower()] = member
            elif member.external_ids.get("hubspot"):
                record_ids[member.profile_id] = member.external_ids["hubspot"]
            else:
                failures.append(
                    MemberFailure(
                        member.profile_id, ErrorKind.INVALID, "no email and no HubSpot id"
                    )
                )
        refused: dict[str, str] = {}
        emails = list(by_email)
        for start in range(0, len(emails), MAX_BATCH):
            results, reasons = await self._upsert_batch(emails[start : start + MAX_BATCH], by_email)
            for result in results:
                email = str(result.get("properties", {}).get("email", "")).lower()
                if email in by_email and result.get("id") is not None:
                    record_ids[by_email.pop(email).profile_id] = str(result["id"])
            refused.update(reasons)
        for email, member in by_email.items():
            detail = refused.get(email, "HubSpot did not take this contact")
            failures.append(MemberFailure(member.profile_id, ErrorKind.INVALID, detail))
        return record_ids

    async def _upsert_batch(
        self, emails: Sequence[str], by_email: Mapping[str, AudienceMember]
    ) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
        """The results of upserting `emails`, and why HubSpot refused those it refused.

        HubSpot refuses a whole batch (400 `VALIDATION_ERROR`) when one input is invalid,
        an address it rejects say, and saves nothing. Such a batch is split in halves
        until each refused input stands alone, so the others are saved. A refusal that
        leaves no input of the batch saved concerns the request (a property HubSpot
        lacks): it is raised for the whole change.
        """
        try:
            return await self._post_upserts(emails, by_email)
        except ProviderError as error:
            # A property HubSpot lacks ("Property \"x\" does not exist") refuses every
            # input alike: no split can save any.
            request_wide = "does not exist" in error.detail
            if error.kind is not ErrorKind.INVALID or len(emails) == 1 or request_wide:
                raise
            refusal = error
        results, refused = await self._isolate(emails, by_email)
        if not results:
            raise refusal
        log.info("hubspot refused %d of a batch of %d contacts", len(refused), len(emails))
        return results, refused

    async def _isolate(
        self, emails: Sequence[str], by_email: Mapping[str, AudienceMember]
    ) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
        results: list[Mapping[str, Any]] = []
        refused: dict[str, str] = {}
        middle = len(emails) // 2
        for half in (emails[:middle], emails[middle:]):
            try:
                found, reasons = await self._post_upserts(half, by_email)
            except ProviderError as error:
                if error.kind is not ErrorKind.INVALID:
                    raise
                if len(half) > 1:
                    found, reasons = await self._isolate(half, by_email)
                else:
                    found, reasons = [], {half[0]: error.detail}
            results += found
            refused.update(reasons)
        return results, refused

    async def _post_upserts(
        self, emails: Sequence[str], by_email: Mapping[str, AudienceMember]
    ) -> tuple[list[Mapping[str, Any]], dict[str, str]]:
        inputs = [
            {"idProperty": "email", "id": email, "properties": self._properties(by_email[email])}
            for email in emails
        ]
        body = await self.client.http.post_json(
            "/crm/v3/objects/contacts/batch/upsert", {"inputs": inputs}
        )
        return list(_results(body)), _refused(body)

    async def _find(self, members: Sequence[AudienceMember]) -> dict[str, str]:
        """Profile id → HubSpot record id of the removed members HubSpot knows."""
        found: dict[str, str] = {}
        lookup: dict[str, str] = {}
        for member in members:
            if member.external_ids.get("hubspot"):
                found[member.profile_id] = member.external_ids["hubspot"]
            elif member.email:
                lookup[member.email.strip().lower()] = member.profile_id
        emails = list(lookup)
        for start in range(0, len(emails), MAX_BATCH):
            body = await self.client.http.post_json(
                "/crm/v3/objects/contacts/batch/read",
                {
                    "idProperty": "email",
                    "properties": ["email"],
                    "inputs": [{"id": email} for email in emails[start : start + MAX_BATCH]],
                },
            )
            for result in _results(body):
                email = str(result.get("properties", {}).get("email", "")).lower()
                if email in lookup and result.get("id") is not None:
                    found[lookup[email]] = str(result["id"])
        return found

    async def aclose(self) -> None:
        await self.client.aclose()


def _results(body: Any) -> Iterable[Mapping[str, Any]]:
    results = body.get("results") if isinstance(body, Mapping) else None
    return [r for r in results if isinstance(r, Mapping)] if isinstance(results, list) else []


def _refused(body: Any) -> dict[str, str]:
    """Email → reason, from a 207 multi-status body's `errors`."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    reasons: dict[str, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        context = error.get("context")
        ids = context.get("ids") if isinstance(context, Mapping) else None
        message = f"{error.get('message', 'refused')} ({error.get('category', 'error')})"
        for item in ids if isinstance(ids, list) else []:
            reasons[str(item).lower()] = message
    return reasons
