"""The plumbing end to end: Track on ingest → bus → profile consumer → GetProfile.

Runs on both bus backends (in-memory, Redis Streams) and both databases (SQLite,
PostgreSQL), through the public gRPC API only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from google.protobuf import struct_pb2

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings


@pytest.fixture(params=["memory", "redis"])
def bus_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return f"memory://slice-{id(request)}"
    url: str = request.getfixturevalue("redis_url")
    return url


@pytest.fixture
def namespace(request: pytest.FixtureRequest, bus_url: str) -> str:
    if bus_url.startswith("redis"):
        value: str = request.getfixturevalue("redis_namespace")
        return value
    return "mailwright"


async def _wait_for_profile(clients, user_id: str, want_traits: dict[str, str]):  # type: ignore[no-untyped-def]
    for _ in range(200):
        try:
            reply = await clients.profile.LookupProfile(
                profile_pb2.LookupProfileRequest(
                    parent="workspaces/acme",
                    identity=common_pb2.Identity(type="user_id", value=user_id),
                )
            )
        except Exception:
            await asyncio.sleep(0.05)
            continue
        traits = dict(reply.profile.traits)
        if all(traits.get(k) == v for k, v in want_traits.items()):
            return reply.profile
        await asyncio.sleep(0.05)
    raise AssertionError(f"profile of {user_id} never showed {want_traits}")


async def test_tracked_and_identified_person_appears_in_profile(
    tmp_path: Path, database_url: str, bus_url: str, namespace: str
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        grpc_port=0,
        http_port=0,
        auth_secret="k" * 48,
        database_url=database_url,
        bus_url=bus_url,
        namespace=namespace,
        shutdown_grace=2,
    )
    platform = Platform(settings, resolve_services(["ingest", "profile"]))
    async with platform:
        assert platform.runtime is not None
        token = platform.runtime.authority.issue("acme", ["events:write", "profiles:read"])
        clients = platform.clients(token)
        try:
            traits = struct_pb2.Struct()
            traits.update({"first_name": "Ada", "email": " Ada@Example.COM "})
            await clients.ingest.Identify(
                ingest_pb2.IdentifyRequest(
                    parent="workspaces/acme",
                    event=event_pb2.Event(user_id="u-42", anonymous_id="anon-7", traits=traits),
                )
            )
            viewed = struct_pb2.Struct()
            viewed.update({"product_id": "sku-1"})
            await clients.ingest.Track(
                ingest_pb2.TrackRequest(
                    parent="workspaces/acme",
                    event=event_pb2.Event(
                        event="Product Viewed", anonymous_id="anon-7", properties=viewed
                    ),
                )
            )
            profile = await _wait_for_profile(clients, "u-42", {"first_name": "Ada"})
            linked = {(i.identity.type, i.identity.value) for i in profile.identities}
            assert ("anonymous_id", "anon-7") in linked
            assert ("email", "ada@example.com") in linked
            again = await clients.profile.GetProfile(
                profile_pb2.GetProfileRequest(name=profile.name)
            )
            assert again.profile.profile_id == profile.profile_id
        finally:
            await clients.close()
