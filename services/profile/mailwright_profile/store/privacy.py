"""The rights of the person: erasure and export.

Erasure deletes every row about the profile and the profiles merged into it: the
profiles, identities, event history, merges, refusals, merge candidates, trait conflicts,
match keys, unpublished outbox messages and the request-log responses that show them.
What stays is what proves the erasure and keeps it effective, and nothing that
identifies the person: `profile_erasures` (the erased profile ids, when, how many
identities and events) so that events later addressed to those ids are dropped, and
`profile_erased_events` (SHA-256 of the erased events' ids, pruned after a week) so that
a late redelivery of one of them does not bring the person back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright_profile.identity import Identity
from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t
from mailwright_profile.store.identities import history
from mailwright_profile.store.outbox import DELETED_TOPIC, Outgoing, write_outbox
from mailwright_profile.views import CandidateView, MergeView, ProfileView, RefusalView

# Request-log methods whose responses hold a person's data.
PROFILE_METHODS = (
    "MergeProfiles",
    "UnmergeProfile",
    "ResolveRecords",
    "UpdateConsent",
    "DeleteProfile",
)


@dataclass
class Erased:
    profile_id: str
    members: list[str]
    identities: int
    events: int
    outgoing: list[Outgoing]


@dataclass
class ExportData:
    view: ProfileView
    merges: list[MergeView]
    refusals: list[RefusalView]
    candidates: list[CandidateView]
    conflicts: list[dict[str, Any]]
    events: list[bytes] = field(default_factory=list)


def _in(column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
    return column.in_(list(values))


def erase(
    conn: sa.Connection,
    workspace: str,
    root: str,
    now: datetime,
    encode_deleted: Callable[[str, str, list[str], list[str], datetime], bytes],
    hashes_of: Callable[[list[Identity], list[Any]], list[str]],
) -> Erased:
    tree = [p for p, _ in r.members(conn, workspace, root)]
    links = r.identity_links(conn, workspace, root)
    traits_row = conn.execute(
        sa.select(t.profiles.c.traits).where(
            t.profiles.c.workspace == workspace, t.profiles.c.profile_id == root
        )
    ).one()
    email_values = [v for k, v in (traits_row.traits or {}).items() if "email" in k.lower()]
    message_ids = [
        row.message_id
        for row in conn.execute(
            sa.select(t.events.c.message_id).where(
                t.events.c.workspace == workspace, t.events.c.profile_id == root
            )
        )
    ]
    ws = t.profiles.c.workspace == workspace
    conn.execute(
        t.events.delete().where(t.events.c.workspace == workspace, t.events.c.profile_id == root)
    )
    conn.execute(
        t.identities.delete().where(
            t.identities.c.workspace == workspace, t.identities.c.profile_id == root
        )
    )
    for chunk in r.chunks(tree):
        conn.execute(
            t.merges.delete().where(
                t.merges.c.workspace == workspace,
                sa.or_(_in(t.merges.c.kept_id, chunk), _in(t.merges.c.absorbed_id, chunk)),
            )
        )
        conn.execute(
            t.refusals.delete().where(
                t.refusals.c.workspace == workspace,
                sa.or_(_in(t.refusals.c.profile_id, chunk), _in(t.refusals.c.other_id, chunk)),
            )
        )
        c = t.merge_candidates
        conn.execute(
            c.delete().where(
                c.c.workspace == workspace,
                sa.or_(_in(c.c.left_id, chunk), _in(c.c.right_id, chunk)),
            )
        )
        for table in (t.conflicts, t.match_keys, t.outbox):
            conn.execute(
                table.delete().where(table.c.workspace == workspace, _in(table.c.profile_id, chunk))
            )
        conn.execute(t.profiles.delete().where(ws, _in(t.profiles.c.profile_id, chunk)))
    _erase_request_log(conn, workspace, tree)
    conn.execute(
        t.erasures.insert(),
        [
            {
                "workspace": workspace,
                "profile_id": profile,
                "erased_at": now,
                "identities": len(links) if profile == root else 0,
                "events": len(message_ids) if profile == root else 0,
            }
            for profile in tree
        ],
    )
    if message_ids:
        conn.execute(
            t.erased_events.insert(),
            [
                {
                    "workspace": workspace,
                    "message_hash": hashlib.sha256(m.encode()).hexdigest(),
                    "erased_at": now,
                }
                for m in message_ids
            ],
        )
    hashes = hashes_of([link.identity for link in links], email_values)
    merged = sorted(p for p in tree if p != root)
    payload = encode_deleted(workspace, root, hashes, merged, now)
    outgoing = write_outbox(
        conn, [(workspace, root, DELETED_TOPIC, f"{workspace}:{root}", payload)], now
    )
    return Erased(root, tree, len(links), len(message_ids), outgoing)


def _erase_request_log(conn: sa.Connection, workspace: str, profile_ids: Sequence[str]) -> None:
    """Drop logged responses that show any of the profiles."""
    log = t.request_log
    needles = [p.encode() for p in profile_ids]
    rows = conn.execute(
        sa.select(log.c.method, log.c.request_id, log.c.response).where(
            log.c.workspace == workspace,
            log.c.method.in_(PROFILE_METHODS),
        )
    )
    doomed = [
        (row.method, row.request_id)
        for row in rows
        if row.response is not None and any(n in bytes(row.response) for n in needles)
    ]
    for method, request_id in doomed:
        conn.execute(
            log.delete().where(
                log.c.workspace == workspace,
                log.c.method == method,
                log.c.request_id == request_id,
            )
        )


def export_data(conn: sa.Connection, workspace: str, view: ProfileView) -> ExportData:
    tree = [p for p, _ in r.members(conn, workspace, view.profile_id)]
    merges: list[MergeView] = []
    refusals: list[RefusalView] = []
    candidates: list[CandidateView] = []
    conflicts: list[dict[str, Any]] = []
    for chunk in r.chunks(tree):
        m = t.merges
        merges += [
            r.merge_from_row(row)
            for row in conn.execute(
                sa.select(m).where(
                    m.c.workspace == workspace,
                    sa.or_(_in(m.c.kept_id, chunk), _in(m.c.absorbed_id, chunk)),
                )
            )
        ]
        f = t.refusals
        refusals += [
            RefusalView(
                x.profile_id,
                x.other_id,
                x.identity_type,
                x.reason,
                x.message_id,
                r.utc(x.created_at),
            )
            for x in conn.execute(
                sa.select(f).where(
                    f.c.workspace == workspace,
                    sa.or_(_in(f.c.profile_id, chunk), _in(f.c.other_id, chunk)),
                )
            )
        ]
        c = t.merge_candidates
        candidates += [
            CandidateView(
                x.left_id, x.right_id, float(x.score), tuple(x.evidence), r.utc(x.created_at)
            )
            for x in conn.execute(
                sa.select(c).where(
                    c.c.workspace == workspace,
                    sa.or_(_in(c.c.left_id, chunk), _in(c.c.right_id, chunk)),
                )
            )
        ]
        k = t.conflicts
        conflicts += [
            {
                "trait": x.key,
                "sources": list(x.sources),
                "count": int(x._mapping["count"]),
                "last_at": r.utc(x.last_at),
            }
            for x in conn.execute(
                sa.select(k).where(k.c.workspace == workspace, _in(k.c.profile_id, chunk))
            )
        ]
    events = [payload for payload, _ in history(conn, workspace, view.profile_id)]
    return ExportData(
        view, sorted(merges, key=lambda x: x.created_at), refusals, candidates, conflicts, events
    )
