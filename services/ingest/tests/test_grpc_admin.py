"""Taxonomy, ingest policy and write keys through the gRPC API, idempotent by request id."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from mailwright.common.v1 import event_pb2
from mailwright.ingest.v1 import ingest_pb2

from .conftest import PARENT, Ingest, violations

SIGNUP = ingest_pb2.EventDefinition(
    event="Signed Up",
    description="A person created an account.",
    tags=["acquisition"],
    weight=5,
    properties=[
        ingest_pb2.PropertySchema(
            name="plan",
            type=ingest_pb2.PROPERTY_TYPE_STRING,
            required=True,
            enum_values=["free", "pro"],
        )
    ],
)


async def test_a_new_workspace_lists_the_default_taxonomy_page_by_page(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    first = await api.ListEventDefinitions(
        ingest_pb2.ListEventDefinitionsRequest(parent=PARENT, page_size=10)
    )
    assert len(first.definitions) == 10
    assert first.next_page_token
    names: list[str] = [d.event for d in first.definitions]
    token = first.next_page_token
    while token:
        page = await api.ListEventDefinitions(
            ingest_pb2.ListEventDefinitionsRequest(parent=PARENT, page_size=10, page_token=token)
        )
        names += [d.event for d in page.definitions]
        token = page.next_page_token
    assert {"Order Completed", "Email Opened", "Page Viewed"} <= set(names)
    assert len(names) == len(set(names))


async def test_listing_by_tag_and_a_token_reused_with_another_tag(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    tagged = await api.ListEventDefinitions(
        ingest_pb2.ListEventDefinitionsRequest(parent=PARENT, tag="cart abandonment", page_size=2)
    )
    assert all("cart abandonment" in d.tags for d in tagged.definitions)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.ListEventDefinitions(
            ingest_pb2.ListEventDefinitionsRequest(
                parent=PARENT, tag="purchase", page_token=tagged.next_page_token
            )
        )
    assert violations(info.value) == ["page_token"]


async def test_an_upserted_definition_is_returned_and_enforced_at_once(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    reply = await api.UpsertEventDefinition(
        ingest_pb2.UpsertEventDefinitionRequest(parent=PARENT, definition=SIGNUP)
    )
    assert reply.definition.name == f"{PARENT}/eventDefinitions/signed-up"
    assert reply.definition.family == ingest_pb2.EVENT_FAMILY_TRACK
    got = await api.GetEventDefinition(
        ingest_pb2.GetEventDefinitionRequest(name=reply.definition.name)
    )
    assert list(got.definition.properties[0].enum_values) == ["free", "pro"]
    properties = struct_pb2.Struct()
    properties.update({"plan": "gold"})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.Track(
            ingest_pb2.TrackRequest(
                parent=PARENT,
                event=event_pb2.Event(event="Signed Up", user_id="u1", properties=properties),
            )
        )
    assert violations(info.value) == ["event.properties.plan"]


async def test_a_bad_definition_names_its_field(ingest: Ingest) -> None:
    bad = ingest_pb2.EventDefinition(
        event="Signed Up",
        properties=[
            ingest_pb2.PropertySchema(name="plan"),
            ingest_pb2.PropertySchema(name="ref", type=ingest_pb2.PROPERTY_TYPE_STRING),
            ingest_pb2.PropertySchema(name="ref", type=ingest_pb2.PROPERTY_TYPE_STRING),
        ],
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.UpsertEventDefinition(
            ingest_pb2.UpsertEventDefinitionRequest(parent=PARENT, definition=bad)
        )
    assert violations(info.value) == [
        "definition.properties[0].type",
        "definition.properties[2].name",
    ]


async def test_a_definition_named_for_another_event_is_refused(ingest: Ingest) -> None:
    wrong = ingest_pb2.EventDefinition()
    wrong.CopyFrom(SIGNUP)
    wrong.name = f"{PARENT}/eventDefinitions/order-completed"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.UpsertEventDefinition(
            ingest_pb2.UpsertEventDefinitionRequest(parent=PARENT, definition=wrong)
        )
    assert violations(info.value) == ["definition.name"]


async def test_delete_is_idempotent_by_request_id_and_then_not_found(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    name = f"{PARENT}/eventDefinitions/order-completed"
    request = ingest_pb2.DeleteEventDefinitionRequest(name=name, request_id="del-1")
    await api.DeleteEventDefinition(request)
    await api.DeleteEventDefinition(request)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.DeleteEventDefinition(
            ingest_pb2.DeleteEventDefinitionRequest(name=name, request_id="del-2")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.GetEventDefinition(ingest_pb2.GetEventDefinitionRequest(name=name))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_request_id_reused_for_another_request_is_refused(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    await api.UpsertEventDefinition(
        ingest_pb2.UpsertEventDefinitionRequest(parent=PARENT, definition=SIGNUP, request_id="r1")
    )
    other = ingest_pb2.EventDefinition(event="Signed In")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.UpsertEventDefinition(
            ingest_pb2.UpsertEventDefinitionRequest(
                parent=PARENT, definition=other, request_id="r1"
            )
        )
    assert violations(info.value) == ["request_id"]


async def test_apply_with_prune_replaces_the_taxonomy_and_validate_only_changes_nothing(
    ingest: Ingest,
) -> None:
    api = ingest.clients.ingest
    trial = ingest_pb2.EventDefinition(event="Trial Started")
    dry = await api.ApplyTaxonomy(
        ingest_pb2.ApplyTaxonomyRequest(
            parent=PARENT, definitions=[trial], prune=True, validate_only=True
        )
    )
    assert dry.created_count == 1
    assert dry.deleted_count > 20
    listed = await api.ListEventDefinitions(
        ingest_pb2.ListEventDefinitionsRequest(parent=PARENT, page_size=1000)
    )
    assert len(listed.definitions) == dry.deleted_count
    applied = await api.ApplyTaxonomy(
        ingest_pb2.ApplyTaxonomyRequest(parent=PARENT, definitions=[trial], prune=True)
    )
    assert (applied.created_count, applied.deleted_count) == (1, dry.deleted_count)
    listed = await api.ListEventDefinitions(ingest_pb2.ListEventDefinitionsRequest(parent=PARENT))
    assert [d.event for d in listed.definitions] == ["Trial Started"]


async def test_apply_names_every_bad_definition(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.ApplyTaxonomy(
            ingest_pb2.ApplyTaxonomyRequest(
                parent=PARENT,
                definitions=[SIGNUP, ingest_pb2.EventDefinition(event=""), SIGNUP],
            )
        )
    assert violations(info.value) == ["definitions[1].event", "definitions[2].event"]


async def test_the_policy_reads_back_as_updated_and_bad_updates_name_fields(
    ingest: Ingest,
) -> None:
    api = ingest.clients.ingest
    name = f"{PARENT}/ingestPolicy"
    policy = (await api.GetIngestPolicy(ingest_pb2.GetIngestPolicyRequest(name=name))).policy
    assert policy.dedup_window.ToTimedelta().total_seconds() == 24 * 3600
    assert list(policy.allowed_origins) == ["*"]
    policy.dedup_window.CopyFrom(duration_pb2.Duration(seconds=3600))
    policy.allowed_origins[:] = ["https://shop.example"]
    updated = await api.UpdateIngestPolicy(ingest_pb2.UpdateIngestPolicyRequest(policy=policy))
    assert updated.policy == policy
    policy.max_future.CopyFrom(duration_pb2.Duration(seconds=1))
    policy.allowed_origins[:] = ["shop"]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await api.UpdateIngestPolicy(ingest_pb2.UpdateIngestPolicyRequest(policy=policy))
    assert violations(info.value) == ["policy.max_future", "policy.allowed_origins[0]"]


async def test_a_malformed_policy_name_is_refused(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.GetIngestPolicy(
            ingest_pb2.GetIngestPolicyRequest(name=f"{PARENT}/policy")
        )
    assert violations(info.value) == ["name"]


async def test_a_write_key_is_shown_once_listed_by_prefix_and_revoked(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    created = await api.CreateWriteKey(
        ingest_pb2.CreateWriteKeyRequest(parent=PARENT, display_name="website")
    )
    key = created.write_key
    assert key.key.startswith("mwk_")
    assert key.key.startswith(key.key_prefix)
    listed = await api.ListWriteKeys(ingest_pb2.ListWriteKeysRequest(parent=PARENT))
    assert [(k.name, k.key, k.key_prefix) for k in listed.write_keys] == [
        (key.name, "", key.key_prefix)
    ]
    revoked = await api.RevokeWriteKey(ingest_pb2.RevokeWriteKeyRequest(name=key.name))
    assert revoked.write_key.HasField("revoke_time")
    assert revoked.write_key.key == ""


async def test_a_retried_create_returns_the_same_key(ingest: Ingest) -> None:
    api = ingest.clients.ingest
    request = ingest_pb2.CreateWriteKeyRequest(parent=PARENT, display_name="w", request_id="k-1")
    first = await api.CreateWriteKey(request)
    again = await api.CreateWriteKey(request)
    assert again.write_key == first.write_key
    listed = await api.ListWriteKeys(ingest_pb2.ListWriteKeysRequest(parent=PARENT))
    assert len(listed.write_keys) == 1


async def test_write_keys_need_the_admin_scope(ingest: Ingest) -> None:
    clients = ingest.platform.clients(ingest.token("events:write", "taxonomy:write"))
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await clients.ingest.CreateWriteKey(ingest_pb2.CreateWriteKeyRequest(parent=PARENT))
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await clients.close()


async def test_revoking_an_unknown_key_is_not_found(ingest: Ingest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ingest.clients.ingest.RevokeWriteKey(
            ingest_pb2.RevokeWriteKeyRequest(name=f"{PARENT}/writeKeys/nope")
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
