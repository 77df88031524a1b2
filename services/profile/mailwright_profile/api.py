"""gRPC servicer of the profile service: protobuf in and out, the store behind."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from mailwright.common.v1 import common_pb2
from mailwright.errors import InvalidArgument, NotFound
from mailwright.names import parse, parse_workspace, resource_name
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.runtime.rpc import Context
from mailwright_profile.store import ProfileStore, StoredProfile


def _timestamp(value: object) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp


def to_proto(stored: StoredProfile) -> profile_pb2.Profile:
    profile = profile_pb2.Profile(
        name=resource_name(stored.workspace, "profiles", stored.profile_id),
        profile_id=stored.profile_id,
        version=stored.version,
        identities=[
            profile_pb2.LinkedIdentity(
                identity=common_pb2.Identity(type=kind, value=value),
                source=source,
                link_time=_timestamp(linked),
            )
            for kind, value, source, linked in stored.identities
        ],
        create_time=_timestamp(stored.created_at),
        update_time=_timestamp(stored.updated_at),
    )
    profile.traits.update(stored.traits)
    if stored.first_seen:
        profile.first_seen_time.CopyFrom(_timestamp(stored.first_seen))
    if stored.last_seen:
        profile.last_seen_time.CopyFrom(_timestamp(stored.last_seen))
    return profile


class ProfileServicer(profile_pb2_grpc.ProfileServiceServicer):
    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    async def GetProfile(
        self, request: profile_pb2.GetProfileRequest, context: Context
    ) -> profile_pb2.GetProfileResponse:
        name = parse(request.name, "name", "profiles")
        stored = await self.store.db.run(self.store.get, name.workspace, name.id)
        if stored is None:
            raise NotFound(f"profile {request.name} not found")
        return profile_pb2.GetProfileResponse(profile=to_proto(stored))

    async def LookupProfile(
        self, request: profile_pb2.LookupProfileRequest, context: Context
    ) -> profile_pb2.LookupProfileResponse:
        workspace = parse_workspace(request.parent)
        if not request.identity.type or not request.identity.value:
            raise InvalidArgument.field("identity", "type and value are required")
        value = request.identity.value
        if request.identity.type == "email":
            value = value.strip().lower()
        profile_id = await self.store.db.run(
            self.store.lookup, workspace, request.identity.type, value
        )
        if profile_id is None:
            raise NotFound(f"no profile has {request.identity.type} identity")
        stored = await self.store.db.run(self.store.get, workspace, profile_id)
        if stored is None:
            raise NotFound("profile vanished while looking it up; retry")
        return profile_pb2.LookupProfileResponse(profile=to_proto(stored))
