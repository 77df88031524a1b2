"""Writing what a batch did: history rows, identities, profiles, merges, refusals,
conflicts, trait keys, match keys and the outbox — a handful of bulk statements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mailwright_profile.profile_state import ProfileState
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.bulk import BulkInsert, BulkUpdate
from mailwright_profile.store.matchkeys import MATCH_TRAITS, match_key_rows, store_match_keys
from mailwright_profile.store.outbox import CHANGED_TOPIC, send_outbox
from mailwright_profile.traits import value_type

if TYPE_CHECKING:
    from mailwright_profile.store.apply import BatchApply

__all__ = ["HISTORY", "history_rows", "write_batch"]


HISTORY = BulkInsert(
    t.events,
    [
        "workspace",
        "message_id",
        "occurred_at",
        "profile_id",
        "home_id",
        "type",
        "name",
        "source",
        "received_at",
        "payload",
    ],
)
_IDENTITIES = BulkInsert(
    t.identities,
    ["workspace", "type", "value", "profile_id", "home_id", "source", "linked_at", "message_id"],
)
_PROFILE_COLUMNS = [c.name for c in t.profiles.columns if c.name != "scores"]
_NEW_PROFILES = BulkInsert(t.profiles, _PROFILE_COLUMNS)
_MOVE_HISTORY = (
    t.events.update()
    .where(t.events.c.workspace == sa.bindparam("ws"), t.events.c.profile_id == sa.bindparam("old"))
    .values(profile_id=sa.bindparam("new"))
)
_UPDATES: dict[tuple[str, ...], BulkUpdate] = {}  # by the columns written


def _update(columns: tuple[str, ...]) -> BulkUpdate:
    held = _UPDATES.get(columns)
    if held is None:
        held = _UPDATES[columns] = BulkUpdate(t.profiles, ["workspace", "profile_id"], columns)
    return held


@dataclass
class _ProfileRows:
    """What a batch writes of its profiles, made before any of it is written."""

    new: list[dict[str, Any]] = field(default_factory=list)
    updates: dict[tuple[str, ...], list[tuple[Any, ...]]] = field(default_factory=dict)
    absorbed: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    outbox: list[tuple[str, str, str, str, bytes]] = field(default_factory=list)
    match_changed: list[ProfileState] = field(default_factory=list)


def history_rows(batch: BatchApply, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`profile_events` rows of history rows as `BatchApply.event_rows` holds them, each
    with its profile as it stands now."""
    now, absorbed, root = batch.now, batch.absorbed, batch.root
    return [
        (
            ws,
            message,
            occurred,
            root(ws, profile) if absorbed else profile,
            home,
            kind,
            name,
            source,
            now,
            payload,
        )
        for ws, message, occurred, profile, home, kind, name, source, payload in rows
    ]


def write_batch(batch: BatchApply) -> None:
    now, absorbed, root = batch.now, batch.absorbed, batch.root
    # On PostgreSQL the statements go out in one pipeline (`bulk.pipelined`): most of the
    # history is on its way already (`BatchApply.run`), and the server stores it while the
    # profiles' rows and match keys are made here; then each statement while the next is
    # made, and the last ones while the caller does what it has to (`meanwhile`).
    batch.stream_history()
    send = batch.send
    rows = _profile_rows(batch)
    match_keys = match_key_rows(rows.match_changed)
    send(_NEW_PROFILES, [tuple(row[c] for c in _PROFILE_COLUMNS) for row in rows.new])
    for columns, updated in rows.updates.items():
        send(_update(columns), updated)
    send(
        _IDENTITIES,
        [
            (ws, kind, value, root(ws, profile) if absorbed else profile, *rest)
            for ws, kind, value, profile, *rest in batch.identity_rows
        ],
    )
    if rows.match_changed:
        store_match_keys(send, rows.match_changed, match_keys)
    batch.result.outgoing = send_outbox(send, rows.outbox, now)
    if batch.meanwhile is not None and batch.pipelining:
        batch.meanwhile()  # (elsewhere the rows are stored already: nothing to overlap)
    # What is rare (merges, refusals, conflicts, new trait keys) goes through SQLAlchemy,
    # which ends the pipeline; a merged-away profile's row after the row of the profile
    # it points to.
    conn = batch.conn
    if absorbed and batch.streamed:
        # History streamed before its profile was merged away later in the batch (merges
        # are rare: every merged-away profile is asked, most hold no such row).
        moved = [{"ws": ws, "old": p, "new": root(ws, p)} for ws, p in absorbed]
        conn.execute(_MOVE_HISTORY, moved)
    for ws, profile, values in rows.absorbed:
        conn.execute(
            t.profiles.update()
            .where(t.profiles.c.workspace == ws, t.profiles.c.profile_id == profile)
            .values(**values)
        )
    if batch.merge_rows:
        conn.execute(t.merges.insert(), batch.merge_rows)
    if batch.refusal_rows:
        conn.execute(t.refusals.insert(), batch.refusal_rows)
    _write_conflicts(batch)
    _write_trait_keys(batch)


