"""Example journeys shipped with delivery: cart abandonment, win-back, VIP preview."""

from __future__ import annotations

from pathlib import Path

LIBRARY = Path(__file__).resolve().parent


def journey_files() -> list[Path]:
    return sorted(LIBRARY.glob("*.yaml"))
