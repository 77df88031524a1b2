"""The relay's side of the bus outbox."""

from __future__ import annotations

import sqlalchemy as sa

from mailwright_delivery.records import OutboxMessage
from mailwright_delivery.store.tables import outbox

# Built once: the relay runs these after every recorded outcome (see send_queries).
_OLDEST = (
    sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload, outbox.c.trace_parent)
    .order_by(outbox.c.id)
    .limit(sa.bindparam("b_limit"))
)
# On PostgreSQL, skip the rows another replica's relay holds (`lock_for_claim`).
_OLDEST_FOR_UPDATE = _OLDEST.with_for_update(skip_locked=True)
_DELETE = outbox.delete().where(outbox.c.id.in_(sa.bindparam("b_ids", expanding=True)))


class OutboxQueries:
    engine: sa.Engine
    reader: sa.Engine

    def outbox_batch(self, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        """The oldest messages waiting. A read: on SQLite it takes no write lock (the
        relay deletes what it published in its own transaction afterwards)."""
        with self.reader.begin() as conn:
            query = _OLDEST_FOR_UPDATE if conn.dialect.name == "postgresql" else _OLDEST
            rows = conn.execute(query, {"b_limit": limit}).all()
        return [
            (row.id, OutboxMessage(row.topic, row.key, bytes(row.payload), row.trace_parent))
            for row in rows
        ]

    def outbox_delete(self, ids: list[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(_DELETE, {"b_ids": ids})

    def outbox_size(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())
