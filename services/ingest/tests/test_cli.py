"""`mailwright ingest`, `taxonomy apply` and `write-keys` against a running service."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner, Result

from mailwright.cli import cli
from mailwright.ingest.v1 import ingest_pb2

from .conftest import PARENT, Ingest


async def invoke(ingest: Ingest, *args: str, stdin: str | None = None) -> Result:
    """Run the command in a thread (it runs its own event loop) against the service."""
    env = {"MAILWRIGHT_TOKEN": ingest.token()}
    address = ["--address", f"127.0.0.1:{ingest.platform.grpc_port}"]
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke, cli, [*args, *address], input=stdin, env=env, catch_exceptions=False
    )


def line(**fields: object) -> str:
    return json.dumps({"type": "track", "event": "Signed In", "userId": "u1", **fields})


async def test_ingest_sends_a_file_and_names_each_rejected_line(
    ingest: Ingest, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        "\n".join(
            [
                line(messageId="a"),
                "{oops",
                line(messageId="b"),
                json.dumps({"type": "track", "event": "Signed In", "messageId": "c"}),
                line(messageId="a"),
                "",
                line(messageId="d", timestamp="soon"),
            ]
        )
        + "\n"
    )
    result = await invoke(ingest, "ingest", str(path))
    assert result.exit_code == 1, result.output
    assert "accepted   2" in result.stdout
    assert "duplicate  1" in result.stdout
    assert "rejected   3" in result.stdout
    assert "line 2: malformed JSON" in result.stdout
    assert "line 4: userId: either user_id or anonymous_id is required" in result.stdout
    assert "line 7: timestamp:" in result.stdout
    assert sorted(e.message_id for e in await ingest.tap.wait(2)) == ["a", "b"]


async def test_ingest_reads_stdin_in_batches(ingest: Ingest) -> None:
    lines = "\n".join(line(messageId=f"m{i}") for i in range(25))
    result = await invoke(ingest, "ingest", "-", "--batch-size", "10", stdin=lines)
    assert result.exit_code == 0, result.output
    assert "accepted   25" in result.stdout
    assert len(await ingest.tap.wait(25)) == 25


async def test_ingest_without_a_token_is_a_usage_error(ingest: Ingest, tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(line() + "\n")
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, ["ingest", str(path)], env={"MAILWRIGHT_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert "token is required" in result.output


async def test_taxonomy_apply_creates_definitions_that_ingest_enforces(
    ingest: Ingest, tmp_path: Path
) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(
        "events:\n"
        "  Trial Started:\n"
        "    tags: [acquisition]\n"
        "    properties:\n"
        "      plan: {type: string, required: true}\n"
        "traits:\n"
        "  plan: string\n"
    )
    result = await invoke(ingest, "taxonomy", "apply", "-f", str(path))
    assert result.exit_code == 0, result.output
    assert "created 1" in result.stdout
    assert "traits: 1 declared" in result.stdout
    got = await ingest.clients.ingest.GetEventDefinition(
        ingest_pb2.GetEventDefinitionRequest(name=f"{PARENT}/eventDefinitions/trial-started")
    )
    assert list(got.definition.tags) == ["acquisition"]


async def test_taxonomy_apply_dry_run_with_prune_changes_nothing(
    ingest: Ingest, tmp_path: Path
) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text("events:\n  Trial Started: {}\n")
    result = await invoke(ingest, "taxonomy", "apply", "-f", str(path), "--prune", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would be" in result.stdout
    listed = await ingest.clients.ingest.ListEventDefinitions(
        ingest_pb2.ListEventDefinitionsRequest(parent=PARENT, page_size=1000)
    )
    assert len(listed.definitions) > 20


async def test_a_bad_taxonomy_file_names_the_field(ingest: Ingest, tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text("events:\n  Trial Started:\n    properties:\n      plan: colour\n")
    result = await invoke(ingest, "taxonomy", "apply", "-f", str(path))
    assert result.exit_code == 1
    assert "events['Trial Started'].properties.plan" in result.output


async def test_write_keys_create_prints_the_key_and_list_only_its_prefix(ingest: Ingest) -> None:
    created = await invoke(ingest, "write-keys", "create", "--name", "website")
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("mwk_")
    listed = await invoke(ingest, "write-keys", "list")
    assert key[:10] in listed.stdout
    assert key not in listed.stdout
    assert "active" in listed.stdout
