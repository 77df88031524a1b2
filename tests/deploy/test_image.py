"""The Dockerfile builds the image the manifests expect, from the workspace's own lock.

No container engine runs here, so the Dockerfile is read, not built: its stages, base
images, user, entry point and writable paths are checked against the workspace and the
rendered manifests, the lock is checked against the workspace with `uv lock --check`, and
the build stage's `uv sync` commands are run for real into a temporary environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(
    r"^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$|^[\w./-]+@sha256:[0-9a-f]{64}$"
)


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [a for k, a in self.instructions if k == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in self.args("ENV"):
            for item in shlex.split(line):
                key, _, value = item.partition("=")
                values[key] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """The stages of a Dockerfile, each with its instructions (continuations joined)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(parts[0], name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return stages


STAGES = parse_dockerfile((ROOT / "Dockerfile").read_text())
BUILD = next(s for s in STAGES if s.name == "build")
FINAL = STAGES[-1]


def _workspace_members() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: list[Path] = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        members += sorted(p for p in ROOT.glob(pattern) if (p / "pyproject.toml").is_file())
    return members


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(ROOT / ".tools" / "bin"))
    if found is None:
        pytest.skip("uv is not installed (`make install` bootstraps it into .tools/bin)")
    return found


def _copies(stage: Stage) -> list[tuple[list[str], str]]:
    """(sources, destination) of the stage's COPY instructions from the build context."""
    found = []
    for args in stage.args("COPY"):
        parts = shlex.split(args)
        if any(p.startswith("--from") for p in parts):
            continue
        parts = [p for p in parts if not p.startswith("--")]
        found.append((parts[:-1], parts[-1]))
    return found


def _uv_syncs(stage: Stage) -> list[list[str]]:
    commands = []
    for run in stage.args("RUN"):
        words = [w for w in shlex.split(run) if not w.startswith("--mount=")]
        if words[:2] == ["uv", "sync"]:
            commands.append(words)
    return commands


# -- stages and base images --------------------------------------------------------------


def test_every_base_image_is_pinned_to_an_exact_version() -> None:
    assert [s.image for s in STAGES if not PINNED.match(s.image)] == []


def test_the_final_stage_runs_on_the_python_the_environment_was_built_with() -> None:
    """The venv's interpreter link points into its base image: both stages share it."""
    makefile = (ROOT / "Makefile").read_text()
    python = re.search(r"--python python(\d+\.\d+)", makefile)
    assert python is not None

    assert FINAL.image == BUILD.image
    assert FINAL.image.startswith(f"python:{python.group(1)}.")
    assert "-slim" in FINAL.image


def test_uv_in_the_build_is_the_version_the_makefile_bootstraps() -> None:
    version = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert version is not None
    uv_images = [s.image for s in STAGES if s.image.startswith("ghcr.io/astral-sh/uv:")]

    assert uv_images == [f"ghcr.io/astral-sh/uv:{version.group(1)}"]


# -- the build stage ---------------------------------------------------------------------


def test_the_build_stage_installs_from_the_lock_without_dev_dependencies() -> None:
    syncs = _uv_syncs(BUILD)

    assert syncs
    for command in syncs:
        assert {"--frozen", "--no-dev", "--all-packages"} <= set(command), command
    assert "--no-editable" in syncs[-1]
    assert _copies(BUILD)[0][0] == ["uv.lock", "pyproject.toml"]


def test_the_build_stage_copies_every_workspace_member() -> None:
    copied = [ROOT / source for sources, _ in _copies(BUILD) for source in sources]

    uncovered = [
        str(m.relative_to(ROOT))
        for m in _workspace_members()
        if not any(m.is_relative_to(c) for c in copied)
    ]

    assert uncovered == []


