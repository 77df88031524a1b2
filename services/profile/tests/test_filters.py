"""The ListProfiles filter language: parsing, meaning, and the database agreeing with it."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mailwright.errors import InvalidArgument
from mailwright_profile.filters import And, Comparison, Not, Or, matches, parse_filter, pushdown
from mailwright_profile.paging import binding, make_token, read_token
from mailwright_profile.simulate import Clock, identify
from mailwright_profile.store import ProfileStore

NOW = Clock().now
Apply = Callable[..., Any]
TIMES = {"create_time": NOW, "update_time": NOW, "first_seen_time": None, "last_seen_time": NOW}


def test_comparisons_join_with_and_tighter_than_or() -> None:
    tree = parse_filter('traits.a = 1 OR traits.b = "x" AND NOT traits.c != true')
    assert tree == Or(
        (
            Comparison("traits", "a", "=", 1),
            And((Comparison("traits", "b", "=", "x"), Not(Comparison("traits", "c", "!=", True)))),
        )
    )


def test_strings_take_escapes_and_keywords_any_case() -> None:
    tree = parse_filter('traits.name = "say \\"hi\\"" and computed_traits.orders_count >= 2.5')
    assert tree == And(
        (
            Comparison("traits", "name", "=", 'say "hi"'),
            Comparison("computed_traits", "orders_count", ">=", 2.5),
        )
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("traits.a =", "end of filter"),
        ("traits.a ~ 1", "unexpected character"),
        ("profile.a = 1", "unknown field"),
        ("traits.a = 1 AND", "end of filter"),
        ("(traits.a = 1", "end of filter"),
        ("traits.a < null", "null is only compared"),
        ('create_time > "yesterday"', "RFC 3339"),
        ("traits.a = 1 traits.b = 2", "unexpected"),
        ("traits.a-b = 1", "unexpected"),
    ],
)
def test_bad_filters_are_refused_naming_the_filter(text: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_filter(text)
    (violation,) = error.value.violations
    assert violation.field == "filter"
    assert words in violation.description


def test_a_filter_has_a_size_limit() -> None:
    with pytest.raises(InvalidArgument):
        parse_filter(" OR ".join(f"traits.a = {i}" for i in range(21)))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('traits.country = "FR"', True),
        ("traits.country = 1", False),
        ("traits.age > 30", True),
        ('traits.age > "30"', False),
        ("traits.vip = true", True),
        ("traits.vip = 1", False),
        ("traits.missing = null", True),
        ("traits.missing != null", False),
        ("traits.missing != 3", False),
        ("traits.country != null", True),
        ("NOT traits.missing = 1", True),
        ("computed_traits.orders_count >= 2", True),
        ('create_time >= "2025-06-01T00:00:00Z"', True),
        ('first_seen_time >= "2025-06-01T00:00:00Z"', False),
    ],
)
def test_what_a_filter_means(text: str, expected: bool) -> None:
    traits = {"country": "FR", "age": 41, "vip": True}
    assert matches(parse_filter(text), traits, {"orders_count": 3}, TIMES) is expected


def test_page_tokens_are_bound_to_their_filters() -> None:
    token = make_token(binding("profiles", "acme", "traits.a = 1"), ["2025-01-01T00:00:00", "p1"])
    assert read_token(token, binding("profiles", "acme", "traits.a = 1")) == [
        "2025-01-01T00:00:00",
        "p1",
    ]
    with pytest.raises(InvalidArgument) as error:
        read_token(token, binding("profiles", "acme", "traits.a = 2"))
    assert error.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        read_token("not-a-token", binding("profiles", "acme", ""))


FILTERS = [
    'traits.plan = "pro"',
    'traits.plan != "pro"',
    "traits.age >= 30",
    "traits.age < 30.5",
    "traits.vip = true",
    "traits.vip = false",
    'traits.city = "Paris" AND traits.age > 20',
    'traits.city = "Paris" OR traits.vip = true',
    'NOT traits.plan = "free"',
    'traits.age = "41"',
    f'create_time >= "{(NOW - timedelta(days=1)).isoformat()}"',
    'last_seen_time < "2000-01-01T00:00:00Z"',
]


def test_the_database_finds_what_the_filter_means(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    rng = random.Random(3)
    for index in range(40):
        traits: dict[str, Any] = {}
        if rng.random() < 0.8:
            traits["plan"] = rng.choice(["pro", "free", 1, True])
        if rng.random() < 0.8:
            traits["age"] = rng.choice([18, 30, 41, 30.5, "41", False])
        if rng.random() < 0.6:
            traits["vip"] = rng.choice([True, False, "true", 1])
        if rng.random() < 0.6:
            traits["city"] = rng.choice(["Paris", "Lyon", None])
        apply(identify(user_id=f"u{index}", traits=traits, at=NOW))
    everyone = store.list_profiles("acme", "update_time desc", [], None, 1000)
    assert len(everyone) == 40
    for text in FILTERS:
        tree = parse_filter(text)
        wanted = {row.profile_id for row in everyone if matches(tree, row.traits, {}, row.times)}
        pushed = store.list_profiles("acme", "update_time desc", pushdown(tree), None, 1000)
        found = {row.profile_id for row in pushed if matches(tree, row.traits, {}, row.times)}
        assert found == wanted, text
        if isinstance(tree, Comparison):
            assert {row.profile_id for row in pushed} == wanted, text


def test_list_order_and_positions_page_through_everyone_once(
    store: ProfileStore, apply: Apply, clock: Clock
) -> None:
    for index in range(9):
        apply(identify(user_id=f"u{index}", at=NOW))
        clock.advance(seconds=1)
    seen: list[str] = []
    after = None
    while True:
        rows = store.list_profiles("acme", "create_time", [], after, 4)
        seen += [row.profile_id for row in rows]
        if len(rows) < 4:
            break
        after = (rows[-1].sort_value, rows[-1].profile_id)
    assert len(seen) == len(set(seen)) == 9
    created = [store.get("acme", p).created_at for p in seen]  # type: ignore[union-attr]
    assert created == sorted(created)
    assert created[0] >= datetime(2025, 1, 1, tzinfo=UTC)
