"""Fixtures that start Mailwright in-process on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from mailwright.runtime.server import Platform
from mailwright.runtime.service import resolve_services
from mailwright.runtime.settings import Settings


def platform_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "grpc_port": 0,
        "http_port": 0,
        "auth_secret": "s" * 48,
        "shutdown_grace": 2,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def start_platform(settings: Settings, services: Sequence[str]) -> Platform:
    platform = Platform(settings, resolve_services(services))
    await platform.start()
    return platform


@pytest.fixture
async def platform(tmp_path: Path) -> AsyncIterator[Platform]:
    running = await start_platform(
        platform_settings(tmp_path), ["ingest", "profile", "segment", "render", "delivery"]
    )
    try:
        yield running
    finally:
        await running.stop()
