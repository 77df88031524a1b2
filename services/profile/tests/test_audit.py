"""`mailwright profiles audit`: per-source counts, conflicts, stale profiles, duplicates."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from mailwright_profile.profiles_cli import profiles
from mailwright_profile.simulate import identify, page

NOW = datetime.now(UTC)  # the command audits against the real clock
Apply = Callable[..., Any]


@pytest.fixture
def audited(store: Any, apply: Apply, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    apply(
        identify(
            user_id="u1", source="crm", at=NOW, traits={"first_name": "Ada", "email": "ada@x.io"}
        )
    )
    apply(
        identify(
            user_id="u1", source="shop", at=NOW + timedelta(hours=1), traits={"first_name": "Adele"}
        )
    )
    apply(
        identify(
            user_id="u2",
            source="shop",
            at=NOW - timedelta(days=400),
            traits={"phone": "12", "country": "Narnia"},
        )
    )
    apply(page(anonymous_id="a1", source="browser", at=NOW))
    apply(
        identify(
            anonymous_id="a2",
            source="shop",
            at=NOW,
            traits={"first_name": "Ada", "last_name": "Byron", "birth_date": "1815-12-10"},
        ),
        identify(
            anonymous_id="a3",
            source="crm",
            at=NOW,
            traits={"first_name": "ada", "last_name": "BYRON", "birth_date": "12/10/1815"},
        ),
    )
    monkeypatch.setenv("MAILWRIGHT_DATABASE_URL", store.db.url)
    result = CliRunner().invoke(profiles, ["audit", "--json", "--stale-days", "90"])
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)
    return report  # type: ignore[no-any-return]


def test_the_audit_counts_events_and_traits_per_source(audited: dict[str, Any]) -> None:
    by_source = {s["source"]: s for s in audited["sources"]}
    assert by_source["shop"]["events"] == 3
    assert by_source["browser"] == {
        "source": "browser",
        "events": 1,
        "profiles": 1,
        "traits_held": 0,
    }
    assert by_source["crm"]["traits_held"] >= 1


def test_the_audit_reports_conflicts_between_sources(audited: dict[str, Any]) -> None:
    (conflict,) = audited["conflicts"]
    assert (conflict["trait"], conflict["profiles"], conflict["sources"]) == (
        "first_name",
        1,
        ["crm", "shop"],
    )


def test_the_audit_reports_stale_and_unreadable_values(audited: dict[str, Any]) -> None:
    assert audited["stale"]["count"] == 1
    assert audited["unreadable"] == {"country": 1, "phone": 1}


def test_the_audit_finds_likely_duplicates(audited: dict[str, Any]) -> None:
    assert (audited["duplicates"]["groups"], audited["duplicates"]["profiles"]) == (1, 2)
