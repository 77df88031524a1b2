"""The render service as the runtime runs it.

Its RPCs answer UNIMPLEMENTED until the render issue lands; the service is registered so that
health checking, reflection and the contracts are in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from starlette.routing import BaseRoute

from mailwright.render.v1 import render_pb2, render_pb2_grpc
from mailwright.runtime.service import Runtime, ServiceDefinition


class RenderApp:
    name = "render"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        # Every RPC answers UNIMPLEMENTED until the render issue lands.
        servicer = render_pb2_grpc.RenderServiceServicer()  # type: ignore[abstract]
        render_pb2_grpc.add_RenderServiceServicer_to_server(servicer, server)
        return [render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


service = ServiceDefinition(name="render", create=RenderApp)
