"""What delivery asks the other services: people, segment members, templates.

Every call goes through `runtime.clients` (gRPC); their errors become domain errors here,
so a missing segment is NOT_FOUND for our caller and a profile service that is down is
UNAVAILABLE (retryable), never INTERNAL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from mailwright.connectors import AudienceMember
from mailwright.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from mailwright.names import resource_name
from mailwright.profile.v1 import profile_pb2
from mailwright.render.v1 import render_pb2
from mailwright.rules import EmailSend, Event, Person
from mailwright.runtime.clients import Clients
from mailwright.segment.v1 import segment_pb2
from mailwright.structs import plain_value, struct_values
from mailwright_delivery.audiences import external_ids, with_profile_id
from mailwright_delivery.model import Category, Recipient

T = TypeVar("T")
BATCH = 1000

CONSENT = {
    profile_pb2.CONSENT_STATUS_SUBSCRIBED: "subscribed",
    profile_pb2.CONSENT_STATUS_UNSUBSCRIBED: "unsubscribed",
    profile_pb2.CONSENT_STATUS_PENDING: "pending",
}


async def call(awaitable: Awaitable[T], what: str) -> T:
    """Await a client call, turning its status into the matching domain error."""
    try:
        return await awaitable
    except grpc.aio.AioRpcError as error:
        code = error.code()
        detail = error.details() or code.name
        if code is grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"{what}: {detail}") from error
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidArgument(f"{what}: {detail}") from error
        if code is grpc.StatusCode.FAILED_PRECONDITION:
            raise FailedPrecondition(f"{what}: {detail}") from error
        raise Unavailable(f"{what}: {code.name}: {detail}") from error


def _merged_trait(profile: profile_pb2.Profile, key: str) -> tuple[bool, Any]:
    """Whether a profile has trait `key` and its value, a computed trait over a plain one
    of the same key (as `recipient_of` merges them), without reading the other traits."""
    for struct in (profile.computed_traits, profile.traits):
        if key in struct.fields:
            return True, plain_value(struct.fields[key])
    return False, None


def _email_of(profile: profile_pb2.Profile, email_trait: Any) -> str:
    email = str(email_trait or "")
    if not email:
        for linked in profile.identities:
            if linked.identity.type == "email":
                return str(linked.identity.value)
    return email


def recipient_of(profile: profile_pb2.Profile) -> Recipient:
    traits = struct_values(profile.traits)
    traits.update(struct_values(profile.computed_traits))
    email = _email_of(profile, traits.get("email"))
    consent = ""
    latest = None
    for item in profile.consents:
        if item.channel == profile_pb2.CHANNEL_EMAIL and (
            latest is None or item.update_time.ToDatetime() >= latest
        ):
            latest = item.update_time.ToDatetime()
            consent = CONSENT.get(item.status, "")
    return Recipient(
        profile_id=profile.profile_id or profile.name.rsplit("/", 1)[-1],
        email=email,
        timezone=str(traits.get("timezone") or ""),
        locale=str(traits.get("locale") or ""),
        consent=consent,
        traits=traits,
    )


@dataclass(frozen=True)
class TemplateInfo:
    version: str  # the published version's name
    category: Category | None


class Directory:
    def __init__(self, clients: Clients, template_ttl: float = 5.0) -> None:
        self.clients = clients
        # Which version a template name sends, briefly remembered (a publish shows within
        # `template_ttl` seconds).
        self.template_ttl = template_ttl
        self._templates: dict[str, tuple[float, TemplateInfo]] = {}

    # -- people -----------------------------------------------------------------------

    async def profiles(
        self, workspace: str, profile_ids: Sequence[str]
    ) -> list[tuple[list[str], profile_pb2.BatchGetProfilesResponse]]:
        """BatchGetProfiles of the distinct ids, `BATCH` (the service's maximum) a call,
        the calls made concurrently; each chunk of ids with its response."""
        wanted = list(dict.fromkeys(p for p in profile_ids if p))
        chunks = [wanted[start : start + BATCH] for start in range(0, len(wanted), BATCH)]
        responses = await asyncio.gather(
            *(
                call(
                    self.clients.profile.BatchGetProfiles(
                        profile_pb2.BatchGetProfilesRequest(
                            parent=f"workspaces/{workspace}",
                            names=[resource_name(workspace, "profiles", p) for p in chunk],
                        )
                    ),
                    "profile service",
                )
                for chunk in chunks
            )
        )
        return list(zip(chunks, responses, strict=True))

    async def recipients(self, workspace: str, profile_ids: Sequence[str]) -> dict[str, Recipient]:
        """The people of `profile_ids` that exist, by id (merged ids resolve onward)."""
        found: dict[str, Recipient] = {}
        for chunk, response in await self.profiles(workspace, profile_ids):
            asked = set(chunk)
            for profile in response.profiles:
                recipient = recipient_of(profile)
                found[recipient.profile_id] = recipient
                # An id merged away resolves to the profile that absorbed it.
                for merged in profile.merged_profiles:
                    absorbed = merged.rsplit("/", 1)[-1]
                    if absorbed in asked:
                        found.setdefault(absorbed, recipient)
        return found

    async def audience_members(
        self, workspace: str, profile_ids: Sequence[str], traits: Sequence[str]
    ) -> dict[str, AudienceMember]:
        """The people of `profile_ids` as an audience sees them: address, provider ids
        (identities typed `<provider>:<kind>`) and the `traits` asked for."""
        found: dict[str, AudienceMember] = {}
        for chunk, response in await self.profiles(workspace, profile_ids):
            asked = set(chunk)
            for profile in response.profiles:
                # Only the traits asked for are read (not every computed trait).
                chosen: dict[str, Any] = {}
                for key in traits:
                    held, value = _merged_trait(profile, key)
                    if held:
                        chosen[key] = value
                linked = [(i.identity.type, i.identity.value) for i in profile.identities]
                member = AudienceMember(
                    profile_id=profile.profile_id or profile.name.rsplit("/", 1)[-1],
                    email=_email_of(profile, _merged_trait(profile, "email")[1]).strip().lower()
                    or None,
                    external_ids=external_ids(linked),
                    traits=chosen,
                )
                if member.profile_id in asked:
                    found[member.profile_id] = member
                for merged in profile.merged_profiles:
                    absorbed = merged.rsplit("/", 1)[-1]
                    if absorbed in asked:
                        found.setdefault(absorbed, with_profile_id(member, absorbed))
        return found

    async def person(
        self,
        workspace: str,
        profile_id: str,
        now: datetime,
        emails: Sequence[EmailSend] = (),
        with_events: bool = True,
    ) -> Person:
        """A person as the rule evaluator sees them: traits, events, segments, emails."""
        recipients = await self.recipients(workspace, [profile_id])
        traits = recipients[profile_id].traits if profile_id in recipients else {}
        events: list[Event] = []
        if with_events:
            response = await call(
                self.clients.profile.ListProfileEvents(
                    profile_pb2.ListProfileEventsRequest(
                        parent=resource_name(workspace, "profiles", profile_id), page_size=1000
                    )
                ),
                "profile service",
            )
            for event in response.events:
                name = event.event or event.name
                when = event.timestamp.ToDatetime(tzinfo=now.tzinfo)
                events.append(Event(name, when, json_format.MessageToDict(event.properties)))
        segments = await self.memberships(workspace, profile_id)
        return Person(traits, tuple(events), tuple(emails), frozenset(segments))

    async def memberships(self, workspace: str, profile_id: str) -> list[str]:
        response = await call(
            self.clients.segment.ListProfileMemberships(
                segment_pb2.ListProfileMembershipsRequest(
                    parent=f"workspaces/{workspace}", profile_id=profile_id
                )
            ),
            "segment service",
        )
        return [name.rsplit("/", 1)[-1] for name in response.segments]

    # -- segments ---------------------------------------------------------------------

    async def check_segment(self, workspace: str, segment: str) -> int:
        """The segment's member count; NotFound when it does not exist."""
        response = await call(
            self.clients.segment.ListMembers(
                segment_pb2.ListMembersRequest(
                    parent=resource_name(workspace, "segments", segment), page_size=1
                )
            ),
            f"segment {segment!r}",
        )
        return int(response.total_size) or len(response.members)

    async def members(self, workspace: str, segment: str) -> AsyncIterator[list[str]]:
        """The segment's members now, a page at a time."""
        token = ""
        while True:
            response = await call(
                self.clients.segment.ListMembers(
                    segment_pb2.ListMembersRequest(
                        parent=resource_name(workspace, "segments", segment),
                        page_size=BATCH,
                        page_token=token,
                    )
                ),
                f"segment {segment!r}",
            )
            yield [member.profile_id for member in response.members]
            token = response.next_page_token
            if not token:
                return

    async def member_page(
        self, workspace: str, segment: str, token: str, size: int = BATCH
    ) -> tuple[list[str], str, int]:
        """One page of the segment's members now: ids, the next token, the member count."""
        response = await call(
            self.clients.segment.ListMembers(
                segment_pb2.ListMembersRequest(
                    parent=resource_name(workspace, "segments", segment),
                    page_size=size,
                    page_token=token,
                )
            ),
            f"segment {segment!r}",
        )
        ids = [member.profile_id for member in response.members]
        return ids, response.next_page_token, int(response.total_size) or len(ids)

    # -- templates --------------------------------------------------------------------

    async def template(self, name: str) -> TemplateInfo:
        """The published version a template (or version) name sends, and its category."""
        now = time.monotonic()
        cached = self._templates.get(name)
        if cached is not None and now - cached[0] < self.template_ttl:
            return cached[1]
        info = await self._template(name)
        self._templates[name] = (now, info)
        return info

    async def _template(self, name: str) -> TemplateInfo:
        if "/versions/" in name:
            version = (
                await call(
                    self.clients.render.GetTemplateVersion(
                        render_pb2.GetTemplateVersionRequest(name=name)
                    ),
                    "template version",
                )
            ).version
            if version.state != render_pb2.VERSION_STATE_PUBLISHED:
                raise FailedPrecondition(f"template version {name} is not published")
            return TemplateInfo(version.name or name, _category(version.content.category))
        template = (
            await call(
                self.clients.render.GetTemplate(render_pb2.GetTemplateRequest(name=name)),
                "template",
            )
        ).template
        if not template.published_version:
            raise FailedPrecondition(f"template {name} has no published version")
        version_name = f"{name}/versions/{template.published_version}"
        info = await self._template(version_name)
        return TemplateInfo(info.version, info.category or _category(template.category))

    async def render(
        self, request: render_pb2.RenderBatchRequest
    ) -> render_pb2.RenderBatchResponse:
        return await call(self.clients.render.RenderBatch(request), "render service")


def _category(value: int) -> Category | None:
    if value == render_pb2.TEMPLATE_CATEGORY_MARKETING:
        return Category.MARKETING
    if value == render_pb2.TEMPLATE_CATEGORY_TRANSACTIONAL:
        return Category.TRANSACTIONAL
    return None
