"""Merges a person asks for, unmerges, and what explains an identity.

An unmerge restores the absorbed profile and everything merged into it after it (its
subtree of the merge forest): identities and events whose home lies in the subtree go
back to it, and both sides' projections are rebuilt from their events. Because every
projection depends only on the set of events, each side ends exactly as it would be had
the merge never happened, plus what arrived since through its own identities.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailwright.errors import FailedPrecondition, NotFound
from mailwright_profile.events import decode_event, read_event
from mailwright_profile.identity import Identity, MergePolicy
from mailwright_profile.profile_state import Change, ProfileState, rebuild
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.apply import BatchApply, ChangeEncoder, MergeDetails
from mailwright_profile.store.matchkeys import refresh_match_keys
from mailwright_profile.store.outbox import CHANGED_TOPIC, Outgoing, write_outbox
from mailwright_profile.views import Explanation, MergeReason, MergeView, RefusalView

REPLAY_CHUNK = 2000


@dataclass
class Refused:
    """Merges the policy refused; recorded, then reported as FAILED_PRECONDITION."""

    reasons: list[str]


@dataclass
class MergeOutcome:
    profile_id: str
    merges: list[MergeView]
    outgoing: list[Outgoing]


@dataclass
class UnmergeOutcome:
    kept_id: str
    restored_id: str
    outgoing: list[Outgoing]


def merge_profiles(
    batch: BatchApply,
    workspace: str,
    target: str,
    sources: Sequence[str],
    actor: str,
    note: str,
) -> MergeOutcome | Refused:
    """Merge live profiles `sources` into `target`, or refuse them all."""
    conn = batch.conn
    policy = batch.policy(workspace)
    held = {
        k: set(v)
        for k, v in r.unique_values(conn, workspace, target, policy.unique_identity_types).items()
    }
    refused: list[tuple[str, str, str]] = []
    for source in sources:
        values = r.unique_values(conn, workspace, source, policy.unique_identity_types)
        conflicts = policy.conflicts(held, values)
        if r.separated(conn, workspace, target, source):
            refused.append((source, "", "the profiles were unmerged by a person"))
        elif conflicts:
            refused.append((source, conflicts[0], f"both profiles hold a different {conflicts[0]}"))
        else:
            for kind, found in values.items():
                held.setdefault(kind, set()).update(found)
    if refused:
        conn.execute(
            t.refusals.insert(),
            [
                {
                    "workspace": workspace,
                    "refusal_id": str(uuid.uuid4()),
                    "profile_id": target,
                    "other_id": source,
                    "identity_type": kind,
                    "reason": f"manual merge by {actor} refused: {reason}",
                    "message_id": "",
                    "created_at": batch.now,
                }
                for source, kind, reason in refused
            ],
        )
        return Refused([f"{source}: {reason}" for source, _, reason in refused])
    batch.states.update(
        {(workspace, p): s for p, s in r.load_states(conn, workspace, [target, *sources]).items()}
    )
    evidence = [{"field": "note", "left_value": note, "level": "manual"}] if note else []
    for source in sources:
        batch.merge(
            workspace,
            target,
            source,
            MergeDetails(MergeReason.MANUAL, (), evidence, 1.0, "", actor),
        )
    result = batch.finish()
    return MergeOutcome(target, result.merges, result.outgoing)


def _subtree(tree: Sequence[tuple[str, str | None]], top: str) -> set[str]:
    children: dict[str, list[str]] = {}
    for profile, parent in tree:
        if parent is not None:
            children.setdefault(parent, []).append(profile)
    found, queue = {top}, deque([top])
    while queue:
        for child in children.get(queue.popleft(), []):
            found.add(child)
            queue.append(child)
    return found


def history(conn: sa.Connection, workspace: str, profile_id: str) -> Iterator[tuple[bytes, str]]:
    """A profile's events as stored (payload, home), in chunks (keyset on time and id)."""
    e = t.events
    after: tuple[datetime, str] | None = None
    while True:
        query = sa.select(e.c.occurred_at, e.c.message_id, e.c.payload, e.c.home_id).where(
            e.c.workspace == workspace, e.c.profile_id == profile_id
        )
        if after is not None:
            query = query.where(
                sa.or_(
                    e.c.occurred_at > after[0],
                    sa.and_(e.c.occurred_at == after[0], e.c.message_id > after[1]),
                )
            )
        rows = conn.execute(
            query.order_by(e.c.occurred_at, e.c.message_id).limit(REPLAY_CHUNK)
        ).all()
        for row in rows:
            yield bytes(row.payload), row.home_id
        if len(rows) < REPLAY_CHUNK:
            return
        after = (row.occurred_at, row.message_id)


def rebuild_state(
    conn: sa.Connection, workspace: str, profile_id: str, policy: MergePolicy
) -> ProfileState:
    """A profile's projections replayed from its stored history."""
    row = conn.execute(
        sa.select(t.profiles).where(
            t.profiles.c.workspace == workspace, t.profiles.c.profile_id == profile_id
        )
    ).one()
    events = (
        read_event(decode_event(payload), payload)
        for payload, _ in history(conn, workspace, profile_id)
    )
    state = rebuild(workspace, profile_id, r.utc(row.created_at), events, policy)
    state.version = int(row.version)
    state.computed = dict(row.computed or {})
    return state


