"""Imports against stored profiles: finding candidates, and applying decisions.

Each imported record becomes an identify event of its source (its fields as traits, its
email, phone and user id as identities), applied like any other event, so that its data
sits in the history and every projection — and an unmerge — treats it like the rest.
A record matched probabilistically keeps the profile its event made, merged into the
matched profile with reason PROBABILISTIC and the comparison evidence: reversible.
Two profiles that existed before the import are never merged by it; such a pair is a
merge candidate for review, as are pairs in the review band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright_profile.events import IncomingEvent
from mailwright_profile.imports import (
    NEW_PREFIX,
    PROFILE_PREFIX,
    Candidate,
    Decisions,
    ImportRecord,
)
from mailwright_profile.matching.model import MatchModel
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.apply import BatchApply, MergeDetails
from mailwright_profile.store.matchkeys import candidate_profiles, profile_record
from mailwright_profile.store.outbox import Outgoing
from mailwright_profile.views import MergeReason

MAX_CANDIDATES = 20_000


@dataclass
class Applied:
    profiles: dict[str, str]  # record id → profile
    outgoing: list[Outgoing]


def owners(conn: sa.Connection, workspace: str, records: Sequence[ImportRecord]) -> dict[str, str]:
    """Record id → the stored profile holding one of its identities (strongest first)."""
    found: dict[str, str] = {}
    for record in records:
        for identity in record.identities():
            row = conn.execute(
                sa.select(t.identities.c.profile_id).where(
                    t.identities.c.workspace == workspace,
                    t.identities.c.type == identity.type,
                    t.identities.c.value == identity.value,
                )
            ).first()
            if row is not None:
                found[record.record_id] = row.profile_id
                break
    return found


def candidates(
    conn: sa.Connection, workspace: str, keys: Sequence[tuple[int, str]], extra: Sequence[str]
) -> list[Candidate]:
    """Stored profiles sharing a blocking key with the batch, as match records."""
    found = candidate_profiles(conn, workspace, keys, MAX_CANDIDATES)
    wanted = list(dict.fromkeys([*found, *extra]))
    result = []
    for chunk in r.chunks(wanted):
        rows = conn.execute(
            sa.select(t.profiles.c.profile_id, t.profiles.c.traits).where(
                t.profiles.c.workspace == workspace,
                t.profiles.c.profile_id.in_(chunk),
                t.profiles.c.merged_into.is_(None),
            )
        ).all()
        users = dict(
            conn.execute(
                sa.select(t.identities.c.profile_id, t.identities.c.value).where(
                    t.identities.c.workspace == workspace,
                    t.identities.c.type == "user_id",
                    t.identities.c.profile_id.in_(chunk),
                )
            ).all()
        )
        for row in rows:
            record = profile_record(row.profile_id, row.traits or {}, users.get(row.profile_id))
            result.append(Candidate(row.profile_id, record))
    return result


def live_profiles(conn: sa.Connection, workspace: str) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(t.profiles)
            .where(t.profiles.c.workspace == workspace, t.profiles.c.merged_into.is_(None))
        ).scalar_one()
    )


def stored_model(conn: sa.Connection, workspace: str) -> tuple[MatchModel, int] | None:
    row = conn.execute(sa.select(t.models).where(t.models.c.workspace == workspace)).first()
    if row is None:
        return None
    try:
        return MatchModel.from_json(row.model), int(row.records)
    except ValueError:
        return None


def store_model(
    conn: sa.Connection, workspace: str, model: MatchModel, records: int, now: datetime
) -> None:
    values = {"model": model.to_json(), "records": records, "fitted_at": now}
    done = conn.execute(t.models.update().where(t.models.c.workspace == workspace).values(**values))
    if not done.rowcount:
        conn.execute(t.models.insert().values(workspace=workspace, **values))


def _add_candidate(
    conn: sa.Connection,
    workspace: str,
    pair: tuple[str, str],
    score: float,
    evidence: list[dict[str, Any]],
    now: datetime,
) -> None:
    left, right = sorted(pair)
    c = t.merge_candidates
    where = (c.c.workspace == workspace, c.c.left_id == left, c.c.right_id == right)
    held = conn.execute(sa.select(c.c.score).where(*where)).first()
    if held is None:
        conn.execute(
            c.insert().values(
                workspace=workspace,
                left_id=left,
                right_id=right,
                score=score,
                evidence=evidence,
                created_at=now,
            )
        )
    elif score > float(held.score):
        conn.execute(c.update().where(*where).values(score=score, evidence=evidence))


def apply_decisions(
    batch: BatchApply,
    workspace: str,
    decisions: Decisions,
    events: Mapping[str, IncomingEvent],
    actor: str,
) -> Applied:
    """Apply the records' events and the merges and candidates the decisions call for."""
    conn = batch.conn
    fresh = {e.message_id for e in batch.prepare(list(events.values()))}
    profile_of: dict[str, str] = {}
    for resolved in decisions.records:
        event = events[resolved.record.record_id]
        if event.message_id in fresh:
            target = batch.apply_one(event)
        else:
            target = batch.result.profiles.get(event.message_id)
        if target is not None:
            profile_of[resolved.record.record_id] = batch.root(workspace, target)
    policy = batch.policy(workspace)
    for resolved in decisions.records:
        mine = profile_of.get(resolved.record.record_id)
        join = resolved.existing or (
            profile_of.get(resolved.leader) if resolved.leader is not None else None
        )
        if mine is None or join is None:
            continue
        mine, join = batch.root(workspace, mine), batch.root(workspace, join)
        if mine == join:
            continue
        pair = (mine, join)
        both_stored = not batch.state(workspace, mine).new and not batch.state(workspace, join).new
        conflict = policy.conflicts(
            batch.unique_of(workspace, mine, policy), batch.unique_of(workspace, join, policy)
        )
        if both_stored or conflict or r.separated(conn, workspace, mine, join):
            _add_candidate(conn, workspace, pair, resolved.score, resolved.evidence, batch.now)
            continue
        kept, absorbed = batch.older(workspace, join, mine)
        batch.merge(
            workspace,
            kept,
            absorbed,
            MergeDetails(
                MergeReason.PROBABILISTIC,
                (),
                resolved.evidence,
                resolved.score,
                events[resolved.record.record_id].message_id,
                actor,
            ),
        )
    for left, right, score, evidence in decisions.review:
        first = _profile(left, profile_of)
        second = _profile(right, profile_of)
        if first is None or second is None:
            continue
        first, second = batch.root(workspace, first), batch.root(workspace, second)
        if first != second:
            _add_candidate(conn, workspace, (first, second), score, evidence, batch.now)
    result = batch.finish()
    return Applied(
        {rid: batch.root(workspace, p) for rid, p in profile_of.items()}, result.outgoing
    )


def _profile(match_id: str, profile_of: Mapping[str, str]) -> str | None:
    if match_id.startswith(PROFILE_PREFIX):
        return match_id[len(PROFILE_PREFIX) :]
    return profile_of.get(match_id.removeprefix(NEW_PREFIX))
