"""The segment service as the runtime runs it.

Its RPCs answer UNIMPLEMENTED until the segment issue lands; the service is registered so that
health checking, reflection and the contracts are in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from starlette.routing import BaseRoute

from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright.segment.v1 import segment_pb2, segment_pb2_grpc


class SegmentApp:
    name = "segment"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        # Every RPC answers UNIMPLEMENTED until the segment issue lands.
        servicer = segment_pb2_grpc.SegmentServiceServicer()  # type: ignore[abstract]
        segment_pb2_grpc.add_SegmentServiceServicer_to_server(servicer, server)
        return [segment_pb2.DESCRIPTOR.services_by_name["SegmentService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


service = ServiceDefinition(name="segment", create=SegmentApp)
