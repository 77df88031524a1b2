"""The ingest service as the runtime runs it."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from starlette.routing import BaseRoute

from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright_ingest.api import IngestServicer


class IngestApp:
    name = "ingest"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # The taxonomy and write-key RPCs answer UNIMPLEMENTED until the ingest issue lands.
        self.servicer = IngestServicer(runtime.bus)  # type: ignore[abstract]

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(self.servicer, server)
        return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


service = ServiceDefinition(
    name="ingest",
    create=IngestApp,
    description="Segment-compatible events over gRPC and HTTP, taxonomy, dedup, webhooks.",
)
