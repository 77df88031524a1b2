"""The audience destination RPCs of `DeliveryService` (mixed into its servicer): protobuf
in, domain call, protobuf out; mutations through the request log."""

from __future__ import annotations

from typing import Any

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import InvalidArgument, NotFound
from mailwright.names import RESOURCE_ID, ResourceName, parse, parse_workspace
from mailwright.runtime.db import Database
from mailwright.runtime.requests import RequestLog
from mailwright_delivery import pages
from mailwright_delivery.audience_convert import (
    COLLECTION,
    SETTABLE,
    destination_from_proto,
    destination_to_proto,
    status_to_proto,
)
from mailwright_delivery.audience_operations import AudienceDestinations
from mailwright_delivery.policy import utcnow
from mailwright_delivery.store import DeliveryStore

Context = Any


def _name(value: str, field: str) -> ResourceName:
    return parse(value, field, COLLECTION)


class AudienceDestinationApi:
    db: Database
    store: DeliveryStore
    requests: RequestLog
    audiences: AudienceDestinations

    async def CreateAudienceDestination(
        self, request: pb.CreateAudienceDestinationRequest, context: Context
    ) -> pb.CreateAudienceDestinationResponse:
        workspace = parse_workspace(request.parent)

        async def compute() -> pb.CreateAudienceDestinationResponse:
            given = request.audience_destination_id
            if not given or not RESOURCE_ID.match(given) or len(given) > 63:
                raise InvalidArgument.field(
                    "audience_destination_id", "must be 1-63 letters, digits, '-', '_' or '.'"
                )
            destination = destination_from_proto(
                workspace, given, request.audience_destination, utcnow()
            )
            created = await self.audiences.create(destination)
            return pb.CreateAudienceDestinationResponse(
                audience_destination=destination_to_proto(created)
            )

        return await self.requests.run(
            workspace,
            "CreateAudienceDestination",
            request,
            pb.CreateAudienceDestinationResponse,
            compute,
        )

    async def GetAudienceDestination(
        self, request: pb.GetAudienceDestinationRequest, context: Context
    ) -> pb.GetAudienceDestinationResponse:
        name = _name(request.name, "name")
        found = await self.db.run(self.store.require_destination, name.workspace, name.id)
        return pb.GetAudienceDestinationResponse(audience_destination=destination_to_proto(found))

    async def ListAudienceDestinations(
        self, request: pb.ListAudienceDestinationsRequest, context: Context
    ) -> pb.ListAudienceDestinationsResponse:
        workspace = parse_workspace(request.parent)
        size = pages.page_size(request.page_size)
        after = pages.decode(request.page_token, {})
        found = await self.db.run(self.store.list_destinations, workspace, after, size + 1)
        response = pb.ListAudienceDestinationsResponse(
            audience_destinations=[destination_to_proto(d) for d in found[:size]]
        )
        if len(found) > size:
            response.next_page_token = pages.encode(found[size - 1].id, {})
        return response

    async def UpdateAudienceDestination(
        self, request: pb.UpdateAudienceDestinationRequest, context: Context
    ) -> pb.UpdateAudienceDestinationResponse:
        name = _name(request.audience_destination.name, "audience_destination.name")

        async def compute() -> pb.UpdateAudienceDestinationResponse:
            before = await self.db.run(self.store.require_destination, name.workspace, name.id)
            merged = destination_to_proto(before)
            fields = list(request.update_mask) or SETTABLE
            unknown = [f for f in fields if f not in SETTABLE]
            if unknown:
                raise InvalidArgument.field("update_mask", f"cannot update {unknown[0]!r}")
            for field in fields:
                merged.ClearField(field)  # type: ignore[arg-type]
                value = getattr(request.audience_destination, field)
                if field in ("segments", "traits"):
                    getattr(merged, field).extend(value)
                else:
                    setattr(merged, field, value)
            destination = destination_from_proto(
                name.workspace, name.id, merged, utcnow(), created_at=before.created_at
            )
            updated = await self.audiences.update(destination, before)
            return pb.UpdateAudienceDestinationResponse(
                audience_destination=destination_to_proto(updated)
            )

        return await self.requests.run(
            name.workspace,
            "UpdateAudienceDestination",
            request,
            pb.UpdateAudienceDestinationResponse,
            compute,
        )

    async def DeleteAudienceDestination(
        self, request: pb.DeleteAudienceDestinationRequest, context: Context
    ) -> pb.DeleteAudienceDestinationResponse:
        name = _name(request.name, "name")

        async def compute() -> pb.DeleteAudienceDestinationResponse:
            if not await self.db.run(self.store.delete_destination, name.workspace, name.id):
                raise NotFound(f"audience destination {name.id!r} not found")
            return pb.DeleteAudienceDestinationResponse()

        return await self.requests.run(
            name.workspace,
            "DeleteAudienceDestination",
            request,
            pb.DeleteAudienceDestinationResponse,
            compute,
        )

    async def ResyncAudienceDestination(
        self, request: pb.ResyncAudienceDestinationRequest, context: Context
    ) -> pb.ResyncAudienceDestinationResponse:
        name = _name(request.name, "name")

        async def compute() -> pb.ResyncAudienceDestinationResponse:
            await self.audiences.resync(name.workspace, name.id, list(request.segments))
            destination, statuses, failures = await self.audiences.status(name.workspace, name.id)
            return pb.ResyncAudienceDestinationResponse(
                status=status_to_proto(request.name, destination, statuses, failures)
            )

        return await self.requests.run(
            name.workspace,
            "ResyncAudienceDestination",
            request,
            pb.ResyncAudienceDestinationResponse,
            compute,
        )

    async def GetAudienceSyncStatus(
        self, request: pb.GetAudienceSyncStatusRequest, context: Context
    ) -> pb.GetAudienceSyncStatusResponse:
        name = _name(request.name, "name")
        destination, statuses, failures = await self.audiences.status(name.workspace, name.id)
        return pb.GetAudienceSyncStatusResponse(
            status=status_to_proto(request.name, destination, statuses, failures)
        )
