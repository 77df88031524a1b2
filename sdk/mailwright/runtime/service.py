"""What a service is to the runtime, and what the runtime gives a service.

A service distribution declares, in the entry-point group `mailwright.services`, a
`ServiceDefinition` whose `create(runtime)` builds the service's `ServiceApp`. The runtime
never imports a service by name; `mailwright serve <name>` and `mailwright up` find them
through the entry points, so services stay apart and meet only through their contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol

import grpc
from starlette.routing import BaseRoute

from mailwright.runtime.auth import TokenAuthority
from mailwright.runtime.bus import Bus
from mailwright.runtime.clients import Clients
from mailwright.runtime.db import Database
from mailwright.runtime.kv import KeyValueStore
from mailwright.runtime.settings import SERVICE_NAMES, Settings


class ServiceApp(Protocol):
    """One running service inside a Mailwright process."""

    name: str

    def add_to_server(self, server: grpc.aio.Server) -> Sequence[str]:
        """Register the servicers; return their full service names (health, reflection)."""

    def http_routes(self) -> Sequence[BaseRoute]:
        """Routes this service adds to the HTTP edge (may be empty)."""

    async def start(self) -> None:
        """Migrate the database, start consumers and workers. Called before SERVING."""

    async def stop(self) -> None:
        """Stop consumers and workers gracefully, finishing in-flight work."""


@dataclass(frozen=True)
class ServiceDefinition:
    name: str
    create: Callable[[Runtime], ServiceApp]
    description: str = ""
    migrations: Path | None = None
    """The service's Alembic script directory, if it has tables: `mailwright migrate` runs
    it before a release rolls out, without starting the service."""


@dataclass
class Runtime:
    """What every service of a process shares: settings, bus, key-value store, clients."""

    settings: Settings
    bus: Bus
    kv: KeyValueStore
    authority: TokenAuthority
    internal_token: str
    clients: Clients
    databases: dict[str, Database] = field(default_factory=dict)

    def database(self, service: str, migrations: Path | None) -> Database:
        """The service's own database (one per service), created on first use."""
        if service not in self.databases:
            self.databases[service] = Database(
                self.settings.database_url_for(service), service=service, migrations=migrations
            )
        return self.databases[service]


class UnknownService(ValueError):
    pass


def service_definitions() -> dict[str, ServiceDefinition]:
    """Every installed service, by name."""
    found: dict[str, ServiceDefinition] = {}
    for entry in entry_points(group="mailwright.services"):
        definition = entry.load()
        if not isinstance(definition, ServiceDefinition):
            raise TypeError(f"entry point {entry.value} is not a ServiceDefinition")
        found[definition.name] = definition
    return found


def resolve_services(names: Sequence[str]) -> list[ServiceDefinition]:
    """The definitions of `names`, in the order of SERVICE_NAMES; unknown names refused."""
    available = service_definitions()
    for name in names:
        if name not in available:
            known = ", ".join(sorted(available)) or "none installed"
            raise UnknownService(f"unknown service {name!r} (known: {known})")
    order = {name: index for index, name in enumerate(SERVICE_NAMES)}
    return sorted((available[n] for n in dict.fromkeys(names)), key=lambda d: order.get(d.name, 99))
