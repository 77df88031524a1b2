"""Audience sync end to end: identify events → profile → segment membership on the bus →
delivery's audience runner → the Mailchimp connector → the fake Mailchimp audience.

The profile, segment and delivery services are the real ones on one Platform; only
Mailchimp is a fake (the plugin's own fake server)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from audience_harness import AudienceStack, audience_settings
from delivery_harness import eventually

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.segment.v1 import segment_pb2
from mailwright.testing.fakes import FakeServer, Fault
from mailwright_mailchimp.fake import FakeMailchimp

VIP = 'trait plan = "vip"'


@pytest.fixture
def mailchimp() -> FakeMailchimp:
    return FakeMailchimp()


@pytest.fixture
def mailchimp_server(
    mailchimp: FakeMailchimp, fake_server: Callable[..., FakeServer]
) -> FakeServer:
    return fake_server(mailchimp.app())


@pytest.fixture
async def stack(
    tmp_path: Path, mailchimp: FakeMailchimp, mailchimp_server: FakeServer
) -> AsyncIterator[AudienceStack]:
    made = await AudienceStack.start(audience_settings(tmp_path, mailchimp, mailchimp_server))
    try:
        yield made
    finally:
        await made.stop()


async def until_tagged(
    mailchimp: FakeMailchimp, tag: str, want: set[str], within: float = 20
) -> None:
    async def check() -> bool:
        return mailchimp.tagged(tag) == want

    try:
        await eventually(check, within=within)
    except AssertionError:
        raise AssertionError(f"tag {tag!r}: wanted {want}, got {mailchimp.tagged(tag)}") from None


async def test_entering_a_segment_tags_the_person_and_exiting_untags_them(
    stack: AudienceStack, mailchimp: FakeMailchimp
) -> None:
    await stack.segment("vip", VIP)
    made = await stack.destination("newsletter", {"vip": "VIP"})
    assert made.name == "workspaces/acme/audienceDestinations/newsletter"
    assert made.state == pb.AUDIENCE_DESTINATION_STATE_ACTIVE

    await stack.person("u-ann", email="ann@example.com", first_name="Ann", plan="vip")
    await stack.person("u-bob", email="bob@example.com", first_name="Bob", plan="free")
    await until_tagged(mailchimp, "VIP", {"ann@example.com"})
    member = mailchimp.member("ann@example.com")
    assert member is not None
    assert member["merge_fields"]["FNAME"] == "Ann"

    await stack.person("u-ann", plan="free")
    await until_tagged(mailchimp, "VIP", set())
    status = await stack.settled(made.name)
    (segment,) = status.segments
    assert segment.synced_members == 0
    assert segment.added == 1
    assert segment.removed == 1
    assert segment.failed == 0


async def test_a_resync_pushes_members_who_were_in_the_segment_before_the_destination(
    stack: AudienceStack, mailchimp: FakeMailchimp
) -> None:
    await stack.segment("vip", VIP)
    await stack.person("u-cy", email="cy@example.com", plan="vip")
    await stack.person("u-di", email="di@example.com", plan="vip")

    async def two_members() -> bool:
        reply = await stack.clients.segment.ListMembers(
            segment_pb2.ListMembersRequest(parent="workspaces/acme/segments/vip")
        )
        return len(reply.members) == 2

    await eventually(two_members, within=15)
    made = await stack.destination("crm", {"vip": "vip-list"})
    await until_tagged(mailchimp, "vip-list", {"cy@example.com", "di@example.com"})
    status = await stack.settled(made.name)
    assert status.segments[0].resync_progress.done == 2
    assert status.segments[0].synced_members == 2


async def test_a_provider_429_is_retried_until_the_member_is_tagged(
    stack: AudienceStack, mailchimp: FakeMailchimp, mailchimp_server: FakeServer
) -> None:
    await stack.segment("vip", VIP)
    made = await stack.destination("newsletter", {"vip": "VIP"})
    await stack.settled(made.name)
    mailchimp_server.fail(
        Fault(
            429,
            body={"title": "Too Many Requests", "status": 429, "detail": "slow down"},
            headers={"Retry-After": "1"},
            times=2,
            path="/3.0/lists",
        )
    )
    await stack.person("u-ed", email="ed@example.com", plan="vip")

    async def error_shown() -> bool:
        status = await stack.status(made.name)
        return "rate_limited" in status.segments[0].last_error

    await eventually(error_shown, within=15)
    await until_tagged(mailchimp, "VIP", {"ed@example.com"})
    status = await stack.settled(made.name)
    assert status.segments[0].last_error == ""
    assert status.segments[0].synced_members == 1


async def test_a_member_mailchimp_refuses_is_recorded_and_the_others_sync(
    stack: AudienceStack, mailchimp: FakeMailchimp
) -> None:
    await stack.segment("vip", VIP)
    made = await stack.destination("newsletter", {"vip": "VIP"})
    await stack.settled(made.name)
    await stack.person("u-fay", email="fay@example.com", plan="vip")
    await stack.person("u-gus", plan="vip")  # no address: Mailchimp cannot take him
    await until_tagged(mailchimp, "VIP", {"fay@example.com"})

    async def failure_recorded() -> bool:
        return bool((await stack.status(made.name)).failures)

    await eventually(failure_recorded, within=15)
    status = await stack.settled(made.name)
    (failure,) = status.failures
    assert failure.segment == "vip"
    assert failure.kind == "invalid"
    assert status.segments[0].failed == 1


async def test_another_workspace_or_an_unknown_destination_is_refused(
    stack: AudienceStack,
) -> None:
    await stack.segment("vip", VIP)
    await stack.destination("newsletter", {"vip": "VIP"})
    runtime = stack.platform.runtime
    assert runtime is not None
    token = runtime.authority.issue("other", ["audiences:read", "audiences:write"])
    outsider = stack.platform.clients(token)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await outsider.delivery.GetAudienceDestination(
                pb.GetAudienceDestinationRequest(
                    name="workspaces/acme/audienceDestinations/newsletter"
                )
            )
        assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await outsider.delivery.GetAudienceSyncStatus(
                pb.GetAudienceSyncStatusRequest(
                    name="workspaces/other/audienceDestinations/newsletter"
                )
            )
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as forged:
            await outsider.delivery.ResyncAudienceDestination(
                pb.ResyncAudienceDestinationRequest(
                    name="workspaces/other/audienceDestinations/../acme/newsletter"
                )
            )
        assert forged.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as crossed:
            await outsider.delivery.CreateAudienceDestination(
                pb.CreateAudienceDestinationRequest(
                    parent="workspaces/other",
                    audience_destination_id="steal",
                    audience_destination=pb.AudienceDestination(
                        connector="mailchimp",
                        segments=[pb.AudienceSegment(segment="workspaces/acme/segments/vip")],
                    ),
                )
            )
        assert crossed.value.code() is grpc.StatusCode.PERMISSION_DENIED
    finally:
        await outsider.close()


async def test_bad_destinations_are_refused_naming_the_field(stack: AudienceStack) -> None:
    await stack.segment("vip", VIP)

    async def create(**fields: Any) -> grpc.aio.AioRpcError:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.clients.delivery.CreateAudienceDestination(
                pb.CreateAudienceDestinationRequest(
                    parent="workspaces/acme",
                    audience_destination_id="bad",
                    audience_destination=pb.AudienceDestination(**fields),
                )
            )
        return refused.value

    unknown_segment = await create(
        connector="mailchimp", segments=[pb.AudienceSegment(segment="nobody")]
    )
    assert unknown_segment.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "segments[0].segment" in (unknown_segment.details() or "")
    no_sync = await create(connector="smtp", segments=[pb.AudienceSegment(segment="vip")])
    assert no_sync.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "no audience sync" in (no_sync.details() or "")
    no_section = await create(
        connector="mailchimp",
        connector_config="mailchimp-eu",
        segments=[pb.AudienceSegment(segment="vip")],
    )
    assert no_section.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "mailchimp-eu" in (no_section.details() or "")
    bad_trait = await create(
        connector="mailchimp", segments=[pb.AudienceSegment(segment="vip")], traits=["a b"]
    )
    assert bad_trait.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "traits[0]" in (bad_trait.details() or "")


def member_puts(server: FakeServer) -> Counter[str]:
    """PUTs of list members by subscriber hash (one per member in each change sent)."""
    return Counter(
        r.path.rsplit("/", 1)[-1]
        for r in server.requests
        if r.method == "PUT" and "/members/" in r.path
    )


async def test_a_restart_mid_sync_resends_only_the_change_in_flight(tmp_path: Path) -> None:
    slow = FakeMailchimp(latency=0.3)
    server = FakeServer(slow.app()).start()
    config = audience_settings(
        tmp_path,
        slow,
        server,
        grace=0.1,
        audience_batch_size=2,
        audience_concurrency=1,
        audience_lease="1s",
    )
    first = await AudienceStack.start(config)
    try:
        await first.segment("vip", VIP)
        made = await first.destination("newsletter", {"vip": "VIP"})
        await first.settled(made.name)
        emails = {f"p{n}@example.com" for n in range(6)}
        for n in range(6):
            await first.person(f"u-{n}", email=f"p{n}@example.com", plan="vip")

        async def all_recorded() -> bool:
            status = (await first.status(made.name)).segments[0]
            return status.pending + status.synced_members == 6

        await eventually(all_recorded, within=20)

        async def second_change_sent() -> bool:
            return len(member_puts(server)) >= 3

        await eventually(second_change_sent, within=20)
    finally:
        await first.stop()  # the change in flight is cut off (grace 0.1 s)
    assert slow.tagged("VIP") != emails

    second = await AudienceStack.start(config)
    try:
        await until_tagged(slow, "VIP", emails, within=30)
        status = await second.settled(made.name)
    finally:
        await second.stop()
        server.stop()
    assert status.segments[0].synced_members == 6
    puts = member_puts(server)
    assert len(puts) == 6
    resent = [member for member, count in puts.items() if count > 1]
    assert len(resent) <= 2, f"more than the change in flight was sent again: {puts}"
    assert all(count <= 2 for count in puts.values())


async def test_entering_and_exiting_on_postgresql_and_redis(
    tmp_path: Path,
    mailchimp: FakeMailchimp,
    mailchimp_server: FakeServer,
    postgres_url: str,
    redis_url: str,
    redis_namespace: str,
) -> None:
    config = audience_settings(
        tmp_path,
        mailchimp,
        mailchimp_server,
        database_url=postgres_url,
        bus_url=redis_url,
        namespace=redis_namespace,
    )
    stack = await AudienceStack.start(config)
    try:
        await stack.segment("vip", VIP)
        made = await stack.destination("newsletter", {"vip": "VIP"})
        await stack.person("u-hal", email="hal@example.com", first_name="Hal", plan="vip")
        await stack.person("u-ivy", email="ivy@example.com", first_name="Ivy", plan="vip")
        await until_tagged(mailchimp, "VIP", {"hal@example.com", "ivy@example.com"})
        await stack.person("u-hal", plan="free")
        await until_tagged(mailchimp, "VIP", {"ivy@example.com"})
        status = await stack.settled(made.name)
        assert status.segments[0].synced_members == 1
    finally:
        await stack.stop()


async def test_a_segment_added_by_an_update_is_resynced_and_a_paused_destination_waits(
    stack: AudienceStack, mailchimp: FakeMailchimp
) -> None:
    await stack.segment("vip", VIP)
    await stack.segment("berlin", 'trait city = "Berlin"')
    made = await stack.destination("newsletter", {"vip": "VIP"})
    await stack.person("u-kim", email="kim@example.com", plan="vip", city="Berlin")
    await until_tagged(mailchimp, "VIP", {"kim@example.com"})

    updated = await stack.clients.delivery.UpdateAudienceDestination(
        pb.UpdateAudienceDestinationRequest(
            audience_destination=pb.AudienceDestination(
                name=made.name,
                segments=[
                    pb.AudienceSegment(segment="vip", audience_name="VIP"),
                    pb.AudienceSegment(segment="berlin", audience_name="Berlin"),
                ],
                state=pb.AUDIENCE_DESTINATION_STATE_PAUSED,
            ),
            update_mask=["segments", "state"],
        )
    )
    assert [s.segment for s in updated.audience_destination.segments] == ["vip", "berlin"]
    assert updated.audience_destination.traits == ["first_name"]  # not in the mask: kept

    async def resync_queued() -> bool:
        status = await stack.status(made.name)
        berlin = next(s for s in status.segments if s.segment == "berlin")
        return berlin.resync_state == pb.RESYNC_STATE_IDLE and berlin.pending == 1

    await eventually(resync_queued, within=15)
    assert mailchimp.tagged("Berlin") == set()  # paused: recorded, not synced

    await stack.clients.delivery.UpdateAudienceDestination(
        pb.UpdateAudienceDestinationRequest(
            audience_destination=pb.AudienceDestination(
                name=made.name, state=pb.AUDIENCE_DESTINATION_STATE_ACTIVE
            ),
            update_mask=["state"],
        )
    )
    await until_tagged(mailchimp, "Berlin", {"kim@example.com"})
