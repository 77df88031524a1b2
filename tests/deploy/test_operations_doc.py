"""docs/operations.md covers what an operator needs and stays in step with the settings and
the manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mailwright.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "operations.md").read_text()
# Settings whose variables are patterns, one per service.
PER_SERVICE = {
    "addresses": "MAILWRIGHT_ADDRESSES__<SERVICE>",
    "services": "MAILWRIGHT_SERVICES__<SERVICE>",
}


def _variables() -> list[str]:
    names = []
    for field, info in Settings.model_fields.items():
        annotation = info.annotation
        if field in PER_SERVICE:
            names.append(PER_SERVICE[field])
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += [
                f"MAILWRIGHT_{field.upper()}__{sub.upper()}" for sub in annotation.model_fields
            ]
        else:
            names.append(f"MAILWRIGHT_{field.upper()}")
    return names


@pytest.mark.parametrize("variable", _variables())
def test_every_setting_is_documented(variable: str) -> None:
    assert f"`{variable}" in DOC or f"{variable}`" in DOC


@pytest.mark.parametrize(
    "section",
    [
        "## Deploy",
        "## Configure",
        "## Scale",
        "## Capacity",
        "## Upgrade",
        "## Back up",
        "## Replay dead letters",
        "## Rotate secrets and signing keys",
        "## Erase a person",
    ],
)
def test_the_runbook_has_its_sections(section: str) -> None:
    assert f"\n{section}\n" in DOC


def test_every_secret_key_the_manifests_reference_is_explained(prod: Any) -> None:
    keys = {
        variable["valueFrom"]["secretKeyRef"]["key"]
        for _, pod in prod.workloads()
        for container in prod.containers(pod)
        for variable in container.get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }

    assert keys
    assert [k for k in sorted(keys) if f"`{k}`" not in DOC or f"{k}=" not in DOC] == []


def test_every_command_the_manifests_run_is_named(prod: Any) -> None:
    commands = {
        " ".join(container["args"][:2])
        for _, pod in prod.workloads()
        for container in prod.containers(pod)
        if pod["metadata"]["labels"]["app.kubernetes.io/name"] == "mailwright"
    }

    assert [c for c in sorted(commands) if f"mailwright {c}" not in DOC] == []
