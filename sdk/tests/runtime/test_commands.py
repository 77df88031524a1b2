"""The platform commands fail fast with one clear line when something is wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MAILWRIGHT = [sys.executable, "-m", "mailwright.cli"]


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAILWRIGHT_")}
    environment.update(env)
    return subprocess.run(
        [*MAILWRIGHT, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=environment,
        check=False,
    )


def test_an_unknown_service_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    result = _run(["serve", "billing"], tmp_path)
    assert result.returncode != 0
    assert "unknown service 'billing'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_setting_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    result = _run(["up"], tmp_path, MAILWRIGHT_GRPC_PORT="lots")
    assert result.returncode != 0
    assert "MAILWRIGHT_GRPC_PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_redis_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    result = _run(
        ["serve", "ingest", "--grpc-port", "0", "--http-port", "0"],
        tmp_path,
        MAILWRIGHT_BUS_URL="redis://127.0.0.1:1/0",
    )
    assert result.returncode != 0
    assert "bus unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_named_and_exits_non_zero(tmp_path: Path) -> None:
    result = _run(
        ["serve", "profile", "--grpc-port", "0", "--http-port", "0"],
        tmp_path,
        MAILWRIGHT_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none",
    )
    assert result.returncode != 0
    assert "database of profile unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_tokens_create_prints_a_token_for_the_workspace(tmp_path: Path) -> None:
    result = _run(
        ["tokens", "create", "--workspace", "acme", "--scope", "events:write"],
        tmp_path,
        MAILWRIGHT_AUTH_SECRET="z" * 40,
    )
    assert result.returncode == 0, result.stderr
    from mailwright.runtime.auth import TokenAuthority

    principal = TokenAuthority("z" * 40).verify(result.stdout.strip())
    assert principal.workspace == "acme"
    assert principal.scopes == frozenset({"events:write"})
