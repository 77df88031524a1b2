"""gRPC servicer of the ingest service: protobuf in, checked events on the bus, results out."""

from __future__ import annotations

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.errors import InvalidArgument, Unavailable
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.names import parse_workspace
from mailwright.runtime.bus import Bus, BusUnavailable, Outgoing
from mailwright.runtime.rpc import Context
from mailwright_ingest import events

MAX_BATCH_EVENTS = 1000


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def _publish(self, items: list[event_pb2.Event]) -> None:
        try:
            await self.bus.publish_many(
                [
                    Outgoing(
                        events.TOPIC_BY_TYPE[e.type], events.partition_key(e), e.SerializeToString()
                    )
                    for e in items
                ]
            )
        except BusUnavailable as error:
            raise Unavailable(f"event bus unavailable; nothing was accepted: {error}") from error

    async def _single(
        self, parent: str, event: event_pb2.Event, kind: event_pb2.EventType.ValueType
    ) -> ingest_pb2.EventResult:
        workspace = parse_workspace(parent)
        event.type = kind
        problems = events.check(event)
        if problems:
            raise InvalidArgument(violations=problems)
        events.stamp(event, workspace, source="grpc")
        await self._publish([event])
        return ingest_pb2.EventResult(
            message_id=event.message_id, status=ingest_pb2.EVENT_STATUS_ACCEPTED, event=event
        )

    async def Track(
        self, request: ingest_pb2.TrackRequest, context: Context
    ) -> ingest_pb2.TrackResponse:
        result = await self._single(request.parent, request.event, event_pb2.EVENT_TYPE_TRACK)
        return ingest_pb2.TrackResponse(result=result)

    async def Identify(
        self, request: ingest_pb2.IdentifyRequest, context: Context
    ) -> ingest_pb2.IdentifyResponse:
        result = await self._single(request.parent, request.event, event_pb2.EVENT_TYPE_IDENTIFY)
        return ingest_pb2.IdentifyResponse(result=result)

    async def Page(
        self, request: ingest_pb2.PageRequest, context: Context
    ) -> ingest_pb2.PageResponse:
        result = await self._single(request.parent, request.event, event_pb2.EVENT_TYPE_PAGE)
        return ingest_pb2.PageResponse(result=result)

    async def Alias(
        self, request: ingest_pb2.AliasRequest, context: Context
    ) -> ingest_pb2.AliasResponse:
        result = await self._single(request.parent, request.event, event_pb2.EVENT_TYPE_ALIAS)
        return ingest_pb2.AliasResponse(result=result)

    async def IngestBatch(
        self, request: ingest_pb2.IngestBatchRequest, context: Context
    ) -> ingest_pb2.IngestBatchResponse:
        workspace = parse_workspace(request.parent)
        if len(request.events) > MAX_BATCH_EVENTS:
            raise InvalidArgument.field("events", f"more than {MAX_BATCH_EVENTS} events")
        results: list[ingest_pb2.EventResult] = []
        accepted: list[event_pb2.Event] = []
        for index, event in enumerate(request.events):
            problems = events.check(event, prefix=f"events[{index}]")
            if problems:
                results.append(
                    ingest_pb2.EventResult(
                        index=index,
                        message_id=event.message_id,
                        status=ingest_pb2.EVENT_STATUS_REJECTED,
                        violations=[
                            common_pb2.FieldViolation(field=p.field, description=p.description)
                            for p in problems
                        ],
                    )
                )
                continue
            events.stamp(event, workspace, source="grpc")
            accepted.append(event)
            results.append(
                ingest_pb2.EventResult(
                    index=index,
                    message_id=event.message_id,
                    status=ingest_pb2.EVENT_STATUS_ACCEPTED,
                )
            )
        await self._publish(accepted)
        rejected = sum(r.status == ingest_pb2.EVENT_STATUS_REJECTED for r in results)
        return ingest_pb2.IngestBatchResponse(
            results=results, accepted_count=len(accepted), rejected_count=rejected
        )
