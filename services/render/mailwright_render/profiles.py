"""What render asks the profile service: a workspace's trait schema and one person's traits.

This is the only service render calls, and only at the edges: the schema when a
template is published or validated, a profile's traits when a preview names a profile.
The delivery path (RenderBatch) never calls out; delivery brings the traits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import grpc

from mailwright.errors import FailedPrecondition, NotFound, Unavailable
from mailwright.names import workspace_name
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.clients import Clients
from mailwright.structs import struct_to_dict
from mailwright_render.schema import ProfileSchema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Person:
    """A profile as a preview renders it."""

    profile_id: str
    email: str
    traits: dict[str, object] = field(default_factory=dict)
    locale: str | None = None
    timezone: str | None = None


class ProfileDirectory:
    """The profile service, through the runtime's client, with deadlines and a schema cache."""

    def __init__(self, clients: Clients, *, timeout: float, schema_ttl: float) -> None:
        self._clients = clients
        self._timeout = timeout
        self._schema_ttl = schema_ttl
        self._schemas: dict[str, tuple[float, ProfileSchema]] = {}

    async def schema(self, workspace: str) -> ProfileSchema:
        """The workspace's trait keys, or the fallback list when the service cannot say."""
        cached = self._schemas.get(workspace)
        if cached is not None and time.monotonic() - cached[0] < self._schema_ttl:
            return cached[1]
        try:
            reply = await self._clients.profile.GetProfileSchema(
                profile_pb2.GetProfileSchemaRequest(parent=workspace_name(workspace)),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            log.warning("profile schema of %s unavailable: %s", workspace, error.code().name)
            return ProfileSchema.fallback(f"profile service answered {error.code().name}")
        schema = ProfileSchema(frozenset(trait.key for trait in reply.traits if trait.key))
        self._schemas[workspace] = (time.monotonic(), schema)
        return schema

    async def person(self, name: str) -> Person:
        """The traits of `workspaces/{w}/profiles/{p}`, computed traits included."""
        try:
            reply = await self._clients.profile.GetProfile(
                profile_pb2.GetProfileRequest(name=name), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code is grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"profile {name} not found") from None
            if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED):
                raise FailedPrecondition(
                    f"the profile service refused {name}: {error.details()}"
                ) from None
            raise Unavailable(f"the profile service is unavailable ({code.name}); retry") from None
        profile = reply.profile
        traits = struct_to_dict(profile.traits)
        traits.update(struct_to_dict(profile.computed_traits))
        email = traits.get("email")
        if not isinstance(email, str) or not email:
            email = next(
                (i.identity.value for i in profile.identities if i.identity.type == "email"), ""
            )
        locale, timezone = traits.get("locale"), traits.get("timezone")
        return Person(
            profile_id=profile.profile_id or name.rsplit("/", 1)[-1],
            email=email,
            traits=traits,
            locale=locale if isinstance(locale, str) else None,
            timezone=timezone if isinstance(timezone, str) else None,
        )
