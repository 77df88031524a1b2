"""The outbox rows: messages written in the transaction that makes a change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailwright_profile.store import rows as r
from mailwright_profile.store import tables as t

__all__ = ["CHANGED_TOPIC", "DELETED_TOPIC", "Outgoing", "delete_outbox", "write_outbox"]

CHANGED_TOPIC = "profiles.changed"
DELETED_TOPIC = "profiles.deleted"


@dataclass(frozen=True)
class Outgoing:
    """A message written to the outbox; `id` orders publication."""

    id: int
    topic: str
    key: str
    payload: bytes


def write_outbox(
    conn: sa.Connection, messages: Sequence[tuple[str, str, str, str, bytes]], now: datetime
) -> list[Outgoing]:
    """Insert (workspace, profile, topic, key, payload) messages; return them with ids."""
    if not messages:
        return []
    rows = [
        {
            "workspace": ws,
            "profile_id": profile,
            "topic": topic,
            "key": key,
            "payload": payload,
            "created_at": now,
        }
        for ws, profile, topic, key, payload in messages
    ]
    ids = conn.execute(
        t.outbox.insert().returning(t.outbox.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    return [Outgoing(int(i), m[2], m[3], m[4]) for i, m in zip(ids, messages, strict=True)]


def delete_outbox(conn: sa.Connection, ids: Sequence[int]) -> None:
    for chunk in r.chunks(list(ids), 500):
        conn.execute(t.outbox.delete().where(t.outbox.c.id.in_(chunk)))
