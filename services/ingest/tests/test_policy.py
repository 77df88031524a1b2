"""The ingest policy: what it allows of browser origins, and which updates it refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mailwright_ingest.config import IngestSettings
from mailwright_ingest.policy import Policy, check_policy

DEFAULT = Policy.defaults(IngestSettings())


def test_the_default_policy_is_valid_and_allows_any_origin() -> None:
    assert check_policy(DEFAULT) == []
    assert DEFAULT.allows_origin("https://anything.example")
    assert DEFAULT.dedup_window == timedelta(hours=24)


def test_listed_origins_and_wildcard_subdomains_are_allowed_others_not() -> None:
    policy = replace(DEFAULT, allowed_origins=("https://shop.example", "https://*.blog.example"))
    assert policy.allows_origin("https://shop.example")
    assert policy.allows_origin("https://en.blog.example")
    assert not policy.allows_origin("https://blog.example.evil.example")
    assert not policy.allows_origin("http://shop.example")
    assert not policy.allows_origin("https://evil.example")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dedup_window": timedelta(seconds=10)}, "policy.dedup_window"),
        ({"rate_per_second": -1.0}, "policy.rate_limit_per_second"),
        ({"burst": 0}, "policy.rate_limit_burst"),
        ({"max_past": timedelta(0)}, "policy.max_past"),
        ({"max_future": timedelta(days=400)}, "policy.max_future"),
        ({"allowed_origins": ("shop.example",)}, "policy.allowed_origins[0]"),
    ],
)
def test_out_of_range_updates_name_the_field(change: dict[str, object], field: str) -> None:
    assert [p.field for p in check_policy(replace(DEFAULT, **change))] == [field]  # type: ignore[arg-type]


def test_unlimited_rate_needs_no_burst() -> None:
    assert check_policy(replace(DEFAULT, rate_per_second=0.0, burst=0)) == []
