"""The delivery service as the runtime runs it.

Its RPCs answer UNIMPLEMENTED until the delivery issue lands; the service is registered so that
health checking, reflection and the contracts are in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from starlette.routing import BaseRoute

from mailwright.delivery.v1 import delivery_pb2, delivery_pb2_grpc
from mailwright.runtime.service import Runtime, ServiceDefinition


class DeliveryApp:
    name = "delivery"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        # Every RPC answers UNIMPLEMENTED until the delivery issue lands.
        servicer = delivery_pb2_grpc.DeliveryServiceServicer()  # type: ignore[abstract]
        delivery_pb2_grpc.add_DeliveryServiceServicer_to_server(servicer, server)
        return [delivery_pb2.DESCRIPTOR.services_by_name["DeliveryService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


service = ServiceDefinition(name="delivery", create=DeliveryApp)
