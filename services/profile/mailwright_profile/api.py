"""gRPC servicer of the profile service: protobuf in, `Profiles` calls, protobuf out.

Every request is read here (resource names, identities, field limits), with errors that
name the field; every query is scoped to the workspace the request names, which the
gateway interceptor has checked against the caller's token. Mutations with a
`request_id` run once (`RequestLog`); a retry gets the first response.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2
from mailwright.errors import InvalidArgument, Violations
from mailwright.names import parse, parse_workspace
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.runtime.auth import current_principal
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.rpc import Context
from mailwright_profile import convert
from mailwright_profile.export import CONTENT_TYPE
from mailwright_profile.identity import (
    Identity,
    IdentityError,
    MergePolicy,
    check_identity_type,
    normalize_identity,
)
from mailwright_profile.imports import RecordsInput, read_records
from mailwright_profile.profiles import Profiles
from mailwright_profile.views import ProfileView

MAX_BATCH_GET = 1000
MAX_MERGE_SOURCES = 100
MAX_EVENT_NAMES = 50
MAX_SOURCES = 100
_TRAIT_TYPES = {
    "string": profile_pb2.TRAIT_TYPE_STRING,
    "number": profile_pb2.TRAIT_TYPE_NUMBER,
    "boolean": profile_pb2.TRAIT_TYPE_BOOLEAN,
    "timestamp": profile_pb2.TRAIT_TYPE_TIMESTAMP,
    "date": profile_pb2.TRAIT_TYPE_DATE,
    "money": profile_pb2.TRAIT_TYPE_MONEY,
    "list": profile_pb2.TRAIT_TYPE_LIST,
    "object": profile_pb2.TRAIT_TYPE_OBJECT,
}
_STATUS = {
    profile_pb2.CONSENT_STATUS_SUBSCRIBED: "subscribed",
    profile_pb2.CONSENT_STATUS_UNSUBSCRIBED: "unsubscribed",
    profile_pb2.CONSENT_STATUS_PENDING: "pending",
}


def _profile_id(name: str, field: str) -> tuple[str, str]:
    parsed = parse(name, field, "profiles")
    return parsed.workspace, parsed.id


def _identity(message: common_pb2.Identity, field: str) -> Identity:
    if not message.type or not message.value:
        raise InvalidArgument.field(field, "type and value are required")
    try:
        return normalize_identity(message.type, message.value)
    except IdentityError as error:
        raise InvalidArgument.field(f"{field}.{error.field}", error.message) from error


def _time(message: Message, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def _actor() -> str:
    principal = current_principal.get()
    return principal.subject if principal is not None else "anonymous"


def _policy_workspace(name: str, field: str) -> str:
    pieces = name.split("/")
    if len(pieces) != 3 or pieces[2] != "mergePolicy":
        raise InvalidArgument.field(
            field, f"must look like workspaces/{{workspace}}/mergePolicy, got {name!r}"
        )
    return parse_workspace("/".join(pieces[:2]), field)


def _read_policy(message: profile_pb2.MergePolicy) -> MergePolicy:
    problems = Violations()
    for index, kind in enumerate(message.unique_identity_types):
        try:
            check_identity_type(kind)
        except IdentityError as error:
            problems.add(f"policy.unique_identity_types[{index}]", error.message)
    if len(set(message.unique_identity_types)) != len(message.unique_identity_types):
        problems.add("policy.unique_identity_types", "lists a type twice")
    if len(message.source_priority) > MAX_SOURCES:
        problems.add("policy.source_priority", f"more than {MAX_SOURCES} sources")
    for index, source in enumerate(message.source_priority):
        if not source.strip() or len(source) > 64:
            problems.add(f"policy.source_priority[{index}]", "must be 1 to 64 characters")
    if len(set(message.source_priority)) != len(message.source_priority):
        problems.add("policy.source_priority", "lists a source twice")
    auto = message.auto_merge_threshold or 0.9
    review = message.review_threshold or min(0.5, auto)
    if not 0.0 < auto <= 1.0:
        problems.add("policy.auto_merge_threshold", "must lie in (0, 1]")
    if not 0.0 < review <= auto:
        problems.add("policy.review_threshold", "must lie in (0, auto_merge_threshold]")
    problems.raise_if_any()
    return MergePolicy(
        tuple(message.unique_identity_types), tuple(message.source_priority), auto, review
    )


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(
        self, profiles: Profiles, requests: RequestLog, clock: Callable[[], datetime]
    ) -> None:
        self.profiles = profiles
        self.requests = requests
        self.clock = clock

    def _proto(self, view: ProfileView) -> profile_pb2.Profile:
        return convert.profile_proto(view, self.clock(), self.profiles.registry)

    # -- reading -----------------------------------------------------------------------

    async def GetProfile(
        self, request: profile_pb2.GetProfileRequest, context: Context
    ) -> profile_pb2.GetProfileResponse:
        workspace, profile_id = _profile_id(request.name, "name")
        view = await self.profiles.get(workspace, profile_id)
        return profile_pb2.GetProfileResponse(profile=self._proto(view))

    async def BatchGetProfiles(
        self, request: profile_pb2.BatchGetProfilesRequest, context: Context
    ) -> profile_pb2.BatchGetProfilesResponse:
        workspace = parse_workspace(request.parent)
        if len(request.names) > MAX_BATCH_GET:
            raise InvalidArgument.field("names", f"more than {MAX_BATCH_GET} names")
        ids: list[str] = []
        for index, name in enumerate(request.names):
            ws, profile_id = _profile_id(name, f"names[{index}]")
            if ws != workspace:
                raise InvalidArgument.field(f"names[{index}]", f"must be in {request.parent}")
            ids.append(profile_id)
        found = await self.profiles.get_many(workspace, ids)
        response = profile_pb2.BatchGetProfilesResponse()
        for name, profile_id in zip(request.names, ids, strict=True):
            view = found.get(profile_id)
            if view is None:
                response.missing.append(name)
            else:
                response.profiles.append(self._proto(view))
        return response

    async def LookupProfile(
        self, request: profile_pb2.LookupProfileRequest, context: Context
    ) -> profile_pb2.LookupProfileResponse:
        workspace = parse_workspace(request.parent)
        identity = _identity(request.identity, "identity")
        view = await self.profiles.lookup(workspace, identity)
        return profile_pb2.LookupProfileResponse(profile=self._proto(view))

    async def ListProfiles(
        self, request: profile_pb2.ListProfilesRequest, context: Context
    ) -> profile_pb2.ListProfilesResponse:
        workspace = parse_workspace(request.parent)
        views, token = await self.profiles.list_profiles(
            workspace, request.filter, request.order_by, request.page_size, request.page_token
        )
        return profile_pb2.ListProfilesResponse(
            profiles=[self._proto(v) for v in views], next_page_token=token
        )

    async def ListProfileEvents(
        self, request: profile_pb2.ListProfileEventsRequest, context: Context
    ) -> profile_pb2.ListProfileEventsResponse:
        workspace, profile_id = _profile_id(request.parent, "parent")
        if len(request.events) > MAX_EVENT_NAMES:
            raise InvalidArgument.field("events", f"more than {MAX_EVENT_NAMES} names")
        for index, name in enumerate(request.events):
            if not name or len(name) > 255:
                raise InvalidArgument.field(f"events[{index}]", "must be 1 to 255 characters")
        start = (
            request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None
        )
        end = request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None
        if start is not None and end is not None and end <= start:
            raise InvalidArgument.field("end_time", "must be after start_time")
        root, rows, token = await self.profiles.events(
            workspace,
            profile_id,
            list(request.events),
            start,
            end,
            request.page_size,
            request.page_token,
        )
        return profile_pb2.ListProfileEventsResponse(
            events=[convert.event_with_profile(row.payload, root) for row in rows],
            next_page_token=token,
        )

    async def GetProfileSchema(
        self, request: profile_pb2.GetProfileSchemaRequest, context: Context
    ) -> profile_pb2.GetProfileSchemaResponse:
        workspace = parse_workspace(request.parent)
        traits = await self.profiles.schema(workspace)
        return profile_pb2.GetProfileSchemaResponse(
            traits=[
                profile_pb2.TraitDefinition(
                    key=t.key,
                    type=_TRAIT_TYPES.get(t.type, profile_pb2.TRAIT_TYPE_UNSPECIFIED),
                    description=t.description,
                    computed=t.computed,
                    source=t.source,
                )
                for t in traits
            ]
        )

    # -- identities --------------------------------------------------------------------

    async def MergeProfiles(
        self, request: profile_pb2.MergeProfilesRequest, context: Context
    ) -> profile_pb2.MergeProfilesResponse:
        workspace = parse_workspace(request.parent)
        ws, target = _profile_id(request.target, "target")
        problems = Violations()
        if ws != workspace:
            problems.add("target", f"must be in {request.parent}")
        if not request.sources:
            problems.add("sources", "name at least one profile to merge into the target")
        if len(request.sources) > MAX_MERGE_SOURCES:
            problems.add("sources", f"more than {MAX_MERGE_SOURCES} profiles")
        if len(request.reason_text) > 1000:
            problems.add("reason_text", "longer than 1000 characters")
        sources: list[str] = []
        for index, name in enumerate(request.sources):
            ws, source = _profile_id(name, f"sources[{index}]")
            if ws != workspace:
                problems.add(f"sources[{index}]", f"must be in {request.parent}")
            sources.append(source)
        problems.raise_if_any()

        async def compute() -> profile_pb2.MergeProfilesResponse:
            view, merges = await self.profiles.merge(
                workspace, target, sources, _actor(), request.reason_text
            )
            return profile_pb2.MergeProfilesResponse(
                profile=self._proto(view), merges=[convert.merge_proto(m) for m in merges]
            )

        return await self.requests.run(
            workspace, "MergeProfiles", request, profile_pb2.MergeProfilesResponse, compute
        )

    async def UnmergeProfile(
        self, request: profile_pb2.UnmergeProfileRequest, context: Context
    ) -> profile_pb2.UnmergeProfileResponse:
        name = parse(request.merge, "merge", "merges")

        async def compute() -> profile_pb2.UnmergeProfileResponse:
            kept, restored = await self.profiles.unmerge(name.workspace, name.id, _actor())
            return profile_pb2.UnmergeProfileResponse(
                kept_profile=self._proto(kept), restored_profile=self._proto(restored)
            )

        return await self.requests.run(
            name.workspace, "UnmergeProfile", request, profile_pb2.UnmergeProfileResponse, compute
        )

    async def ExplainIdentity(
        self, request: profile_pb2.ExplainIdentityRequest, context: Context
    ) -> profile_pb2.ExplainIdentityResponse:
        workspace = parse_workspace(request.parent)
        has_pair = request.HasField("left") or request.HasField("right")
        if request.profile and has_pair:
            raise InvalidArgument.field("profile", "give either a profile or left and right")
        if request.profile:
            ws, profile_id = _profile_id(request.profile, "profile")
            if ws != workspace:
                raise InvalidArgument.field("profile", f"must be in {request.parent}")
            view, explanation, text = await self.profiles.explain_profile(workspace, profile_id)
        elif has_pair:
            left = _identity(request.left, "left")
            right = _identity(request.right, "right")
            view, explanation, text = await self.profiles.explain_identities(workspace, left, right)
        else:
            raise InvalidArgument.field(
                "profile", "give a profile, or two identities in left and right"
            )
        response = profile_pb2.ExplainIdentityResponse(
            same_profile=explanation.same_profile,
            links=[convert.linked_identity(link) for link in explanation.links],
            merges=[convert.merge_proto(m) for m in explanation.merges],
            refused=[convert.refusal_proto(workspace, x) for x in explanation.refusals],
            summary=text,
        )
        response.profile.CopyFrom(self._proto(view))
        return response

    async def ResolveRecords(
        self, request: profile_pb2.ResolveRecordsRequest, context: Context
    ) -> profile_pb2.ResolveRecordsResponse:
        workspace = parse_workspace(request.parent)
        batch: RecordsInput = read_records(
            [(r.record_id, dict(r.fields), r.source) for r in request.records]
        )

        async def compute() -> profile_pb2.ResolveRecordsResponse:
            outcome = await self.profiles.resolve_records(workspace, batch, request.apply)
            return convert.resolution_proto(workspace, outcome)

        return await self.requests.run(
            workspace, "ResolveRecords", request, profile_pb2.ResolveRecordsResponse, compute
        )

    async def ListMergeCandidates(
        self, request: profile_pb2.ListMergeCandidatesRequest, context: Context
    ) -> profile_pb2.ListMergeCandidatesResponse:
        workspace = parse_workspace(request.parent)
        found, token = await self.profiles.candidates(
            workspace, request.page_size, request.page_token
        )
        return profile_pb2.ListMergeCandidatesResponse(
            candidates=[convert.candidate_proto(workspace, c) for c in found],
            next_page_token=token,
        )

    async def GetMergePolicy(
        self, request: profile_pb2.GetMergePolicyRequest, context: Context
    ) -> profile_pb2.GetMergePolicyResponse:
        workspace = _policy_workspace(request.name, "name")
        policy = await self.profiles.policy(workspace)
        return profile_pb2.GetMergePolicyResponse(policy=convert.policy_proto(workspace, policy))

    async def UpdateMergePolicy(
        self, request: profile_pb2.UpdateMergePolicyRequest, context: Context
    ) -> profile_pb2.UpdateMergePolicyResponse:
        workspace = _policy_workspace(request.policy.name, "policy.name")
        policy = _read_policy(request.policy)

        async def compute() -> profile_pb2.UpdateMergePolicyResponse:
            saved = await self.profiles.update_policy(workspace, policy)
            return profile_pb2.UpdateMergePolicyResponse(
                policy=convert.policy_proto(workspace, saved)
            )

        return await self.requests.run(
            workspace, "UpdateMergePolicy", request, profile_pb2.UpdateMergePolicyResponse, compute
        )

    # -- consent and privacy -----------------------------------------------------------

    async def UpdateConsent(
        self, request: profile_pb2.UpdateConsentRequest, context: Context
    ) -> profile_pb2.UpdateConsentResponse:
        workspace, profile_id = _profile_id(request.name, "name")
        consent = request.consent
        problems = Violations()
        if consent.channel != profile_pb2.CHANNEL_EMAIL:
            problems.add("consent.channel", "must be CHANNEL_EMAIL")
        status = _STATUS.get(consent.status)
        if status is None:
            problems.add("consent.status", "must be SUBSCRIBED, UNSUBSCRIBED or PENDING")
        if len(consent.source) > 64:
            problems.add("consent.source", "longer than 64 characters")
        proof = {
            "ip": consent.proof.ip,
            "user_agent": consent.proof.user_agent,
            "form": consent.proof.form,
            "message": consent.proof.message,
            "text": consent.proof.text,
        }
        for key, value in proof.items():
            if len(value) > 1000:
                problems.add(f"consent.proof.{key}", "longer than 1000 characters")
        problems.raise_if_any()
        assert status is not None
        when = (
            consent.update_time.ToDatetime(tzinfo=UTC) if consent.HasField("update_time") else None
        )

        async def compute() -> profile_pb2.UpdateConsentResponse:
            view = await self.profiles.update_consent(
                workspace, profile_id, status, consent.source or "api", when, proof
            )
            return profile_pb2.UpdateConsentResponse(profile=self._proto(view))

        return await self.requests.run(
            workspace, "UpdateConsent", request, profile_pb2.UpdateConsentResponse, compute
        )

    async def DeleteProfile(
        self, request: profile_pb2.DeleteProfileRequest, context: Context
    ) -> profile_pb2.DeleteProfileResponse:
        workspace, profile_id = _profile_id(request.name, "name")

        async def compute() -> profile_pb2.DeleteProfileResponse:
            identities, events = await self.profiles.delete(workspace, profile_id)
            return profile_pb2.DeleteProfileResponse(
                identities_erased=identities, events_erased=events
            )

        return await self.requests.run(
            workspace, "DeleteProfile", request, profile_pb2.DeleteProfileResponse, compute
        )

    async def ExportProfile(
        self, request: profile_pb2.ExportProfileRequest, context: Context
    ) -> profile_pb2.ExportProfileResponse:
        workspace, profile_id = _profile_id(request.name, "name")
        content = await self.profiles.export(workspace, profile_id)
        return profile_pb2.ExportProfileResponse(content=content, content_type=CONTENT_TYPE)
