"""The render service as the runtime runs it: store, catalogue, batch renderer, servicer.

Tracking tokens are signed with the deployment's keys (`mailwright.runtime.signing`:
`MAILWRIGHT_SIGNING_KEYS`, or a key derived from the auth secret when none are set) and
point at `public_base_url`, where the ingest edge verifies them. Settings of its own:
`MAILWRIGHT_SERVICES__RENDER__<FIELD>` (see `config.RenderSettings`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from starlette.routing import BaseRoute

from mailwright.render.v1 import render_pb2, render_pb2_grpc
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright.runtime.signing import tracking_signer
from mailwright_render.api import RenderServicer
from mailwright_render.batch import BatchRenderer
from mailwright_render.catalog import Catalog
from mailwright_render.config import RenderSettings
from mailwright_render.profiles import ProfileDirectory
from mailwright_render.store import MIGRATIONS, TemplateStore, request_log
from mailwright_render.wire_render import serialize_response


class _Handlers:
    """Stands in for a server to collect the method handlers generated code registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        return None

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler[Any, Any]]
    ) -> None:
        self.handlers.update(handlers)


class RenderApp:
    name = "render"

    def __init__(self, runtime: Runtime) -> None:
        shared = runtime.settings
        self.settings = shared.section("render", RenderSettings)
        self.db = runtime.database("render", MIGRATIONS)
        self.store = TemplateStore(self.db)
        self.profiles = ProfileDirectory(
            runtime.clients,
            timeout=self.settings.profile_timeout.total_seconds(),
            schema_ttl=self.settings.schema_cache.total_seconds(),
        )
        self.catalog = Catalog(self.db, self.store, self.profiles, self.settings)
        self.batch = BatchRenderer(
            self.db,
            self.store,
            tracking_signer(shared),
            shared.effective_public_base_url,
            self.settings,
            max_response_bytes=shared.max_message_bytes,
        )
        self.requests = RequestLog(self.db, request_log)

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        servicer = RenderServicer(
            self.catalog, self.batch, self.profiles, self.requests, self.settings
        )
        service = render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name
        # The generated handlers, except that RenderBatch's answer arrives already in
        # wire format (see `wire_render.EncodedResponse`) and is sent as it is.
        generated = _Handlers()
        render_pb2_grpc.add_RenderServiceServicer_to_server(servicer, generated)  # type: ignore[arg-type]
        handlers = dict(generated.handlers)
        handlers["RenderBatch"] = grpc.unary_unary_rpc_method_handler(
            servicer.RenderBatch,
            request_deserializer=render_pb2.RenderBatchRequest.FromString,
            response_serializer=serialize_response,
        )
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)
        return [service]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)

    async def stop(self) -> None:
        return None


service = ServiceDefinition(
    name="render",
    create=RenderApp,
    description="Templates, versions and publishing; sandboxed rendering, fast, per recipient.",
    migrations=MIGRATIONS,
)
