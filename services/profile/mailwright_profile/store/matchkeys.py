"""Blocking keys of profiles, kept up to date so imports find their candidates by key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from mailwright_profile.matching.incremental import blocking_keys
from mailwright_profile.matching.records import TRAIT_KEYS, Record
from mailwright_profile.profile_state import ProfileState
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.bulk import BulkDelete, BulkInsert, Send, pipelined

__all__ = [
    "MATCH_TRAITS",
    "MatchKeyRow",
    "candidate_profiles",
    "match_key_rows",
    "profile_record",
    "refresh_match_keys",
    "store_match_keys",
]

MATCH_TRAITS = frozenset(k for k in TRAIT_KEYS if k not in ("record_id", "user_id"))


def profile_record(profile_id: str, traits: Mapping[str, Any], user_id: str | None) -> Record:
    """A profile as one match record: its contact traits and its user id."""
    values: dict[str, str | None] = {"record_id": profile_id, "user_id": user_id}
    for key in MATCH_TRAITS:
        value = traits.get(key)
        values[key] = str(value)[:1000] if isinstance(value, str | int) and value != "" else None
    return Record.from_mapping(values)


MatchKeyRow = tuple[str, int, str, str]  # workspace, rule, key, profile id

_DELETE = BulkDelete(t.match_keys, ["workspace", "profile_id"])
_INSERT = BulkInsert(t.match_keys, ["workspace", "rule", "key", "profile_id"])


def match_key_rows(states: Iterable[ProfileState]) -> list[MatchKeyRow]:
    """The blocking keys of these profiles, as `profile_match_keys` rows (no database
    work: the keys come from contact traits alone — no blocking rule reads a user id)."""
    rows: list[MatchKeyRow] = []
    by_workspace: dict[str, list[ProfileState]] = {}
    for state in states:
        by_workspace.setdefault(state.workspace, []).append(state)
    for workspace, group in by_workspace.items():
        records = [profile_record(s.profile_id, s.traits.values, None) for s in group]
        rows += [
            (workspace, rule, key, record.record_id)
            for record, keys in zip(records, blocking_keys(records), strict=True)
            for rule, key in dict.fromkeys(keys)
        ]
    return rows


def store_match_keys(
    send: Send, states: Iterable[ProfileState], rows: Sequence[MatchKeyRow]
) -> None:
    """Replace the stored blocking keys of these profiles with `rows` (two bulk
    statements, sent as `pipelined` sends them)."""
    send(_DELETE, [(state.workspace, state.profile_id) for state in states])
    send(_INSERT, rows)


def refresh_match_keys(conn: sa.Connection, states: Iterable[ProfileState]) -> None:
    """Recompute and store the blocking keys of these profiles."""
    held = list(states)
    with pipelined(conn) as send:
        store_match_keys(send, held, match_key_rows(held))


def candidate_profiles(
    conn: sa.Connection, workspace: str, keys: Iterable[tuple[int, str]], limit: int
) -> list[str]:
    """Live profiles sharing a blocking key with the batch (at most `limit`)."""
    wanted = sorted(set(keys))
    found: dict[str, None] = {}
    for chunk in r.chunks(wanted):
        rows = conn.execute(
            sa.select(t.match_keys.c.profile_id)
            .where(
                t.match_keys.c.workspace == workspace,
                sa.tuple_(t.match_keys.c.rule, t.match_keys.c.key).in_(chunk),
            )
            .distinct()
        )
        for row in rows:
            found[row.profile_id] = None
            if len(found) >= limit:
                return list(found)
    return list(found)