def _profile_rows(batch: BatchApply) -> _ProfileRows:
    """The rows of the profiles the batch changed, their computed traits refreshed, and
    one `profiles.changed` each (no database work: see `write_batch`)."""
    now, made = batch.now, _ProfileRows()
    for (ws, profile), state in batch.states.items():
        absorbed_into = batch.absorbed.get((ws, profile))
        if absorbed_into is not None:
            if state.new:
                made.new.append(r.new_profile_row(state, now))
                made.new[-1].update(root_id=batch.root(ws, profile), merged_into=absorbed_into)
            else:
                values = r.state_values(state, now, None)
                values.update(root_id=batch.root(ws, profile), merged_into=absorbed_into)
                made.absorbed.append((ws, profile, values))
            continue
        change = batch.changes.get((ws, profile))
        if change is None or change.empty:
            continue
        state.version += 1
        computed, removed = state.refresh_computed(now, change.facets)
        made.outbox.append(
            (
                ws,
                profile,
                CHANGED_TOPIC,
                f"{ws}:{profile}",
                batch.encode(state, change, computed, removed, now),
            )
        )
        if state.new:
            made.new.append(r.new_profile_row(state, now))
            made.new[-1]["refresh_at"] = state.refresh_at(now)
        else:
            values = r.state_values(state, now, state.refresh_at(now))
            # Most events change neither traits nor consents: leave those documents be.
            if not state.traits.dirty:
                del values["traits"], values["trait_meta"]
            if not change.consents:
                del values["consents"]
            made.updates.setdefault(tuple(values), []).append((ws, profile, *values.values()))
        if (
            change.merged
            or change.traits & MATCH_TRAITS
            or any(i.type in ("user_id", "email", "phone") for i in change.identities)
        ):
            made.match_changed.append(state)
    return made


def _write_conflicts(batch: BatchApply) -> None:
    if not batch.conflicts:
        return
    merged: dict[tuple[str, str, str], tuple[set[str], int]] = {}
    for ws, profile, key, first, second in batch.conflicts:
        profile = batch.root(ws, profile)
        sources, count = merged.get((ws, profile, key), (set(), 0))
        merged[(ws, profile, key)] = (sources | {first, second}, count + 1)
    for (ws, profile, key), (sources, count) in merged.items():
        where = (
            t.conflicts.c.workspace == ws,
            t.conflicts.c.profile_id == profile,
            t.conflicts.c.key == key,
        )
        held = batch.conn.execute(sa.select(t.conflicts).where(*where)).first()
        if held is None:
            batch.conn.execute(
                t.conflicts.insert().values(
                    workspace=ws,
                    profile_id=profile,
                    key=key,
                    sources=sorted(sources),
                    count=count,
                    last_at=batch.now,
                )
            )
        else:
            batch.conn.execute(
                t.conflicts.update()
                .where(*where)
                .values(
                    sources=sorted(set(held.sources) | sources),
                    count=int(held._mapping["count"]) + count,
                    last_at=batch.now,
                )
            )


def _write_trait_keys(batch: BatchApply) -> None:
    wanted: dict[tuple[str, str], str] = {}
    for (ws, profile), change in batch.changes.items():
        values = batch.states[(ws, profile)].traits.values
        for key in change.traits:
            if key not in values:
                continue
            kind = value_type(values[key])
            if (ws, key, kind) not in batch.known_trait_keys:
                wanted[(ws, key)] = kind
    if not wanted:
        return
    for (ws, key), kind in wanted.items():
        held = batch.conn.execute(
            sa.select(t.trait_keys.c.type).where(
                t.trait_keys.c.workspace == ws, t.trait_keys.c.key == key
            )
        ).first()
        if held is None:
            batch.conn.execute(
                t.trait_keys.insert().values(workspace=ws, key=key, type=kind, first_seen=batch.now)
            )
        elif held.type != kind:
            batch.conn.execute(
                t.trait_keys.update()
                .where(t.trait_keys.c.workspace == ws, t.trait_keys.c.key == key)
                .values(type=kind)
            )
        batch.result.trait_keys.add((ws, key, kind))
