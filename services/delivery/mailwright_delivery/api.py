"""The gRPC servicer of `mailwright.delivery.v1.DeliveryService`: protobuf in, domain
call, protobuf out. Mutations go through the request log (a retried `request_id` gets
the first answer); domain errors become statuses in the gateway interceptor."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.delivery.v1 import delivery_pb2_grpc
from mailwright.errors import InvalidArgument, NotFound, Violations
from mailwright.names import RESOURCE_ID, parse, parse_workspace
from mailwright.runtime.db import Database
from mailwright.runtime.requests import RequestLog
from mailwright_delivery import lifecycle, pages
from mailwright_delivery.audience_api import AudienceDestinationApi
from mailwright_delivery.audience_operations import AudienceDestinations
from mailwright_delivery.convert import (
    REASON_FROM_PB,
    SEND_STATE_FROM_PB,
    STATE_FROM_PB,
    campaign_spec,
    campaign_to_proto,
    policy_from_proto,
    policy_to_proto,
    read_policy,
    send_to_proto,
    suppression_to_proto,
)
from mailwright_delivery.journey_convert import definition, journey_to_proto, trigger_key
from mailwright_delivery.model import CampaignState, SuppressionReason, email_hash
from mailwright_delivery.operations import Operations
from mailwright_delivery.policy import utcnow
from mailwright_delivery.providers import Policies, Providers
from mailwright_delivery.store import DeliveryStore, SendFilter

HASH = re.compile(r"^[0-9a-f]{64}$")
Context = Any


def _new_id(given: str, field: str) -> str:
    if not given or not RESOURCE_ID.match(given) or len(given) > 63:
        raise InvalidArgument.field(field, "must be 1-63 letters, digits, '-', '_' or '.'")
    return given


R = TypeVar("R", pb.ActivateJourneyResponse, pb.DeactivateJourneyResponse)


class DeliveryServicer(AudienceDestinationApi, delivery_pb2_grpc.DeliveryServiceServicer):
    def __init__(
        self,
        db: Database,
        store: DeliveryStore,
        requests: RequestLog,
        operations: Operations,
        providers: Providers,
        policies: Policies,
        audiences: AudienceDestinations,
    ) -> None:
        self.db = db
        self.audiences = audiences
        self.store = store
        self.requests = requests
        self.ops = operations
        self.providers = providers
        self.policies = policies

    # -- campaigns ------------------------------------------------------------------------

    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, context: Context
    ) -> pb.CreateCampaignResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.CreateCampaignResponse:
            campaign_id = _new_id(request.campaign_id, "campaign_id")
            spec = campaign_spec(workspace, request.campaign)
            stored = pb.Campaign()
            stored.CopyFrom(request.campaign)
            _clear_output(stored)
            record = await self.db.run(
                self.store.create_campaign,
                workspace,
                campaign_id,
                spec.display_name,
                stored.SerializeToString(),
                spec.category,
                utcnow(),
            )
            return pb.CreateCampaignResponse(campaign=campaign_to_proto(record))

        return await self.requests.run(
            workspace, "CreateCampaign", request, pb.CreateCampaignResponse, compute
        )

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: Context
    ) -> pb.GetCampaignResponse:
        name = parse(request.name, "name", "campaigns")
        record = await self.db.run(self.store.require_campaign, name.workspace, name.id)
        progress = await self.db.run(self.store.campaign_progress, name.workspace, name.id)
        return pb.GetCampaignResponse(campaign=campaign_to_proto(record, progress))

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: Context
    ) -> pb.ListCampaignsResponse:
        workspace = parse_workspace(request.parent)
        state = CampaignState(STATE_FROM_PB[request.state]) if request.state else None
        filters = {"state": request.state}
        size = pages.page_size(request.page_size)
        after = pages.decode(request.page_token, filters)
        records = await self.db.run(self.store.list_campaigns, workspace, state, after, size + 1)
        response = pb.ListCampaignsResponse(
            campaigns=[campaign_to_proto(r) for r in records[:size]]
        )
        if len(records) > size:
            response.next_page_token = pages.encode(records[size - 1].id, filters)
        return response

    async def UpdateCampaign(
        self, request: pb.UpdateCampaignRequest, context: Context
    ) -> pb.UpdateCampaignResponse:
        name = parse(request.campaign.name, "campaign.name", "campaigns")

        async def compute() -> pb.UpdateCampaignResponse:
            record = await self.db.run(self.store.require_campaign, name.workspace, name.id)
            merged = pb.Campaign.FromString(record.spec)
            fields = list(request.update_mask) or _SETTABLE
            unknown = [f for f in fields if f not in _SETTABLE]
            if unknown:
                raise InvalidArgument.field("update_mask", f"cannot update {unknown[0]!r}")
            for field in fields:
                _copy_field(request.campaign, merged, field)
            updated = await self.ops.update(name.workspace, name.id, merged)
            return pb.UpdateCampaignResponse(campaign=campaign_to_proto(updated))

        return await self.requests.run(
            name.workspace, "UpdateCampaign", request, pb.UpdateCampaignResponse, compute
        )

    async def ScheduleCampaign(
        self, request: pb.ScheduleCampaignRequest, context: Context
    ) -> pb.ScheduleCampaignResponse:
        name = parse(request.name, "name", "campaigns")

        async def compute() -> pb.ScheduleCampaignResponse:
            override = request.schedule if request.HasField("schedule") else None
            record = await self.ops.schedule(name.workspace, name.id, override)
            return pb.ScheduleCampaignResponse(campaign=campaign_to_proto(record))

        return await self.requests.run(
            name.workspace, "ScheduleCampaign", request, pb.ScheduleCampaignResponse, compute
        )

    async def _command(self, request: Any, method: str, command: lifecycle.Command) -> Any:
        name = parse(request.name, "name", "campaigns")
        response_type = getattr(pb, f"{method}Response")

        async def compute() -> Any:
            record = await self.ops.command(name.workspace, name.id, command)
            return response_type(campaign=campaign_to_proto(record))

        return await self.requests.run(name.workspace, method, request, response_type, compute)

    async def PauseCampaign(
        self, request: pb.PauseCampaignRequest, context: Context
    ) -> pb.PauseCampaignResponse:
        result: pb.PauseCampaignResponse = await self._command(
            request, "PauseCampaign", lifecycle.Command.PAUSE
        )
        return result

    async def ResumeCampaign(
        self, request: pb.ResumeCampaignRequest, context: Context
    ) -> pb.ResumeCampaignResponse:
        result: pb.ResumeCampaignResponse = await self._command(
            request, "ResumeCampaign", lifecycle.Command.RESUME
        )
        return result

    async def CancelCampaign(
        self, request: pb.CancelCampaignRequest, context: Context
    ) -> pb.CancelCampaignResponse:
        result: pb.CancelCampaignResponse = await self._command(
            request, "CancelCampaign", lifecycle.Command.CANCEL
        )
        return result

    async def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: Context
    ) -> pb.GetCampaignReportResponse:
        name = parse(request.name, "name", "campaigns")
        report = await self.ops.campaign_report(name.workspace, name.id, request.by_segment)
        return pb.GetCampaignReportResponse(report=report)

    # -- journeys -------------------------------------------------------------------------

    async def CreateJourney(
        self, request: pb.CreateJourneyRequest, context: Context
    ) -> pb.CreateJourneyResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.CreateJourneyResponse:
            journey_id = _new_id(request.journey_id, "journey_id")
            found = definition(workspace, request.journey)
            stored = _journey_spec(request.journey)
            record = await self.db.run(
                self.store.create_journey,
                workspace,
                journey_id,
                request.journey.display_name,
                stored.SerializeToString(),
                trigger_key(found.trigger),
                found.goal.event if found.goal else "",
                utcnow(),
            )
            return pb.CreateJourneyResponse(journey=journey_to_proto(record))

        return await self.requests.run(
            workspace, "CreateJourney", request, pb.CreateJourneyResponse, compute
        )

    async def GetJourney(
        self, request: pb.GetJourneyRequest, context: Context
    ) -> pb.GetJourneyResponse:
        name = parse(request.name, "name", "journeys")
        record = await self.db.run(self.store.require_journey, name.workspace, name.id)
        return pb.GetJourneyResponse(journey=journey_to_proto(record))

    async def ListJourneys(
        self, request: pb.ListJourneysRequest, context: Context
    ) -> pb.ListJourneysResponse:
        workspace = parse_workspace(request.parent)
        size = pages.page_size(request.page_size)
        after = pages.decode(request.page_token, {})
        records = await self.db.run(self.store.list_journeys, workspace, after, size + 1)
        response = pb.ListJourneysResponse(journeys=[journey_to_proto(r) for r in records[:size]])
        if len(records) > size:
            response.next_page_token = pages.encode(records[size - 1].id, {})
        return response

    async def UpdateJourney(
        self, request: pb.UpdateJourneyRequest, context: Context
    ) -> pb.UpdateJourneyResponse:
        name = parse(request.journey.name, "journey.name", "journeys")

        async def compute() -> pb.UpdateJourneyResponse:
            current = await self.db.run(self.store.require_journey, name.workspace, name.id)
            merged = pb.Journey.FromString(current.spec)
            fields = list(request.update_mask) or _JOURNEY_SETTABLE
            unknown = [f for f in fields if f not in _JOURNEY_SETTABLE]
            if unknown:
                raise InvalidArgument.field("update_mask", f"cannot update {unknown[0]!r}")
            for field in fields:
                _copy_field(request.journey, merged, field)
            found = definition(name.workspace, merged)
            record = await self.db.run(
                self.store.update_journey,
                name.workspace,
                name.id,
                merged.display_name,
                _journey_spec(merged).SerializeToString(),
                trigger_key(found.trigger),
                found.goal.event if found.goal else "",
                utcnow(),
            )
            return pb.UpdateJourneyResponse(journey=journey_to_proto(record))

        return await self.requests.run(
            name.workspace, "UpdateJourney", request, pb.UpdateJourneyResponse, compute
        )

    async def ActivateJourney(
        self, request: pb.ActivateJourneyRequest, context: Context
    ) -> pb.ActivateJourneyResponse:
        return await self._journey_state(
            request, "active", "ActivateJourney", pb.ActivateJourneyResponse
        )

    async def DeactivateJourney(
        self, request: pb.DeactivateJourneyRequest, context: Context
    ) -> pb.DeactivateJourneyResponse:
        return await self._journey_state(
            request, "inactive", "DeactivateJourney", pb.DeactivateJourneyResponse
        )

    async def _journey_state(
        self,
        request: pb.ActivateJourneyRequest | pb.DeactivateJourneyRequest,
        state: str,
        method: str,
        response_type: type[R],
    ) -> R:
        name = parse(request.name, "name", "journeys")

        async def compute() -> R:
            record = await self.db.run(
                self.store.set_journey_state, name.workspace, name.id, state, utcnow()
            )
            return response_type(journey=journey_to_proto(record))

        return await self.requests.run(name.workspace, method, request, response_type, compute)

    async def GetJourneyReport(
        self, request: pb.GetJourneyReportRequest, context: Context
    ) -> pb.GetJourneyReportResponse:
        name = parse(request.name, "name", "journeys")
        return await self.ops.journey_report(name.workspace, name.id)

    # -- transactional --------------------------------------------------------------------

    async def SendTransactional(
        self, request: pb.SendTransactionalRequest, context: Context
    ) -> pb.SendTransactionalResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.SendTransactionalResponse:
            record = await self.ops.send_transactional(workspace, request)
            return pb.SendTransactionalResponse(send=send_to_proto(record))

        return await self.requests.run(
            workspace, "SendTransactional", request, pb.SendTransactionalResponse, compute
        )

    # -- suppressions ---------------------------------------------------------------------

    async def AddSuppression(
        self, request: pb.AddSuppressionRequest, context: Context
    ) -> pb.AddSuppressionResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.AddSuppressionResponse:
            given = request.suppression
            problems = Violations()
            if given.email:
                digest = email_hash(given.email)
            elif HASH.match(given.email_hash):
                digest = given.email_hash
            else:
                problems.add("suppression.email", "give an email address or its SHA-256 hex")
                digest = ""
            reason = REASON_FROM_PB.get(given.reason, SuppressionReason.MANUAL)
            if len(given.note) > 500:
                problems.add("suppression.note", "longer than 500 characters")
            problems.raise_if_any()
            record = await self.db.run(
                self.store.add_suppression,
                workspace,
                digest,
                reason,
                given.source or "api",
                given.note,
                utcnow(),
            )
            return pb.AddSuppressionResponse(suppression=suppression_to_proto(record))

        return await self.requests.run(
            workspace, "AddSuppression", request, pb.AddSuppressionResponse, compute
        )

    async def ListSuppressions(
        self, request: pb.ListSuppressionsRequest, context: Context
    ) -> pb.ListSuppressionsResponse:
        workspace = parse_workspace(request.parent)
        reason = REASON_FROM_PB.get(request.reason) if request.reason else None
        filters = {"reason": request.reason}
        size = pages.page_size(request.page_size)
        after = pages.decode(request.page_token, filters)
        records = await self.db.run(
            self.store.list_suppressions, workspace, reason, after, size + 1
        )
        response = pb.ListSuppressionsResponse(
            suppressions=[suppression_to_proto(r) for r in records[:size]]
        )
        if len(records) > size:
            response.next_page_token = pages.encode(records[size - 1].email_hash, filters)
        return response

    async def RemoveSuppression(
        self, request: pb.RemoveSuppressionRequest, context: Context
    ) -> pb.RemoveSuppressionResponse:
        name = parse(request.name, "name", "suppressions")

        async def compute() -> pb.RemoveSuppressionResponse:
            if not await self.db.run(self.store.remove_suppression, name.workspace, name.id):
                raise NotFound(f"no suppression {name.id}")
            return pb.RemoveSuppressionResponse()

        return await self.requests.run(
            name.workspace, "RemoveSuppression", request, pb.RemoveSuppressionResponse, compute
        )

    # -- sends ----------------------------------------------------------------------------

    async def GetSend(self, request: pb.GetSendRequest, context: Context) -> pb.GetSendResponse:
        name = parse(request.name, "name", "sends")
        record = await self.db.run(self.store.get_send, name.workspace, name.id)
        if record is None:
            raise NotFound(f"send {name.id!r} not found")
        return pb.GetSendResponse(send=send_to_proto(record))

    async def ListSends(
        self, request: pb.ListSendsRequest, context: Context
    ) -> pb.ListSendsResponse:
        workspace = parse_workspace(request.parent)
        campaign = _child_id(workspace, request.campaign, "campaign", "campaigns")
        journey = _child_id(workspace, request.journey, "journey", "journeys")
        filters = {
            "profile": request.profile_id,
            "campaign": campaign,
            "journey": journey,
            "state": request.state,
        }
        size = pages.page_size(request.page_size)
        after = pages.decode(request.page_token, filters)
        where = SendFilter(
            workspace,
            profile_id=request.profile_id,
            campaign_id=campaign,
            journey_id=journey,
            state=SEND_STATE_FROM_PB.get(request.state),
        )
        records = await self.db.run(self.store.list_sends, where, after, size + 1)
        response = pb.ListSendsResponse(sends=[send_to_proto(r) for r in records[:size]])
        if len(records) > size:
            response.next_page_token = pages.encode(records[size - 1].id, filters)
        return response

    async def RetrySends(
        self, request: pb.RetrySendsRequest, context: Context
    ) -> pb.RetrySendsResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.RetrySendsResponse:
            ids = [parse(name, f"sends[{i}]", "sends").id for i, name in enumerate(request.sends)]
            campaign = _child_id(workspace, request.campaign, "campaign", "campaigns")
            if not ids and not request.all_parked:
                raise InvalidArgument.field("sends", "name sends, or set all_parked")
            count = await self.db.run(self.store.retry_parked, workspace, ids, campaign, utcnow())
            self.ops.wake()
            return pb.RetrySendsResponse(requeued_count=count)

        return await self.requests.run(
            workspace, "RetrySends", request, pb.RetrySendsResponse, compute
        )

    # -- policy ---------------------------------------------------------------------------

    async def GetDeliveryPolicy(
        self, request: pb.GetDeliveryPolicyRequest, context: Context
    ) -> pb.GetDeliveryPolicyResponse:
        workspace = _policy_workspace(request.name, "name")
        policy = read_policy(await self.db.run(self.store.get_policy, workspace))
        return pb.GetDeliveryPolicyResponse(policy=policy_to_proto(workspace, policy))

    async def UpdateDeliveryPolicy(
        self, request: pb.UpdateDeliveryPolicyRequest, context: Context
    ) -> pb.UpdateDeliveryPolicyResponse:
        workspace = _policy_workspace(request.policy.name, "policy.name")

        async def compute() -> pb.UpdateDeliveryPolicyResponse:
            policy = policy_from_proto(request.policy, self.providers.known())
            message = policy_to_proto(workspace, policy)
            await self.db.run(
                self.store.put_policy, workspace, message.SerializeToString(), utcnow()
            )
            self.policies.forget(workspace)
            return pb.UpdateDeliveryPolicyResponse(policy=message)

        return await self.requests.run(
            workspace, "UpdateDeliveryPolicy", request, pb.UpdateDeliveryPolicyResponse, compute
        )


_SETTABLE = [
    "display_name",
    "audience",
    "template",
    "sender",
    "schedule",
    "throttle_per_hour",
    "category",
    "experiment",
    "attribution_window",
]
_JOURNEY_SETTABLE = [
    "display_name",
    "trigger",
    "steps",
    "goal",
    "reentry",
    "reentry_after",
    "audience",
]


def _copy_field(source: Any, target: Any, field: str) -> None:
    value = getattr(source, field)
    descriptor: Any = source.DESCRIPTOR.fields_by_name[field]
    repeated = getattr(descriptor, "is_repeated", None)
    if repeated is None:
        repeated = descriptor.label == descriptor.LABEL_REPEATED
    if repeated:
        target.ClearField(field)
        getattr(target, field).extend(value)
    elif descriptor.message_type is not None:
        target.ClearField(field)
        if source.HasField(field):
            getattr(target, field).CopyFrom(value)
    else:
        setattr(target, field, value)


def _clear_output(campaign: pb.Campaign) -> None:
    for field in (
        "name",
        "state",
        "create_time",
        "update_time",
        "start_time",
        "end_time",
        "audience_size",
        "progress",
    ):
        campaign.ClearField(field)


def _journey_spec(journey: pb.Journey) -> pb.Journey:
    stored = pb.Journey()
    stored.CopyFrom(journey)
    for field in ("name", "state", "version", "create_time", "update_time"):
        stored.ClearField(field)
    return stored


def _child_id(workspace: str, value: str, field: str, collection: str) -> str:
    if not value:
        return ""
    if not value.startswith("workspaces/"):
        if not RESOURCE_ID.match(value):
            raise InvalidArgument.field(field, f"{value!r} is not an id")
        return value
    name = parse(value, field, collection)
    if name.workspace != workspace:
        raise InvalidArgument.field(field, "names another workspace")
    return name.id


def _policy_workspace(name: str, field: str) -> str:
    pieces = name.split("/")
    if len(pieces) != 3 or pieces[2] != "deliveryPolicy":
        raise InvalidArgument.field(field, "must look like workspaces/{workspace}/deliveryPolicy")
    return parse_workspace("/".join(pieces[:2]), field)
