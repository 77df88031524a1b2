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

__all__ = ["MATCH_TRAITS", "candidate_profiles", "profile_record", "refresh_match_keys"]

MATCH_TRAITS = frozenset(k for k in TRAIT_KEYS if k not in ("record_id", "user_id"))


def profile_record(profile_id: str, traits: Mapping[str, Any], user_id: str | None) -> Record:
    """A profile as one match record: its contact traits and its user id."""
    values: dict[str, str | None] = {"record_id": profile_id, "user_id": user_id}
    for key in MATCH_TRAITS:
        value = traits.get(key)
        values[key] = str(value)[:1000] if isinstance(value, str | int) and value != "" else None
    return Record.from_mapping(values)


def _user_ids(conn: sa.Connection, workspace: str, profiles: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in r.chunks(sorted(profiles)):
        rows = conn.execute(
            sa.select(t.identities.c.profile_id, t.identities.c.value)
            .where(
                t.identities.c.workspace == workspace,
                t.identities.c.type == "user_id",
                t.identities.c.profile_id.in_(chunk),
            )
            .order_by(t.identities.c.linked_at)
        )
        for row in rows:
            found.setdefault(row.profile_id, row.value)
    return found


def refresh_match_keys(conn: sa.Connection, states: Iterable[ProfileState]) -> None:
    """Recompute and store the blocking keys of these profiles."""
    by_workspace: dict[str, list[ProfileState]] = {}
    for state in states:
        by_workspace.setdefault(state.workspace, []).append(state)
    for workspace, group in by_workspace.items():
        users = _user_ids(conn, workspace, [s.profile_id for s in group])
        records = [
            profile_record(s.profile_id, s.traits.values, users.get(s.profile_id)) for s in group
        ]
        for chunk in r.chunks([s.profile_id for s in group]):
            conn.execute(
                t.match_keys.delete().where(
                    t.match_keys.c.workspace == workspace, t.match_keys.c.profile_id.in_(chunk)
                )
            )
        rows = [
            {"workspace": workspace, "rule": rule, "key": key, "profile_id": record.record_id}
            for record, keys in zip(records, blocking_keys(records), strict=True)
            for rule, key in dict.fromkeys(keys)
        ]
        if rows:
            conn.execute(t.match_keys.insert(), rows)


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
