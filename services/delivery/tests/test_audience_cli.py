"""`mailwright audiences …` against a running delivery (with the real profile and segment
services) syncing to the fake Mailchimp: apply a destination file, resync it with a
progress bar, read its status; `mailwright connectors sync` points an audience-only
connector there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from audience_harness import AudienceStack, audience_settings
from click.testing import CliRunner, Result
from delivery_harness import eventually

from mailwright.cli import cli
from mailwright.segment.v1 import segment_pb2
from mailwright.testing.fakes import FakeServer
from mailwright_mailchimp.fake import FakeMailchimp


@pytest.fixture
def mailchimp() -> FakeMailchimp:
    return FakeMailchimp()


@pytest.fixture
async def stack(
    tmp_path: Path, mailchimp: FakeMailchimp, fake_server: Callable[..., FakeServer]
) -> AsyncIterator[AudienceStack]:
    server = fake_server(mailchimp.app())
    made = await AudienceStack.start(audience_settings(tmp_path, mailchimp, server))
    try:
        yield made
    finally:
        await made.stop()


async def run(stack: AudienceStack, *args: str) -> Result:
    env = {
        "MAILWRIGHT_ADDRESS": f"127.0.0.1:{stack.platform.grpc_port}",
        "MAILWRIGHT_TOKEN": stack.platform.admin_token,
        "MAILWRIGHT_WORKSPACE": "acme",
    }
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


async def test_apply_then_resync_follows_until_the_members_are_synced(
    stack: AudienceStack, mailchimp: FakeMailchimp, tmp_path: Path
) -> None:
    await stack.segment("vip", 'trait plan = "vip"')
    await stack.person("u-jo", email="jo@example.com", plan="vip")

    async def member() -> bool:
        reply = await stack.clients.segment.ListMembers(
            segment_pb2.ListMembersRequest(parent="workspaces/acme/segments/vip")
        )
        return len(reply.members) == 1

    await eventually(member, within=15)
    path = tmp_path / "newsletter.yaml"
    path.write_text(
        "id: newsletter\n"
        "connector: mailchimp\n"
        "segments: [{segment: vip, audience_name: VIP}]\n"
        "traits: [first_name]\n"
    )
    applied = await run(stack, "audiences", "apply", "-f", str(path))
    assert applied.exit_code == 0, applied.output
    assert "workspaces/acme/audienceDestinations/newsletter (active)" in applied.output

    resynced = await run(stack, "audiences", "resync", "newsletter")
    assert resynced.exit_code == 0, resynced.output
    assert "members read" in resynced.output
    assert mailchimp.tagged("VIP") == {"jo@example.com"}

    shown = await run(stack, "audiences", "status", "newsletter")
    assert shown.exit_code == 0, shown.output
    assert "vip" in shown.output

    listed = await run(stack, "audiences", "list")
    assert "newsletter" in listed.output
    assert "mailchimp" in listed.output


async def test_resync_of_an_unknown_destination_fails_with_not_found(
    stack: AudienceStack,
) -> None:
    result = await run(stack, "audiences", "resync", "nowhere")
    assert result.exit_code == 1
    assert "NOT_FOUND" in result.output


async def test_connectors_sync_points_an_audience_connector_to_audiences_resync() -> None:
    args = ["connectors", "sync", "mailchimp", "--workspace", "acme"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    assert result.exit_code == 2, result.output
    assert "mailwright audiences resync" in result.output
