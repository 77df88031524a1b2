"""`rows.keyed_selects`: the rows whose key is listed, and only those, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mailwright_profile.store import ProfileStore
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
# text keys that JSON and SQL quoting must carry as they are
ODD = [
    "it's",
    "😀 emoji",
    "tab\there",
    'say "hi"',
    "back\\slash",
    "Zoë",
    "東京",
    "a,b",
    "[1]",
    " padded ",
    "null",
    "",
]


def _identities(store: ProfileStore) -> list[tuple[str, str]]:
    values = [f"v{i:04d}" for i in range(1200)] + ODD
    rows = [
        {
            "workspace": "ws",
            "type": kind,
            "value": value,
            "profile_id": f"p{i % 7}",
            "home_id": f"p{i % 7}",
            "source": "test",
            "linked_at": NOW + timedelta(seconds=i),
            "message_id": f"m{i}",
        }
        for kind in ("email", "user_id")
        for i, value in enumerate(values)
    ]
    rows.append({**rows[0], "workspace": "other"})  # another workspace: never found
    with store.db.engine.begin() as conn:
        conn.execute(t.identities.insert(), rows)
    return [(row["type"], row["value"]) for row in rows if row["workspace"] == "ws"]


def _found(store: ProfileStore, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    c = t.identities.c
    query = sa.select(c.type, c.value).where(c.workspace == "ws")
    found: list[tuple[str, str]] = []
    with store.db.engine.connect() as conn:
        for statement in r.keyed_selects(conn, query, [c.type, c.value], keys):
            found += [(row.type, row.value) for row in conn.execute(statement)]
    return found


def test_text_keys_find_exactly_their_rows(store: ProfileStore) -> None:
    held = _identities(store)
    wanted = [*held[::3], ("email", "missing"), ("phone", "v0001"), *held[::3][:5]]
    found = _found(store, wanted)
    assert sorted(found) == sorted(set(wanted) & set(held))
    assert len(found) == len(set(found))
    if store.db.engine.dialect.name == "sqlite":  # in key order, as an IN list gives them
        assert found == sorted(found)
    assert _found(store, []) == []


def test_other_keys_find_exactly_their_rows(store: ProfileStore) -> None:
    _identities(store)
    c = t.identities.c
    query = sa.select(c.message_id).where(c.workspace == "ws", c.type == "email")
    times = [NOW + timedelta(seconds=i) for i in range(0, 1200, 5)] + [NOW - timedelta(days=1)]
    with store.db.engine.connect() as conn:
        found = [
            row.message_id
            for statement in r.keyed_selects(conn, query, [c.linked_at], [(m,) for m in times])
            for row in conn.execute(statement)
        ]
    assert sorted(found) == sorted(f"m{i}" for i in range(0, 1200, 5))
