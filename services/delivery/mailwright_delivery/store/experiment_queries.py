"""Experiments: which campaigns wait for a winner, how each variant did, the release of
the rest of the audience with the winner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailwright_delivery.model import CampaignState, SendState
from mailwright_delivery.records import CampaignRecord
from mailwright_delivery.store.campaign_queries import campaign_record
from mailwright_delivery.store.tables import campaigns, sends


class ExperimentQueries:
    engine: sa.Engine
    reader: sa.Engine

    def campaigns_awaiting_winner(self, now: datetime) -> list[CampaignRecord]:
        awaiting = (
            sa.select(sends.c.id)
            .where(
                sends.c.workspace == campaigns.c.workspace,
                sends.c.campaign_id == campaigns.c.id,
                sends.c.awaiting_winner.is_(True),
                sends.c.state == SendState.QUEUED.value,
            )
            .exists()
        )
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(campaigns).where(
                    campaigns.c.state == CampaignState.SENDING.value,
                    campaigns.c.snapshot_done.is_(True),
                    campaigns.c.winner == "",
                    awaiting,
                )
            ).all()
        return [campaign_record(row) for row in rows]

    def variant_results(
        self, workspace: str, campaign_id: str, metric_column: str
    ) -> dict[str, tuple[int, int, float, float]]:
        """Per variant: (successes, sent, value sum, value sum of squares)."""
        column = sends.c[metric_column]
        sent = sends.c.sent_at.is_not(None)
        success: Any
        total: Any
        squares: Any
        if metric_column in ("revenue", "conversions"):
            success = sa.func.count().filter(column > 0)
            total = sa.func.coalesce(sa.func.sum(column), 0)
            squares = sa.func.coalesce(sa.func.sum(column * column), 0)
        else:
            success = sa.func.count().filter(column.is_not(None))
            total = success
            squares = success
        with self.reader.connect() as conn:
            rows = conn.execute(
                sa.select(sends.c.variant, success, sa.func.count(), total, squares)
                .where(
                    sends.c.workspace == workspace,
                    sends.c.campaign_id == campaign_id,
                    sends.c.variant != "",
                    sent,
                )
                .group_by(sends.c.variant)
            ).all()
        return {row[0]: (int(row[1]), int(row[2]), float(row[3]), float(row[4])) for row in rows}

    def set_winner(
        self, workspace: str, campaign_id: str, winner: str, due_at: datetime, now: datetime
    ) -> int:
        """Record the winner and release the waiting rest of the audience with it."""
        with self.engine.begin() as conn:
            updated = conn.execute(
                campaigns.update()
                .where(
                    campaigns.c.workspace == workspace,
                    campaigns.c.id == campaign_id,
                    campaigns.c.winner == "",
                )
                .values(winner=winner, updated_at=now)
            ).rowcount
            if not updated:
                return 0
            result = conn.execute(
                sends.update()
                .where(
                    sends.c.workspace == workspace,
                    sends.c.campaign_id == campaign_id,
                    sends.c.awaiting_winner.is_(True),
                    sends.c.state == SendState.QUEUED.value,
                )
                .values(
                    variant=winner,
                    awaiting_winner=False,
                    due_at=sa.case((sends.c.due_at < due_at, due_at), else_=sends.c.due_at),
                    updated_at=now,
                )
            )
            return int(result.rowcount or 0)
