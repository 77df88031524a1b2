"""The profile service as the runtime runs it: servicer, store and event consumer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc
from starlette.routing import BaseRoute

from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.runtime.bus import Subscription
from mailwright.runtime.service import Runtime, ServiceDefinition
from mailwright_profile.api import ProfileServicer
from mailwright_profile.apply import EVENT_TOPICS, EventApplier
from mailwright_profile.store import ProfileStore

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class ProfileApp:
    name = "profile"

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.database("profile", MIGRATIONS)
        self.store = ProfileStore(self.db)
        self.applier = EventApplier(self.store, runtime.bus)
        self.subscription: Subscription | None = None

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        # RPCs beyond the thin slice answer UNIMPLEMENTED until the profile issue lands.
        servicer = ProfileServicer(self.store)  # type: ignore[abstract]
        profile_pb2_grpc.add_ProfileServiceServicer_to_server(servicer, server)
        return [profile_pb2.DESCRIPTOR.services_by_name["ProfileService"].full_name]

    def http_routes(self) -> Sequence[BaseRoute]:
        return []

    async def start(self) -> None:
        await self.db.run(self.db.check_connection)
        await self.db.run(self.db.migrate)
        self.subscription = self.runtime.bus.subscribe(
            list(EVENT_TOPICS), "profile", self.applier.handle
        )
        await self.subscription.start()

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.stop()


service = ServiceDefinition(
    name="profile",
    create=ProfileApp,
    description="Identity resolution, single customer view, computed traits, consent, GDPR.",
    migrations=MIGRATIONS,
)
