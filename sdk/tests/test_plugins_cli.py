"""`mailwright plugins list`: plugins, their connectors and hooks; failures with reasons."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailwright.cli import cli
from mailwright.testing.distributions import write_distribution


def run(*args: str, plugins: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["plugins", "list", *args], env={"MAILWRIGHT_PLUGINS": plugins, "COLUMNS": "200"}
    )
    return result.exit_code, result.output


def test_the_table_shows_each_plugin_with_its_connectors_and_hooks() -> None:
    code, output = run(plugins="smtp")

    assert code == 0
    row = next(line for line in output.splitlines() if "mailwright-smtp" in line)
    assert "smtp (webhook, email provider)" in row
    assert "register_connectors" in row


def test_json_lists_plugins_connectors_capabilities_and_hooks() -> None:
    code, output = run("--json", plugins="smtp")

    assert code == 0
    listing = json.loads(output)
    [smtp] = listing["plugins"]
    assert smtp["name"] == "smtp"
    assert smtp["distribution"] == "mailwright-smtp"
    assert smtp["connectors"][0]["name"] == "smtp"
    assert smtp["connectors"][0]["capabilities"] == ["webhook", "email_provider"]
    assert smtp["hooks"] == ["mailwright_register_connectors"]
    assert listing["failures"] == []


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"broken-{uuid.uuid4().hex[:8]}"
    module = f"mw_broken_{uuid.uuid4().hex[:8]}"
    write_distribution(
        tmp_path,
        f"mailwright-{name}",
        entry_points={"mailwright": {name: module}},
        modules={module: "import mailwright_missing_dependency\n"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_a_broken_plugin_is_listed_with_its_reason_and_the_rest_still_shows(
    broken_plugin: str,
) -> None:
    code, output = run(plugins=f"smtp,{broken_plugin}")

    assert code == 0
    assert "failed to load" in output
    assert broken_plugin in output
    assert "mailwright_missing_dependency" in output
    assert "mailwright-smtp" in output


def test_a_broken_plugin_is_in_the_json_failures(broken_plugin: str) -> None:
    code, output = run("--json", plugins=f"smtp,{broken_plugin}")

    assert code == 0
    listing = json.loads(output)
    assert [failure["name"] for failure in listing["failures"]] == [broken_plugin]
    assert "ModuleNotFoundError" in listing["failures"][0]["reason"]
    assert [plugin["name"] for plugin in listing["plugins"]] == ["smtp"]


def test_no_plugin_at_all_is_said_plainly() -> None:
    code, output = run(plugins="")

    assert code == 0
    assert "No plugins loaded." in output