def test_uv_lock_matches_the_workspace() -> None:
    result = subprocess.run(
        [_uv(), "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr


def _ignored(path: Path, patterns: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix()
    parts = relative.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif fnmatch(relative, pattern) or fnmatch(parts[0], pattern):
            return True
    return False


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_local_state_out_and_the_build_inputs_in() -> None:
    patterns = _dockerignore()

    for local in (".git", ".venv", ".tools", ".mailwright", "node_modules"):
        assert _ignored(ROOT / local, patterns), local
    for sources, _ in _copies(BUILD):
        for source in sources:
            assert not _ignored(ROOT / source, patterns), source
    assert not any(p.startswith("!") for p in patterns)


def _copy(sources: list[str], destination: str, workdir: Path, patterns: list[str]) -> None:
    """COPY from the build context (the repository, less .dockerignore) into `workdir`."""
    target = workdir / destination
    into_directory = destination.endswith("/") or len(sources) > 1
    for source in sources:
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(
                origin,
                target,
                ignore=lambda at, names: [n for n in names if _ignored(Path(at) / n, patterns)],
                dirs_exist_ok=True,
            )
        elif into_directory:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target / origin.name)
        else:
            shutil.copy2(origin, target)


@pytest.mark.slow
def test_the_build_stage_commands_install_every_member_as_a_wheel(tmp_path: Path) -> None:
    """Run the build stage's COPY and `uv sync` steps in order (offline, from the uv cache
    that `make install` filled) and look at the environment they make."""
    uv = _uv()
    patterns = _dockerignore()
    workdir = tmp_path / "src"
    venv = tmp_path / "env"
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("UV_")},
        **BUILD.env(),
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": Path(sys.executable).resolve().name,
        "UV_OFFLINE": "1",
        # Not what is tested, and slow here: compiling bytecode, copying out of the cache.
        "UV_COMPILE_BYTECODE": "0",
        "UV_LINK_MODE": "hardlink",
    }
    workdir.mkdir()
    for keyword, args in BUILD.instructions:
        if keyword == "COPY" and "--from" not in args:
            ((sources, destination),) = _copies(Stage("", "", [(keyword, args)]))
            _copy(sources, destination, workdir, patterns)
        elif keyword == "RUN" and "uv sync" in args:
            ((_, *options),) = _uv_syncs(Stage("", "", [(keyword, args)]))
            result = subprocess.run(
                [uv, *options],
                cwd=workdir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, result.stderr

    help_text = subprocess.run(
        [str(venv / "bin" / "mailwright"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    installed = _installed(venv)

    assert help_text.returncode == 0, help_text.stderr
    for member in _workspace_members():
        name = tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"]
        assert installed.get(name) is False, f"{name} editable or missing: {installed.get(name)}"


def _installed(venv: Path) -> dict[str, Any]:
    """Installed distributions of the environment: name -> editable?"""
    probe = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for d in m.distributions():\n"
        "    url = d.read_text('direct_url.json')\n"
        "    out[d.metadata['Name']] = json.loads(url).get('dir_info', {}).get('editable', False)"
        " if url else None\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    found: dict[str, Any] = json.loads(result.stdout)
    return found


# -- the final stage ---------------------------------------------------------------------


def test_the_final_stage_holds_only_the_environment_from_the_build_stage() -> None:
    copies = FINAL.args("COPY")
    runs = " ".join(FINAL.args("RUN"))

    environment = BUILD.env()["UV_PROJECT_ENVIRONMENT"]

    assert copies == [f"--from=build {environment} {environment}"]
    for tool in ("apt-get", "pip", "uv ", "gcc", "build-essential", "curl"):
        assert tool not in runs, tool


def test_the_image_runs_as_the_fixed_non_root_user_the_pods_declare(prod: Any) -> None:
    (user,) = FINAL.args("USER")
    uid, _, gid = user.partition(":")
    for _, pod in prod.workloads():
        if pod["metadata"]["labels"]["app.kubernetes.io/name"] == "mailwright":
            context = pod["spec"]["securityContext"]
            assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))

    assert int(uid) >= 1000
    assert int(gid) >= 1000


def test_the_entry_point_is_the_mailwright_console_script() -> None:
    sdk = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())
    (entrypoint,) = FINAL.args("ENTRYPOINT")
    (command,) = FINAL.args("CMD")
    path = FINAL.env()["PATH"].split(":")

    assert json.loads(entrypoint) == ["mailwright"]
    assert "mailwright" in sdk["project"]["scripts"]
    assert f"{BUILD.env()['UV_PROJECT_ENVIRONMENT']}/bin" == path[0]
    assert json.loads(command)[0] == "serve"


def test_every_writable_path_is_a_volume_in_the_image_and_an_empty_dir_in_the_pods(
    prod: Any,
) -> None:
    env = FINAL.env()
    (volumes,) = FINAL.args("VOLUME")
    writable = {env["HOME"], env["MAILWRIGHT_DATA_DIR"], env["TMPDIR"]}

    assert writable <= set(json.loads(volumes))
    for obj, pod in prod.workloads():
        if pod["metadata"]["labels"]["app.kubernetes.io/name"] != "mailwright":
            continue
        for container in prod.containers(pod):
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert writable <= mounted, (obj["metadata"]["name"], container["name"])


def test_the_image_listens_where_the_config_says(prod: Any) -> None:
    config = prod.config()
    exposed = {int(p) for line in FINAL.args("EXPOSE") for p in line.split()}

    assert exposed == {int(config["MAILWRIGHT_GRPC_PORT"]), int(config["MAILWRIGHT_HTTP_PORT"])}
    assert FINAL.env()["MAILWRIGHT_GRPC_HOST"] == config["MAILWRIGHT_GRPC_HOST"]
