"""The profile service through gRPC, on an in-process Platform: consumer, every RPC, errors.

The consumer tests run on both bus backends (memory and Redis Streams); the RPC tests on
the memory bus, which they do not depend on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.bus import Message
from mailwright.runtime.clients import Clients
from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings
from mailwright_profile.simulate import identify, page, track

T = TypeVar("T")
FAST = {
    "retry_backoff": 0.05,
    "claim_idle": 0.3,
    "lease_ttl": 0.6,
    "max_deliveries": 3,
    "outbox_interval": 0.2,
    "outbox_grace": 0.0,
}
ALL_SCOPES = ["profiles:read", "profiles:write", "profiles:delete"]


@dataclass
class Service:
    platform: Platform
    clients: Clients
    changed: list[profile_pb2.ProfileChanged]
    deleted: list[profile_pb2.ProfileDeleted]

    async def publish(self, *events: event_pb2.Event) -> None:
        assert self.platform.runtime is not None
        for event in events:
            key = f"{event.workspace}:{event.user_id or event.anonymous_id}"
            await self.platform.runtime.bus.publish(
                f"events.{event.family}", event.SerializeToString(), key=key
            )

    def client(self, workspace: str = "acme", scopes: list[str] | None = None) -> Clients:
        assert self.platform.runtime is not None
        token = self.platform.runtime.authority.issue(workspace, scopes or ALL_SCOPES)
        return self.platform.clients(token)


async def eventually(check: Callable[[], Awaitable[T]], within: float = 10.0) -> T:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await check()
        except (AssertionError, grpc.aio.AioRpcError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _service(tmp_path: Path, bus_url: str, namespace: str) -> AsyncIterator[Service]:
    settings = Settings(
        data_dir=tmp_path / "data",
        grpc_port=0,
        http_port=0,
        auth_secret="p" * 48,
        bus_url=bus_url,
        namespace=namespace,
        shutdown_grace=2,
        services={"profile": FAST},
    )
    platform = Platform(settings, resolve_services(["profile"]))
    await platform.start()
    assert platform.runtime is not None
    changed: list[profile_pb2.ProfileChanged] = []
    deleted: list[profile_pb2.ProfileDeleted] = []

    async def on_changed(message: Message) -> None:
        changed.append(profile_pb2.ProfileChanged.FromString(message.value))

    async def on_deleted(message: Message) -> None:
        deleted.append(profile_pb2.ProfileDeleted.FromString(message.value))

    from mailwright.testing.bus import FAST_CONSUMER_OPTIONS

    listeners = [
        platform.runtime.bus.subscribe(
            "profiles.changed", "watch", on_changed, options=FAST_CONSUMER_OPTIONS
        ),
        platform.runtime.bus.subscribe(
            "profiles.deleted", "watch-deleted", on_deleted, options=FAST_CONSUMER_OPTIONS
        ),
    ]
    for listener in listeners:
        await listener.start()
    service = Service(platform, platform.clients(""), changed, deleted)
    service.clients = service.client()
    try:
        yield service
    finally:
        await service.clients.close()
        for listener in listeners:
            await listener.stop()
        await platform.stop()


@pytest.fixture(params=["memory", "redis"])
async def any_bus(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    if request.param == "memory":
        url, namespace = "memory://", f"mem-{uuid.uuid4().hex[:10]}"
    else:
        url = request.getfixturevalue("redis_url")
        namespace = request.getfixturevalue("redis_namespace")
    async for service in _service(tmp_path, url, namespace):
        yield service


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    async for service in _service(tmp_path, "memory://", f"mem-{uuid.uuid4().hex[:10]}"):
        yield service


def violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    fields: list[str] = []
    if status is None:
        return fields
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields += [v.field for v in bad.field_violations]
    return fields


async def lookup(clients: Clients, kind: str, value: str) -> profile_pb2.Profile:
    reply = await clients.profile.LookupProfile(
        profile_pb2.LookupProfileRequest(
            parent="workspaces/acme", identity=common_pb2.Identity(type=kind, value=value)
        )
    )
    return reply.profile


async def known(service: Service, kind: str, value: str) -> profile_pb2.Profile:
    return await eventually(lambda: lookup(service.clients, kind, value))


# -- the consumer, on both buses ------------------------------------------------------------


async def test_events_on_the_bus_build_a_profile_and_are_announced(any_bus: Service) -> None:
    await any_bus.publish(
        page("Home", anonymous_id="a1", message_id="p1"),
        identify(user_id="u1", anonymous_id="a1", message_id="i1", traits={"first_name": "Ada"}),
    )
    profile = await known(any_bus, "user_id", "u1")

    async def announced() -> list[str]:
        # at least once: with no relay grace (as here) a message may come twice
        events = [e.message_id for c in any_bus.changed for e in c.events]
        assert set(events) == {"i1", "p1"}
        return events

    await eventually(announced)
    assert all(e.profile_id == profile.profile_id for c in any_bus.changed for e in c.events)
    assert any(dict(c.traits) == {"first_name": "Ada"} for c in any_bus.changed)


async def test_a_poisoned_event_goes_to_the_dead_letters_and_blocks_nothing(
    any_bus: Service,
) -> None:
    runtime = any_bus.platform.runtime
    assert runtime is not None
    await runtime.bus.publish("events.track", b"\xff\xffnot an event", key="acme:u1")
    await any_bus.publish(track("Product Viewed", user_id="u1", message_id="after-poison"))
    profile = await known(any_bus, "user_id", "u1")
    assert profile.computed_traits["product_views_7d"] == 1

    async def dead() -> int:
        letters = await runtime.bus.dead_letters("events.track")
        assert len(letters) == 1
        return len(letters)

    await eventually(dead)
    (letter,) = await runtime.bus.dead_letters("events.track")
    assert (letter.group, letter.delivery_count) == ("profile", 3)
    assert "PoisonEvent" in letter.error


async def test_redelivered_events_change_nothing(any_bus: Service) -> None:
    event = track("Order Completed", user_id="u1", message_id="o1", properties={"revenue": "5"})
    await any_bus.publish(event, event, event)
    profile = await known(any_bus, "user_id", "u1")
    await asyncio.sleep(0.3)
    again = await lookup(any_bus.clients, "user_id", "u1")
    assert again.computed_traits["orders_count"] == 1
    assert again.version == profile.version


# -- reading ---------------------------------------------------------------------------------


async def test_errors_name_the_field_and_use_the_right_code(svc: Service) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.GetProfile(profile_pb2.GetProfileRequest(name="profiles/x"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error.value) == ["name"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.GetProfile(
            profile_pb2.GetProfileRequest(name="workspaces/acme/profiles/nobody")
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.LookupProfile(
            profile_pb2.LookupProfileRequest(
                parent="workspaces/acme", identity=common_pb2.Identity(type="email", value="nope")
            )
        )
    assert violations(error.value) == ["identity.value"]


async def test_another_workspace_sees_nothing(svc: Service) -> None:
    await svc.publish(identify(user_id="u1", traits={"plan": "pro"}))
    profile = await known(svc, "user_id", "u1")
    other = svc.client("globex")
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await other.profile.GetProfile(profile_pb2.GetProfileRequest(name=profile.name))
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await other.profile.GetProfile(
                profile_pb2.GetProfileRequest(
                    name=f"workspaces/globex/profiles/{profile.profile_id}"
                )
            )
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        await other.close()


async def test_batch_get_lists_the_missing_and_follows_merges(svc: Service) -> None:
    await svc.publish(page(anonymous_id="a1", message_id="p1"))
    anonymous = await known(svc, "anonymous_id", "a1")
    await svc.publish(identify(user_id="u1", message_id="i1"))
    user = await known(svc, "user_id", "u1")
    await svc.publish(identify(user_id="u1", anonymous_id="a1", message_id="i2"))

    async def merged() -> profile_pb2.BatchGetProfilesResponse:
        reply = await svc.clients.profile.BatchGetProfiles(
            profile_pb2.BatchGetProfilesRequest(
                parent="workspaces/acme",
                names=[anonymous.name, user.name, "workspaces/acme/profiles/ghost"],
            )
        )
        assert reply.profiles[0].profile_id == reply.profiles[1].profile_id
        return reply

    reply = await eventually(merged)
    assert list(reply.missing) == ["workspaces/acme/profiles/ghost"]
    assert len(reply.profiles[0].merged_profiles) == 1
    # the batch read (set-based) says what the single read says
    single = await svc.clients.profile.GetProfile(profile_pb2.GetProfileRequest(name=user.name))
    batch = reply.profiles[1]
    assert [(i.identity.type, i.identity.value) for i in batch.identities] == [
        (i.identity.type, i.identity.value) for i in single.profile.identities
    ]
    assert batch.traits == single.profile.traits
    assert batch.merged_profiles == single.profile.merged_profiles
    assert batch.version == single.profile.version


async def test_list_profiles_filters_and_pages_with_bound_tokens(svc: Service) -> None:
    await svc.publish(
        *[
            identify(user_id=f"u{i}", traits={"plan": "pro" if i % 2 else "free", "n": i})
            for i in range(7)
        ]
    )
    await known(svc, "user_id", "u6")

    async def listed() -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            reply = await svc.clients.profile.ListProfiles(
                profile_pb2.ListProfilesRequest(
                    parent="workspaces/acme",
                    filter='traits.plan = "pro"',
                    page_size=2,
                    page_token=token,
                )
            )
            seen += [p.traits["plan"] for p in reply.profiles]
            token = reply.next_page_token
            if not token:
                return seen
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await svc.clients.profile.ListProfiles(
                    profile_pb2.ListProfilesRequest(
                        parent="workspaces/acme", filter='traits.plan = "free"', page_token=token
                    )
                )
            assert violations(error.value) == ["page_token"]

    seen = await eventually(listed)
    assert seen == ["pro"] * 3
    computed = await svc.clients.profile.ListProfiles(
        profile_pb2.ListProfilesRequest(
            parent="workspaces/acme",
            filter='computed_traits.lifecycle_stage = "prospect" AND traits.n >= 5',
        )
    )
    assert sorted(p.traits["n"] for p in computed.profiles) == [5, 6]


async def test_profile_events_page_newest_first(svc: Service) -> None:
    await svc.publish(*[page(f"P{i}", anonymous_id="a1", message_id=f"p{i}") for i in range(5)])
    profile = await known(svc, "anonymous_id", "a1")

    async def all_five() -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            reply = await svc.clients.profile.ListProfileEvents(
                profile_pb2.ListProfileEventsRequest(
                    parent=profile.name, page_size=2, page_token=token
                )
            )
            names += [e.message_id for e in reply.events]
            assert all(e.profile_id == profile.profile_id for e in reply.events)
            token = reply.next_page_token
            if not token:
                assert len(names) == 5
                return names

    names = await eventually(all_five)
    assert sorted(names) == [f"p{i}" for i in range(5)]


async def test_the_schema_lists_observed_and_computed_traits(svc: Service) -> None:
    await svc.publish(identify(user_id="u1", traits={"plan": "pro", "age": 3}))
    await known(svc, "user_id", "u1")
    reply = await svc.clients.profile.GetProfileSchema(
        profile_pb2.GetProfileSchemaRequest(parent="workspaces/acme")
    )
    by_key = {t.key: t for t in reply.traits}
    assert by_key["plan"].type == profile_pb2.TRAIT_TYPE_STRING
    assert not by_key["plan"].computed
    assert by_key["age"].type == profile_pb2.TRAIT_TYPE_NUMBER
    assert by_key["orders_count"].computed
    assert by_key["last_purchase_date"].type == profile_pb2.TRAIT_TYPE_TIMESTAMP
    # The predictive scorers' outputs, registered through the plugin hook.
    assert by_key["churn_risk"].computed
    assert by_key["churn_risk"].source == "churn"
    assert by_key["recommended_products"].type == profile_pb2.TRAIT_TYPE_LIST


async def test_events_re_score_people_with_the_models_trained_on_the_service_data(
    svc: Service,
) -> None:
    from mailwright_profile.app import ProfileApp

    (app,) = svc.platform.apps
    assert isinstance(app, ProfileApp)
    now = datetime.now(UTC)
    for user, hour in (("u1", 9), ("u2", 9), ("u3", 20)):
        for day in range(1, 4):
            moment = (now - timedelta(days=day)).replace(hour=hour, minute=5)
            await svc.publish(track("Email Opened", user_id=user, at=moment))
    await eventually(lambda: _events_of(svc, "u3", 3))
    outcomes = await asyncio.to_thread(app.predictor.train, "acme", now, ["send-time"])
    assert outcomes[0].version is not None
    app.rescorer.ttl = 0.0  # pick the new version up at once
    await svc.publish(
        track("Email Opened", user_id="u3", at=now.replace(hour=20, minute=30) - timedelta(days=4))
    )

    async def scored() -> profile_pb2.Profile:
        profile = await lookup(svc.clients, "user_id", "u3")
        assert "best_send_hour" in profile.computed_traits
        assert profile.computed_traits["best_send_hour"] == 20
        return profile

    profile = await eventually(scored)
    assert "best_send_day" in profile.computed_traits
    change = await eventually(lambda: _announced_score(svc, profile.profile_id))
    assert change.version == profile.version


async def _events_of(svc: Service, user: str, count: int) -> None:
    profile = await lookup(svc.clients, "user_id", user)
    reply = await svc.clients.profile.ListProfileEvents(
        profile_pb2.ListProfileEventsRequest(parent=profile.name)
    )
    assert len(reply.events) >= count


async def _announced_score(svc: Service, profile_id: str) -> profile_pb2.ProfileChanged:
    found = [
        c
        for c in svc.changed
        if c.profile_id == profile_id and "best_send_hour" in c.computed_traits
    ]
    assert found
    return found[-1]


# -- identities --------------------------------------------------------------------------


async def test_manual_merge_is_idempotent_and_can_be_undone(svc: Service) -> None:
    await svc.publish(
        identify(user_id="u1", message_id="i1"), page(anonymous_id="a9", message_id="p9")
    )
    user = await known(svc, "user_id", "u1")
    other = await known(svc, "anonymous_id", "a9")
    request = profile_pb2.MergeProfilesRequest(
        parent="workspaces/acme",
        target=user.name,
        sources=[other.name],
        reason_text="same",
        request_id="m-1",
    )
    first = await svc.clients.profile.MergeProfiles(request)
    second = await svc.clients.profile.MergeProfiles(request)
    assert first == second
    (merge,) = first.merges
    assert merge.reason == profile_pb2.MERGE_REASON_MANUAL
    undone = await svc.clients.profile.UnmergeProfile(
        profile_pb2.UnmergeProfileRequest(merge=merge.name, request_id="u-1")
    )
    assert undone.restored_profile.profile_id == other.profile_id
    assert [i.identity.value for i in undone.restored_profile.identities] == ["a9"]


async def test_a_merge_the_policy_refuses_is_a_failed_precondition(svc: Service) -> None:
    await svc.publish(identify(user_id="u1"), identify(user_id="u2"))
    first = await known(svc, "user_id", "u1")
    second = await known(svc, "user_id", "u2")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.MergeProfiles(
            profile_pb2.MergeProfilesRequest(
                parent="workspaces/acme", target=first.name, sources=[second.name]
            )
        )
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "user_id" in (error.value.details() or "")
    explained = await svc.clients.profile.ExplainIdentity(
        profile_pb2.ExplainIdentityRequest(parent="workspaces/acme", profile=first.name)
    )
    assert len(explained.refused) == 1


async def test_explain_says_why_two_identities_are_one_profile(svc: Service) -> None:
    await svc.publish(page(anonymous_id="a1", message_id="p1"))
    await known(svc, "anonymous_id", "a1")
    await svc.publish(identify(user_id="u1", message_id="i1", traits={"email": "ada@example.com"}))
    await known(svc, "user_id", "u1")
    await svc.publish(identify(user_id="u1", anonymous_id="a1", message_id="i2"))

    async def joined() -> profile_pb2.ExplainIdentityResponse:
        reply = await svc.clients.profile.ExplainIdentity(
            profile_pb2.ExplainIdentityRequest(
                parent="workspaces/acme",
                left=common_pb2.Identity(type="anonymous_id", value="a1"),
                right=common_pb2.Identity(type="email", value="Ada@Example.com"),
            )
        )
        assert reply.same_profile
        return reply

    reply = await eventually(joined)
    assert [m.message_id for m in reply.merges] == ["i2"]
    assert "are one profile" in reply.summary
    assert "i2" in reply.summary


async def test_merge_policy_is_read_validated_and_updated(svc: Service) -> None:
    name = "workspaces/acme/mergePolicy"
    default = await svc.clients.profile.GetMergePolicy(profile_pb2.GetMergePolicyRequest(name=name))
    assert list(default.policy.unique_identity_types) == ["user_id"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.UpdateMergePolicy(
            profile_pb2.UpdateMergePolicyRequest(
                policy=profile_pb2.MergePolicy(
                    name=name,
                    unique_identity_types=["nope"],
                    review_threshold=0.95,
                    auto_merge_threshold=0.9,
                )
            )
        )
    assert violations(error.value) == ["policy.unique_identity_types[0]", "policy.review_threshold"]
    updated = await svc.clients.profile.UpdateMergePolicy(
        profile_pb2.UpdateMergePolicyRequest(
            policy=profile_pb2.MergePolicy(
                name=name, unique_identity_types=["user_id", "email"], source_priority=["crm"]
            )
        )
    )
    assert list(updated.policy.source_priority) == ["crm"]
    again = await svc.clients.profile.GetMergePolicy(profile_pb2.GetMergePolicyRequest(name=name))
    assert again.policy == updated.policy


async def test_resolve_records_dry_run_then_apply(svc: Service) -> None:
    records = [
        profile_pb2.Record(
            record_id="r1",
            fields={
                "first_name": "Grace",
                "last_name": "Hopper",
                "birth_date": "1906-12-09",
                "email": "grace@navy.example",
            },
            source="crm",
        ),
        profile_pb2.Record(
            record_id="r2",
            fields={
                "first_name": "Grace",
                "last_name": "Hopper",
                "birth_date": "12/09/1906",
                "phone": "+1 202 555 0199",
            },
            source="crm",
        ),
        profile_pb2.Record(record_id="r3", fields={"email": "bad"}, source="crm"),
    ]
    dry = await svc.clients.profile.ResolveRecords(
        profile_pb2.ResolveRecordsRequest(parent="workspaces/acme", records=records)
    )
    decisions = {r.record_id: r.decision for r in dry.resolutions}
    assert decisions["r2"] == profile_pb2.MATCH_DECISION_MATCHED
    assert [v.field for v in dry.resolutions[2].violations] == ["fields.email"]
    applied = await svc.clients.profile.ResolveRecords(
        profile_pb2.ResolveRecordsRequest(
            parent="workspaces/acme", records=records, apply=True, request_id="r-1"
        )
    )
    profile = {r.record_id: r.profile for r in applied.resolutions}
    assert profile["r1"] == profile["r2"] != ""
    grace = await lookup(svc.clients, "phone", "+12025550199")
    assert grace.name == profile["r1"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.ResolveRecords(
            profile_pb2.ResolveRecordsRequest(
                parent="workspaces/acme",
                records=[profile_pb2.Record(record_id="x", fields={"colour": "red"})],
            )
        )
    assert violations(error.value) == ['records[0].fields["colour"]']


# -- consent and privacy -------------------------------------------------------------------


async def test_update_consent_is_kept_with_its_proof_and_announced(svc: Service) -> None:
    await svc.publish(identify(user_id="u1"))
    profile = await known(svc, "user_id", "u1")
    reply = await svc.clients.profile.UpdateConsent(
        profile_pb2.UpdateConsentRequest(
            name=profile.name,
            request_id="c-1",
            consent=profile_pb2.Consent(
                channel=profile_pb2.CHANNEL_EMAIL,
                status=profile_pb2.CONSENT_STATUS_SUBSCRIBED,
                source="form",
                proof=profile_pb2.ConsentProof(
                    ip="198.51.100.4", form="newsletter", text="Yes please"
                ),
            ),
        )
    )
    (consent,) = reply.profile.consents
    assert (consent.status, consent.source, consent.proof.form) == (
        profile_pb2.CONSENT_STATUS_SUBSCRIBED,
        "form",
        "newsletter",
    )
    assert reply.profile.computed_traits["email_consent"] == "subscribed"

    async def announced() -> None:
        assert any(c.consents for c in svc.changed)

    await eventually(announced)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.UpdateConsent(
            profile_pb2.UpdateConsentRequest(name=profile.name, consent=profile_pb2.Consent())
        )
    assert violations(error.value) == ["consent.channel", "consent.status"]


async def test_delete_erases_and_announces_then_the_profile_is_gone(svc: Service) -> None:
    await svc.publish(identify(user_id="u1", traits={"email": "Ada@Example.com"}))
    profile = await known(svc, "user_id", "u1")
    reply = await svc.clients.profile.DeleteProfile(
        profile_pb2.DeleteProfileRequest(name=profile.name, request_id="d-1")
    )
    assert (reply.identities_erased, reply.events_erased) == (2, 1)

    async def announced() -> profile_pb2.ProfileDeleted:
        (deleted,) = svc.deleted
        return deleted

    deleted = await eventually(announced)
    assert deleted.profile_id == profile.profile_id
    assert len(deleted.email_hashes) == 1
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await svc.clients.profile.GetProfile(profile_pb2.GetProfileRequest(name=profile.name))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_export_returns_everything_as_json(svc: Service) -> None:
    await svc.publish(identify(user_id="u1", message_id="i1", traits={"plan": "pro"}))
    profile = await known(svc, "user_id", "u1")
    reply = await svc.clients.profile.ExportProfile(
        profile_pb2.ExportProfileRequest(name=profile.name)
    )
    assert reply.content_type == "application/json"
    document: dict[str, Any] = json.loads(reply.content)
    assert document["traits"]["plan"]["value"] == "pro"
    assert [e["message_id"] for e in document["events"]] == ["i1"]


async def test_deleting_needs_the_delete_scope(svc: Service) -> None:
    await svc.publish(identify(user_id="u1"))
    profile = await known(svc, "user_id", "u1")
    reader = svc.client(scopes=["profiles:read", "profiles:write"])
    try:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await reader.profile.DeleteProfile(profile_pb2.DeleteProfileRequest(name=profile.name))
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await reader.close()
