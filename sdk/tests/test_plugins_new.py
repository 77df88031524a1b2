"""`mailwright plugins new NAME` writes a plugin that passes its own tests out of the box."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailwright.cli import cli
from mailwright.connectors import Capability
from mailwright.plugins import load_plugins
from mailwright.scaffold import PluginNames, ScaffoldError, create_plugin
from mailwright.testing.distributions import write_distribution


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    env.pop("MAILWRIGHT_PLUGINS", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("plugins")
    result = CliRunner().invoke(cli, ["plugins", "new", "acme-shop", "--directory", str(directory)])
    assert result.exit_code == 0, result.output
    return directory / "acme-shop"


def test_the_skeleton_has_the_packaging_the_connector_the_fake_and_the_tests(
    generated: Path,
) -> None:
    files = {str(p.relative_to(generated)) for p in generated.rglob("*") if p.is_file()}
    assert {
        "pyproject.toml",
        "README.md",
        "mailwright_acme_shop/plugin.py",
        "mailwright_acme_shop/config.py",
        "mailwright_acme_shop/source.py",
        "mailwright_acme_shop/webhook.py",
        "mailwright_acme_shop/fake.py",
        "mailwright_acme_shop/py.typed",
        "tests/conftest.py",
        "tests/test_conformance.py",
    } <= files
    pyproject = (generated / "pyproject.toml").read_text()
    assert (
        '[project.entry-points.mailwright]\nacme-shop = "mailwright_acme_shop.plugin"' in pyproject
    )
    assert not any("__" in p and "__init__" not in p for p in files)


@pytest.mark.slow
def test_the_skeleton_passes_its_own_tests_against_the_installed_sdk(generated: Path) -> None:
    result = run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], generated)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_the_skeleton_is_lint_clean(generated: Path) -> None:
    check = run(["-m", "ruff", "check", "."], generated)
    assert check.returncode == 0, check.stdout
    formatted = run(["-m", "ruff", "format", "--check", "."], generated)
    assert formatted.returncode == 0, formatted.stdout


def test_the_skeleton_loads_as_a_plugin_through_its_entry_point(
    generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_distribution(
        generated,
        "mailwright-acme-shop",
        entry_points={"mailwright": {"acme-shop": "mailwright_acme_shop.plugin"}},
        modules={},
    )
    monkeypatch.syspath_prepend(str(generated))
    plugins = load_plugins(["acme-shop"])
    assert not plugins.failures
    connector = plugins.connectors.get("acme-shop")
    assert connector.capabilities == {Capability.SOURCE, Capability.WEBHOOK}


def test_names_give_the_package_class_and_header(tmp_path: Path) -> None:
    names = PluginNames("acme-shop")
    assert (names.package, names.cls, names.header, names.env) == (
        "mailwright_acme_shop",
        "AcmeShop",
        "Acme-Shop",
        "ACME_SHOP",
    )


@pytest.mark.parametrize("name", ["Acme", "acme_shop", "-acme", "a" * 41, "acme--shop"])
def test_a_name_that_is_not_a_connector_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ScaffoldError):
        create_plugin(name, tmp_path)


def test_an_existing_directory_is_not_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["plugins", "new", "acme", "--directory", str(tmp_path)])
    assert result.exit_code == 1
    assert "--force" in result.output
    assert create_plugin("acme", tmp_path, force=True)
    assert (tmp_path / "acme" / "notes.txt").read_text() == "mine"
