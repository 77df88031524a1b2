"""The distributed run: each service in its own process on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.protobuf import struct_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from mailwright.profile.v1 import profile_pb2, profile_pb2_grpc
from mailwright.runtime.auth import TokenAuthority
from mailwright.runtime.cluster import LocalCluster

SECRET = "c" * 48


async def _flow(cluster: LocalCluster) -> profile_pb2.Profile:
    token = TokenAuthority(SECRET).issue("acme", ["*"])
    metadata = [("authorization", f"Bearer {token}")]
    async with (
        grpc.aio.insecure_channel(cluster.address("ingest")) as ingest_channel,
        grpc.aio.insecure_channel(cluster.address("profile")) as profile_channel,
    ):
        ingest = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
        profiles = profile_pb2_grpc.ProfileServiceStub(profile_channel)
        traits = struct_pb2.Struct()
        traits.update({"first_name": "Grace"})
        await ingest.Identify(
            ingest_pb2.IdentifyRequest(
                parent="workspaces/acme", event=event_pb2.Event(user_id="g-1", traits=traits)
            ),
            metadata=metadata,
        )
        request = profile_pb2.LookupProfileRequest(
            parent="workspaces/acme", identity=common_pb2.Identity(type="user_id", value="g-1")
        )
        for _ in range(300):
            try:
                reply = await profiles.LookupProfile(request, metadata=metadata)
                return reply.profile
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.1)
    raise AssertionError("the event never reached the profile process")


def test_services_in_separate_processes_talk_over_the_network(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_namespace: str
) -> None:
    cluster = LocalCluster(
        database_url=postgres_url,
        redis_url=redis_url,
        data_dir=tmp_path,
        namespace=redis_namespace,
        auth_secret=SECRET,
        services=("ingest", "profile"),
    )
    with cluster:
        profile = asyncio.run(_flow(cluster))
    assert profile.traits["first_name"] == "Grace"
