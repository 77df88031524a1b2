"""The ingest service as the runtime runs it: the gRPC servicer and the HTTP edge over one
intake, store and catalog."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import grpc
from starlette.routing import BaseRoute

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.plugins import Plugins, get_plugins
from mailwright.runtime.auth import load_or_create_secret
from mailwright.runtime.requests import RequestLog
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright.runtime.signing import tracking_signer
from mailwright.taxonomy import default_taxonomy
from mailwright_ingest.api import IngestServicer
from mailwright_ingest.catalog import Catalog
from mailwright_ingest.config import IngestSettings
from mailwright_ingest.edge.collector import Collector
from mailwright_ingest.edge.email import EmailEdge
from mailwright_ingest.edge.machine import MachineDetector
from mailwright_ingest.edge.tracking_api import TrackingApi
from mailwright_ingest.edge.webhooks import WebhookEdge
from mailwright_ingest.intake import EnrichHook, Intake
from mailwright_ingest.store import IngestStore, request_log
from mailwright_ingest.write_keys import WriteKeyMinter

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

log = logging.getLogger(__name__)


def enrich_hook(plugins: Plugins) -> EnrichHook | None:
    """`mailwright_enrich_event` of the loaded plugins, or None when none implements it
    (so the hot path does not pay for an empty hook call)."""
    caller = plugins.hook.mailwright_enrich_event
    if not caller.get_hookimpls():
        return None

    def enrich(event: event_pb2.Event) -> None:
        caller(event=event)

    return enrich


class IngestApp:
    name = "ingest"

    def __init__(self, runtime: Runtime, plugins: Plugins | None = None) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.settings = settings.section("ingest", IngestSettings)
        self.plugins = plugins if plugins is not None else get_plugins(settings)
        self.db = runtime.database("ingest", MIGRATIONS)
        self.store = IngestStore(self.db)
        self.catalog = Catalog(self.store, self.settings, default_taxonomy().events)
        self.intake = Intake(
            runtime.bus, runtime.kv, self.catalog, self.settings, enrich_hook(self.plugins)
        )
        secret = load_or_create_secret(settings.auth_secret, settings.data_dir)
        self.tracking_api = TrackingApi(self.intake, self.catalog, self.settings)
        self.email = EmailEdge(
            self.intake, tracking_signer(settings), MachineDetector(self.settings, runtime.kv)
        )
        self.webhooks = WebhookEdge(
            self.intake, self.catalog, self.plugins, settings, self.settings
        )
        self.collector = Collector()
        self.servicer = IngestServicer(
            self.intake,
            self.store,
            self.catalog,
            RequestLog(self.db, request_log),
            WriteKeyMinter(secret),
            self.settings,
        )

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(self.servicer, server)
        return [ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return [
            *self.tracking_api.routes(),
            *self.collector.routes(),
            *self.email.routes(),
            *self.webhooks.routes(),
        ]

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)

    async def stop(self) -> None:
        await self.webhooks.aclose()


service = ServiceDefinition(
    name="ingest",
    create=IngestApp,
    description="Segment-compatible events over gRPC and HTTP, taxonomy, dedup, webhooks.",
)
