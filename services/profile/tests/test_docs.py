"""docs/profiles.md lists exactly the computed traits of the registry."""

from __future__ import annotations

from pathlib import Path

from mailwright_profile.computed.docs import update
from mailwright_profile.computed.registry import REGISTRY

PAGE = Path(__file__).resolve().parents[3] / "docs" / "profiles.md"


def test_the_page_lists_the_registry_as_generated() -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert update(page) == page, "run: python -m mailwright_profile.computed.docs docs/profiles.md"


def test_every_computed_trait_is_on_the_page() -> None:
    page = PAGE.read_text(encoding="utf-8")
    missing = [trait.key for trait in REGISTRY if f"| `{trait.key}` |" not in page]
    assert missing == []
