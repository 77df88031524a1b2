"""`mailwright templates push | preview | list` against a render service in this process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
from click.testing import CliRunner
from google.protobuf import struct_pb2

from mailwright.cli import cli
from mailwright.common.v1 import common_pb2, event_pb2
from mailwright.ingest.v1 import ingest_pb2
from mailwright.profile.v1 import profile_pb2
from mailwright.runtime.server import Platform

MARKETING = """\
---
name: spring-sale
kind: marketing
subject: "Spring, {{ first_name|default('friend') }}"
postal_address: "1 Main Street, Springfield"
---
<p>Hi *|FNAME|*</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> {{ sender.address }}</p>
"""


async def templates(platform: Platform, token: str, *args: str) -> tuple[int, str, str]:
    """Run `mailwright templates ARGS` on a worker thread (it runs its own event loop)."""
    command = ["templates", *args, "--address", f"127.0.0.1:{platform.grpc_port}"]
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, command, env={"MAILWRIGHT_TOKEN": token}
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sale(tmp_path: Path) -> Path:
    path = tmp_path / "spring.html"
    path.write_text(MARKETING)
    return path


async def test_push_creates_then_saves_versions_and_publishes(
    platform: Platform, svc: SimpleNamespace, sale: Path
) -> None:
    token = svc.token(platform)
    code, out, _ = await templates(platform, token, "push", str(sale))
    assert (code, out.strip()) == (
        0,
        "spring-sale: version 1 created (workspaces/acme/templates/spring-sale/versions/1)",
    )
    code, out, _ = await templates(platform, token, "push", str(sale), "--publish")
    assert code == 0
    assert "version 1 unchanged and published" in out
    await asyncio.to_thread(sale.write_text, MARKETING.replace("Hi", "Hello"))
    code, out, _ = await templates(platform, token, "push", str(sale))
    assert "version 2 saved" in out
    code, out, _ = await templates(platform, token, "list")
    assert out.split("\t") == ["spring-sale", "-", "marketing", "latest 2", "published 1\n"]


async def test_a_push_that_fails_validation_prints_each_error_and_exits_1(
    platform: Platform, svc: SimpleNamespace, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("---\nsubject: Hi\nkind: marketing\n---\n<p>{{ x }</p>\n")
    code, _, err = await templates(platform, svc.token(platform), "push", str(broken), "--publish")
    assert code == 1
    assert "INVALID_ARGUMENT" in err
    assert "content.body: line 1, column" in err
    assert "content.postal_address" in err


async def test_preview_writes_the_html_rendered_for_a_context(
    platform: Platform, svc: SimpleNamespace, sale: Path, tmp_path: Path
) -> None:
    token = svc.token(platform)
    await templates(platform, token, "push", str(sale), "--publish")
    person = tmp_path / "ann.json"
    person.write_text(json.dumps({"traits": {"first_name": "Ann"}, "email": "ann@example.com"}))
    out = tmp_path / "preview.html"
    code, _, err = await templates(
        platform, token, "preview", "spring-sale", "--context", str(person), "--out", str(out)
    )
    assert code == 0, err
    html = out.read_text()
    assert "<p>Hi Ann</p>" in html
    assert "1 Main Street, Springfield" in html
    code, subject, _ = await templates(
        platform, token, "preview", "spring-sale", "--context", str(person), "--part", "subject"
    )
    assert subject == "Spring, Ann\n"


async def test_preview_renders_for_a_profile(
    tmp_path: Path, svc: SimpleNamespace, sale: Path
) -> None:
    async with svc.running(svc.settings(tmp_path), ["ingest", "profile", "render"]) as platform:
        assert platform.runtime is not None
        token = platform.runtime.authority.issue(
            "acme", ["events:write", "profiles:read", "templates:*"]
        )
        clients = platform.clients(token)
        traits = struct_pb2.Struct()
        traits.update({"first_name": "Ada"})
        await clients.ingest.Identify(
            ingest_pb2.IdentifyRequest(
                parent="workspaces/acme", event=event_pb2.Event(user_id="u-9", traits=traits)
            )
        )
        await clients.close()
        await templates(platform, token, "push", str(sale), "--publish")
        profile = await _profile_id(platform, token, "u-9")
        out = tmp_path / "preview.html"
        code, _, err = await templates(
            platform, token, "preview", "spring-sale", "--profile", profile, "--out", str(out)
        )
    assert code == 0, err
    assert "<p>Hi Ada</p>" in out.read_text()


async def _profile_id(platform: Platform, token: str, user_id: str) -> str:
    clients = platform.clients(token)
    try:
        for _ in range(200):
            try:
                reply = await clients.profile.LookupProfile(
                    profile_pb2.LookupProfileRequest(
                        parent="workspaces/acme",
                        identity=common_pb2.Identity(type="user_id", value=user_id),
                    )
                )
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
                continue
            profile_id: str = reply.profile.profile_id
            return profile_id
    finally:
        await clients.close()
    raise AssertionError("the profile never appeared")


async def test_without_a_token_the_commands_say_how_to_get_one(platform: Platform) -> None:
    code, _, err = await templates(platform, "", "list")
    assert code == 2
    assert "MAILWRIGHT_TOKEN" in err


async def test_a_token_of_another_workspace_is_refused(
    platform: Platform, svc: SimpleNamespace
) -> None:
    code, _, err = await templates(
        platform, svc.token(platform, "globex"), "list", "--workspace", "acme"
    )
    assert code == 1
    assert "PERMISSION_DENIED" in err
