"""The platform serves every service with health, reflection, auth and error mapping."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from mailwright.common.v1 import event_pb2
from mailwright.delivery.v1 import delivery_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.runtime.clients import SERVICE_FULL_NAMES
from mailwright.runtime.server import Platform


def _channel(platform: Platform) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{platform.grpc_port}")


async def test_every_service_reports_serving(platform: Platform) -> None:
    async with _channel(platform) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in [*SERVICE_FULL_NAMES.values(), ""]:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_reflection_lists_every_service(platform: Platform) -> None:
    async with _channel(platform) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        async for reply in stub.ServerReflectionInfo(iter([request])):
            listed = {s.name for s in reply.list_services_response.service}
            break
    assert set(SERVICE_FULL_NAMES.values()) <= listed
    assert "grpc.health.v1.Health" in listed


def _track(workspace: str = "acme") -> ingest_pb2.TrackRequest:
    return ingest_pb2.TrackRequest(
        parent=f"workspaces/{workspace}",
        event=event_pb2.Event(event="Product Viewed", user_id="u1"),
    )


async def test_a_call_without_token_is_unauthenticated(platform: Platform) -> None:
    async with _channel(platform) as channel:
        stub = ingest_pb2_grpc_stub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Track(_track())
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_forged_token_is_unauthenticated(platform: Platform) -> None:
    async with _channel(platform) as channel:
        stub = ingest_pb2_grpc_stub(channel)
        forged = platform.admin_token[:-4] + "AAAA"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Track(_track(), metadata=[("authorization", f"Bearer {forged}")])
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_token_of_another_workspace_is_denied(platform: Platform) -> None:
    assert platform.runtime is not None
    token = platform.runtime.authority.issue("other", ["*"])
    clients = platform.clients(token)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.ingest.Track(_track("acme"))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "acme" in (caught.value.details() or "")
    finally:
        await clients.close()


async def test_a_token_without_the_scope_is_denied(platform: Platform) -> None:
    assert platform.runtime is not None
    token = platform.runtime.authority.issue("acme", ["profiles:read"])
    clients = platform.clients(token)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.ingest.Track(_track("acme"))
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "events:write" in (caught.value.details() or "")
    finally:
        await clients.close()


async def test_bad_input_carries_field_violations(platform: Platform) -> None:
    clients = platform.clients()
    try:
        request = ingest_pb2.TrackRequest(parent="workspaces/acme", event=event_pb2.Event())
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.ingest.Track(request)
    finally:
        await clients.close()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field for v in bad_request.field_violations}
    assert {"event.user_id", "event.event"} <= fields


async def test_a_malformed_parent_names_the_field(platform: Platform) -> None:
    clients = platform.clients()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.ingest.Track(ingest_pb2.TrackRequest(parent="acme", event=_track().event))
    finally:
        await clients.close()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "parent" in (caught.value.details() or "")


async def test_an_oversized_message_is_resource_exhausted(platform: Platform) -> None:
    clients = platform.clients()
    request = _track()
    request.event.properties.update({"blob": "x" * (platform.settings.max_message_bytes + 10)})
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.ingest.Track(request)
    finally:
        await clients.close()
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_an_rpc_not_built_yet_is_unimplemented(platform: Platform) -> None:
    clients = platform.clients()
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await clients.delivery.GetCampaign(
                delivery_pb2.GetCampaignRequest(name="workspaces/acme/campaigns/spring")
            )
    finally:
        await clients.close()
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def ingest_pb2_grpc_stub(channel: grpc.aio.Channel):  # type: ignore[no-untyped-def]
    from mailwright.ingest.v1 import ingest_pb2_grpc

    return ingest_pb2_grpc.IngestServiceStub(channel)
