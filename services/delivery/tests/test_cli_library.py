"""The command line against a running platform, and the shipped example journeys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from delivery_fakes import World
from delivery_harness import settings, start, start_sink

from mailwright.delivery.v1 import delivery_pb2 as pb
from mailwright.errors import InvalidArgument
from mailwright.runtime.server import Platform
from mailwright_delivery import yamlfile
from mailwright_delivery.cli import campaigns, journeys, sends
from mailwright_delivery.journey_convert import definition
from mailwright_delivery.library import journey_files
from mailwright_smtp.sink import SmtpSink

CAMPAIGN_FILE = """
id: spring
display_name: Spring sale
audience: {include_segments: [everyone]}
template: news
sender: {from_address: news@shop.example, from_name: Shop}
category: marketing
attribution_window: 3d
experiment:
  kind: split
  variants: [{key: a, subject_variant: a}, {key: b, subject_variant: b}]
  holdout_fraction: 0.1
"""


@pytest.mark.parametrize("path", journey_files(), ids=lambda p: p.stem)
def test_every_shipped_journey_is_valid(path: Path) -> None:
    ident, journey = yamlfile.load(path, pb.Journey)
    assert ident == path.stem
    found = definition("acme", journey)
    assert found.steps


def test_the_library_has_the_three_examples() -> None:
    assert [p.stem for p in journey_files()] == ["cart-abandonment", "vip-preview", "win-back"]


def test_a_file_with_a_bad_duration_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "j.yaml"
    path.write_text("id: j\nsteps: [{id: a, wait: {duration: soon}}]\n")
    with pytest.raises(InvalidArgument) as caught:
        yamlfile.load(path, pb.Journey)
    assert caught.value.violations[0].field == "steps[0].wait.duration"


def test_a_file_with_an_unknown_enum_lists_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("id: c\ncategory: spam\n")
    with pytest.raises(InvalidArgument, match="marketing, transactional"):
        yamlfile.load(path, pb.Campaign)


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[tuple[Platform, SmtpSink]]:
    world = World()
    for n in range(20):
        world.person(f"p{n}", f"person{n}@example.com")
    world.segment("everyone", [f"p{n}" for n in range(20)])
    for name in ("news", "cart-reminder", "cart-incentive"):
        world.template(name)
    sink, _ = await start_sink(tmp_path / "outbox")
    running = await start(world, settings(tmp_path, sink.port))
    yield running, sink
    await running.stop()
    await sink.stop()


async def invoke(platform: Platform, command: object, *args: str) -> Result:
    runtime = platform.runtime
    assert runtime is not None
    token = runtime.authority.issue("acme", ["*"], subject="test")
    common = ["--address", f"127.0.0.1:{platform.grpc_port}", "--workspace", "acme"]
    return await asyncio.to_thread(
        CliRunner().invoke, command, [*args, *common], env={"MAILWRIGHT_TOKEN": token}
    )


async def test_a_campaign_is_created_sent_and_reported_from_the_command_line(
    platform: tuple[Platform, SmtpSink], tmp_path: Path
) -> None:
    running, sink = platform
    assert sink.received == 0
    path = tmp_path / "campaign.yaml"
    path.write_text(CAMPAIGN_FILE)
    created = await invoke(running, campaigns, "create", "-f", str(path))
    assert created.exit_code == 0, created.output
    assert "workspaces/acme/campaigns/spring (draft)" in created.output
    sent = await invoke(running, campaigns, "send", "spring")
    assert sent.exit_code == 0, sent.output
    assert "sent" in sent.output
    chart = tmp_path / "report.png"
    report = await invoke(running, campaigns, "report", "spring", "--chart", str(chart))
    assert report.exit_code == 0, report.output
    assert "variant:a" in report.output
    assert "holdout" in report.output
    assert chart.read_bytes().startswith(b"\x89PNG")
    page = tmp_path / "report.html"
    await invoke(running, campaigns, "report", "spring", "--chart", str(page))
    assert "data:image/png;base64," in page.read_text()


async def test_a_journey_file_is_applied_then_updated_as_a_new_version(
    platform: tuple[Platform, SmtpSink],
) -> None:
    running, _ = platform
    cart = next(p for p in journey_files() if p.stem == "cart-abandonment")
    first = await invoke(running, journeys, "apply", "-f", str(cart), "--activate")
    assert first.exit_code == 0, first.output
    assert "version 1 (active)" in first.output
    second = await invoke(running, journeys, "apply", "-f", str(cart))
    assert "version 2" in second.output


async def test_retrying_with_nothing_parked_says_so(platform: tuple[Platform, SmtpSink]) -> None:
    running, _ = platform
    result = await invoke(running, sends, "retry")
    assert result.exit_code == 0, result.output
    assert "0 parked sends requeued" in result.output


async def test_a_missing_token_is_one_clear_line(platform: tuple[Platform, SmtpSink]) -> None:
    running, _ = platform
    result = await asyncio.to_thread(
        CliRunner().invoke,
        campaigns,
        ["report", "x", "--address", f"127.0.0.1:{running.grpc_port}"],
        env={"MAILWRIGHT_TOKEN": ""},
    )
    assert result.exit_code != 0
    assert "no token" in result.output


async def test_an_unknown_campaign_is_reported_not_crashed(
    platform: tuple[Platform, SmtpSink],
) -> None:
    running, _ = platform
    result = await invoke(running, campaigns, "report", "nope")
    assert result.exit_code == 1
    assert "NOT_FOUND" in result.output