def unmerge(
    conn: sa.Connection,
    workspace: str,
    merge_id: str,
    actor: str,
    now: datetime,
    policy: MergePolicy,
    encode: ChangeEncoder,
) -> UnmergeOutcome:
    m = t.merges
    row = conn.execute(
        sa.select(m).where(m.c.workspace == workspace, m.c.merge_id == merge_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"merge workspaces/{workspace}/merges/{merge_id} not found")
    if row.unmerged_at is not None:
        raise FailedPrecondition("this merge was already reversed")
    absorbed, kept = row.absorbed_id, row.kept_id
    current = conn.execute(
        sa.select(t.profiles.c.merged_into, t.profiles.c.root_id).where(
            t.profiles.c.workspace == workspace, t.profiles.c.profile_id == absorbed
        )
    ).first()
    if current is None:
        raise FailedPrecondition("the merged profiles were erased")
    if current.merged_into != kept:
        raise FailedPrecondition("the absorbed profile is no longer held by this merge")
    root = str(current.root_id)
    r.load_states(conn, workspace, [root])  # lock the tree's root
    before = r.profile_view(conn, workspace, root)
    subtree = _subtree(r.members(conn, workspace, root), absorbed)
    conn.execute(
        t.profiles.update()
        .where(t.profiles.c.workspace == workspace, t.profiles.c.profile_id == absorbed)
        .values(merged_into=None)
    )
    for chunk in r.chunks(sorted(subtree)):
        conn.execute(
            t.profiles.update()
            .where(t.profiles.c.workspace == workspace, t.profiles.c.profile_id.in_(chunk))
            .values(root_id=absorbed)
        )
        for table in (t.identities, t.events):
            conn.execute(
                table.update()
                .where(
                    table.c.workspace == workspace,
                    table.c.profile_id == root,
                    table.c.home_id.in_(chunk),
                )
                .values(profile_id=absorbed)
            )
    conn.execute(
        m.update()
        .where(m.c.workspace == workspace, m.c.merge_id == merge_id)
        .values(unmerged_at=now, unmerged_by=actor)
    )
    messages = []
    states = []
    for profile, other in ((root, absorbed), (absorbed, root)):
        state = rebuild_state(conn, workspace, profile, policy)
        state.version += 1
        states.append(state)
        change = Change(traits=set(state.traits.meta), consents=set(state.consents.entries))
        if profile == absorbed:
            change.identities = [
                link.identity for link in r.identity_links(conn, workspace, profile)
            ]
        elif before is not None:
            change.traits |= set(before.traits)
        computed, removed = state.refresh_computed(now)
        conn.execute(
            t.profiles.update()
            .where(t.profiles.c.workspace == workspace, t.profiles.c.profile_id == profile)
            .values(**r.state_values(state, now, state.refresh_at(now)))
        )
        payload = encode(state, change, computed, removed, now, other)
        messages.append((workspace, profile, CHANGED_TOPIC, f"{workspace}:{profile}", payload))
    refresh_match_keys(conn, states)
    return UnmergeOutcome(root, absorbed, write_outbox(conn, messages, now))


def _label(identity: Identity) -> str:
    return f"{identity.type}:{identity.value}"


def explain(
    conn: sa.Connection,
    workspace: str,
    root: str,
    left: Identity | None,
    right: Identity | None,
) -> Explanation:
    """Links, merges and refusals of a profile; with two identities, the merge path
    between their homes."""
    tree = r.members(conn, workspace, root)
    member_ids = sorted(p for p, _ in tree)
    links = r.identity_links(conn, workspace, root)
    m = t.merges
    merge_rows = conn.execute(
        sa.select(m)
        .where(
            m.c.workspace == workspace, m.c.absorbed_id.in_(member_ids), m.c.unmerged_at.is_(None)
        )
        .order_by(m.c.created_at)
    ).all()
    merges = [r.merge_from_row(row) for row in merge_rows]
    f = t.refusals
    refusal_rows = conn.execute(
        sa.select(f)
        .where(
            f.c.workspace == workspace,
            sa.or_(f.c.profile_id.in_(member_ids), f.c.other_id.in_(member_ids)),
        )
        .order_by(f.c.created_at)
    ).all()
    refusals = [
        RefusalView(
            x.profile_id, x.other_id, x.identity_type, x.reason, x.message_id, r.utc(x.created_at)
        )
        for x in refusal_rows
    ]
    explanation = Explanation(root, True, links, merges, refusals)
    if left is None or right is None:
        return explanation
    homes = {_label(link.identity): link.home_id for link in links}
    wanted = [link for link in links if link.identity in (left, right)]
    explanation.links = wanted
    explanation.homes = homes
    start, goal = homes.get(_label(left)), homes.get(_label(right))
    if start is None or goal is None:
        explanation.same_profile = False
        explanation.merges = []
        return explanation
    explanation.merges = _path(merges, start, goal)
    return explanation


def _path(merges: Sequence[MergeView], start: str, goal: str) -> list[MergeView]:
    """The merges joining two profiles of one tree (each joins a profile to its parent)."""
    neighbours: dict[str, list[tuple[str, MergeView]]] = {}
    for merge in merges:
        neighbours.setdefault(merge.kept_id, []).append((merge.absorbed_id, merge))
        neighbours.setdefault(merge.absorbed_id, []).append((merge.kept_id, merge))
    came: dict[str, tuple[str, MergeView] | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            break
        for other, merge in neighbours.get(node, []):
            if other not in came:
                came[other] = (node, merge)
                queue.append(other)
    path: list[MergeView] = []
    step = came.get(goal)
    while step is not None:
        previous, merge = step
        path.append(merge)
        step = came[previous]
    return sorted(path, key=lambda x: x.created_at)
