"""The outbox rows: messages written in the transaction that makes a change."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from mailwright_profile.store import tables as t
from mailwright_profile.store.bulk import BulkInsert, Send, delete_keys

__all__ = [
    "CHANGED_TOPIC",
    "DELETED_TOPIC",
    "Outgoing",
    "delete_outbox",
    "send_outbox",
    "write_outbox",
]

CHANGED_TOPIC = "profiles.changed"
DELETED_TOPIC = "profiles.deleted"


_INSERT = BulkInsert(
    t.outbox, ["id", "workspace", "profile_id", "topic", "key", "payload", "created_at"]
)
_SEQUENCE = itertools.count()
_PROCESS = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class Outgoing:
    """A message written to the outbox; `id` orders publication (see `outbox_id`)."""

    id: str
    topic: str
    key: str
    payload: bytes


def outbox_id() -> str:
    """A new outbox id: the time, a counter of this process, the process. Text order is
    creation order within a process, and roughly time order across processes."""
    return f"{time.time_ns():020d}-{next(_SEQUENCE):010d}-{_PROCESS}"


def write_outbox(
    conn: sa.Connection, messages: Sequence[tuple[str, str, str, str, bytes]], now: datetime
) -> list[Outgoing]:
    """Insert (workspace, profile, topic, key, payload) messages; return them with ids."""
    return send_outbox(lambda bulk, rows: bulk(conn, rows), messages, now)


def send_outbox(
    send: Send, messages: Sequence[tuple[str, str, str, str, bytes]], now: datetime
) -> list[Outgoing]:
    """`write_outbox` through `send` (see `bulk.pipelined`)."""
    if not messages:
        return []
    written = [Outgoing(outbox_id(), m[2], m[3], m[4]) for m in messages]
    send(
        _INSERT,
        [
            (out.id, ws, profile, topic, key, payload, now)
            for out, (ws, profile, topic, key, payload) in zip(written, messages, strict=True)
        ],
    )
    return written


def delete_outbox(conn: sa.Connection, ids: Sequence[str]) -> None:
    delete_keys(conn, t.outbox, "id", ids)
