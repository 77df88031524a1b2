"""The relay's side of the bus outbox."""

from __future__ import annotations

import sqlalchemy as sa

from mailwright_delivery.records import OutboxMessage
from mailwright_delivery.store.base import lock_for_claim
from mailwright_delivery.store.tables import outbox


class OutboxQueries:
    engine: sa.Engine
    reader: sa.Engine

    def outbox_batch(self, limit: int = 500) -> list[tuple[int, OutboxMessage]]:
        """The oldest messages waiting. A read: on SQLite it takes no write lock (the
        relay deletes what it published in its own transaction afterwards)."""
        with self.reader.begin() as conn:
            query = lock_for_claim(
                sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload)
                .order_by(outbox.c.id)
                .limit(limit),
                conn,
            )
            rows = conn.execute(query).all()
        return [(row.id, OutboxMessage(row.topic, row.key, bytes(row.payload))) for row in rows]

    def outbox_delete(self, ids: list[int]) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(outbox.delete().where(outbox.c.id.in_(ids)))

    def outbox_size(self) -> int:
        with self.reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())
