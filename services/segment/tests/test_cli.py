"""`mailwright segments` against a running service, over gRPC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from click.testing import CliRunner
from upstream import changed, event

from mailwright.cli import cli


def invoke(service, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    port = service.upstream.platform.grpc_port
    result = CliRunner().invoke(
        cli,
        ["segments", "--address", f"127.0.0.1:{port}", *args],
        env={"MAILWRIGHT_TOKEN": service.token},
    )
    return result.exit_code, result.stdout, result.stderr


async def run(service, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    # The command runs its own event loop: give it a thread while the service serves here.
    return await asyncio.to_thread(invoke, service, *args)


def library() -> Path:
    return Path(str(resources.files("mailwright.rules.library").joinpath("segments.yaml")))


async def people(service) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    views = [event("Product Viewed", at=now - timedelta(days=d)) for d in (10, 9, 8)]
    await service.upstream.change(changed("acme", "p1", version=1, events=views))
    orders = [event("Order Completed", at=now - timedelta(days=d)) for d in (40, 20)]
    await service.upstream.change(changed("acme", "p2", version=1, events=orders))
    await service.upstream.change(changed("acme", "p3", version=1, traits={"country": "FR"}))


async def test_apply_imports_the_library_then_finds_nothing_to_change(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    code, out, err = await run(sqlite_service, "apply", "-f", str(library()))
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 11
    assert all(line.startswith("created") for line in lines)
    assert lines.index("created  repeat-buyers (version 1)") < lines.index(
        "created  high-value-customers (version 1)"
    )
    code, out, _ = await run(sqlite_service, "apply", "-f", str(library()))
    assert code == 0
    assert all(line.startswith("unchanged") for line in out.splitlines())


async def test_apply_updates_a_changed_rule(sqlite_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "one.yaml"
    path.write_text('segments:\n  - {id: fr, name: French, rule: trait country = "FR"}\n')
    assert (await run(sqlite_service, "apply", "-f", str(path)))[0] == 0
    path.write_text('segments:\n  - {id: fr, name: French, rule: trait country = "DE"}\n')
    code, out, _ = await run(sqlite_service, "apply", "-f", str(path))
    assert (code, out.strip()) == (0, "updated  fr (version 2)")


async def test_apply_names_the_bad_definition(sqlite_service, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.yaml"
    path.write_text("segments:\n  - {id: fr, name: French, rule: trait country =}\n")
    code, _, err = await run(sqlite_service, "apply", "-f", str(path))
    assert code == 1
    assert "segments[0].rule" in err


async def test_preview_prints_the_count_and_one_member_a_line(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    await people(sqlite_service)
    await run(sqlite_service, "apply", "-f", str(library()))
    await sqlite_service.upstream.wait_for(1, segment_id="repeat-buyers")
    code, out, err = await run(
        sqlite_service, "preview", 'event "Order Completed" or trait country = "FR"', "--members"
    )
    assert code == 0, err
    assert sorted(out.split()) == ["p2", "p3"]
    assert "2 matching" in err
    code, out, _ = await run(sqlite_service, "preview", 'trait country = "FR"')
    assert (code, out.strip()) == (0, "1 matching")


async def test_preview_of_a_bad_rule_shows_the_field_and_position(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    code, _, err = await run(sqlite_service, "preview", "trait country = ")
    assert code == 1
    assert "rule_text: 1:16:" in err


async def test_explain_and_members(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    await people(sqlite_service)
    await run(sqlite_service, "apply", "-f", str(library()))
    await sqlite_service.upstream.wait_for(1, segment_id="browse-abandoners")
    code, out, err = await run(sqlite_service, "explain", "browse-abandoners", "p1")
    assert code == 0, err
    assert out.splitlines()[0] == "member       yes"
    assert "next change  " in out
    assert '[x] event "Product Viewed" count >= 3 in last 14 days then no' in out
    code, out, err = await run(sqlite_service, "members", "browse-abandoners")
    assert (code, out.split()) == (0, ["p1"])
    assert "1 members" in err


async def test_recompute_all_shows_progress_and_counts(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    await people(sqlite_service)
    await run(sqlite_service, "apply", "-f", str(library()))
    await sqlite_service.upstream.wait_for(1, segment_id="repeat-buyers")
    code, out, err = await run(sqlite_service, "recompute", "--all")
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 11
    assert "repeat-buyers: 0 entered, 0 exited" in lines
    assert lines.index("repeat-buyers: 0 entered, 0 exited") < lines.index(
        "at-risk-customers: 0 entered, 0 exited"
    )
    assert "3 / 3" in err


async def test_a_missing_token_or_name_is_a_usage_error(sqlite_service) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, ["segments", "members", "x"], env={"MAILWRIGHT_TOKEN": ""})
    assert result.exit_code == 2
    assert "token" in result.stderr
    code, _, err = await run(sqlite_service, "recompute")
    assert code == 2
    assert "--all" in err


def test_help_needs_no_token() -> None:
    result = CliRunner().invoke(
        cli, ["segments", "preview", "--help"], env={"MAILWRIGHT_TOKEN": ""}
    )
    assert result.exit_code == 0
    assert "--members" in result.stdout
