"""Report facts: counts over sends, grouped by what a report breaks down by."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from mailwright_delivery.model import SendState
from mailwright_delivery.records import FactRow
from mailwright_delivery.store.tables import sends

GROUPS = {"variant": sends.c.variant, "segment": sends.c.segment, "step": sends.c.step_id}


def _aggregates() -> list[Any]:
    return [
        sa.func.count().label("audience"),
        sa.func.count(sends.c.sent_at).label("sent"),
        sa.func.count(sends.c.delivered_at).label("delivered"),
        sa.func.count(sends.c.open_at).label("unique_opens"),
        sa.func.count(sends.c.machine_open_at).label("machine_opens"),
        sa.func.count(sends.c.click_at).label("unique_clicks"),
        sa.func.coalesce(sa.func.sum(sends.c.conversions), 0).label("conversions"),
        sa.func.coalesce(sa.func.sum(sends.c.revenue), 0).label("revenue"),
        sa.func.coalesce(sa.func.sum(sends.c.revenue * sends.c.revenue), 0).label("squares"),
        sa.func.max(sends.c.revenue_currency).label("currency"),
        sa.func.count(sends.c.unsubscribed_at).label("unsubscribes"),
        sa.func.count(sends.c.bounced_at).label("bounces"),
        sa.func.count(sends.c.complained_at).label("complaints"),
        sa.func.count().filter(sends.c.state == SendState.SKIPPED.value).label("skipped"),
        sa.func.count(sends.c.converted_at).label("converted_people"),
    ]


def _row(dimension: str, row: Any) -> FactRow:
    return FactRow(
        dimension=dimension,
        audience=int(row.audience),
        sent=int(row.sent),
        delivered=int(row.delivered),
        unique_opens=int(row.unique_opens),
        machine_opens=int(row.machine_opens),
        unique_clicks=int(row.unique_clicks),
        conversions=int(row.conversions),
        revenue=Decimal(str(row.revenue)),
        revenue_squares=Decimal(str(row.squares)),
        currency=row.currency or "",
        unsubscribes=int(row.unsubscribes),
        bounces=int(row.bounces),
        complaints=int(row.complaints),
        skipped=int(row.skipped),
        converted_people=int(row.converted_people),
    )


class ReportQueries:
    engine: sa.Engine
    reader: sa.Engine

    def facts(
        self, workspace: str, *, campaign_id: str = "", journey_id: str = "", by: str = ""
    ) -> list[FactRow]:
        """Facts of a campaign or journey: "total" and "holdout" rows, or one row per
        variant, segment or journey step when `by` names one."""
        where = [sends.c.workspace == workspace]
        if campaign_id:
            where.append(sends.c.campaign_id == campaign_id)
        if journey_id:
            where.append(sends.c.journey_id == journey_id)
        with self.reader.connect() as conn:
            if not by:
                rows = conn.execute(
                    sa.select(sends.c.holdout, *_aggregates())
                    .where(*where)
                    .group_by(sends.c.holdout)
                ).all()
                found = {bool(row.holdout): row for row in rows}
                result = []
                for holdout, name in ((False, "total"), (True, "holdout")):
                    if holdout in found:
                        result.append(_row(name, found[holdout]))
                    elif not holdout:
                        result.append(FactRow(name))
                return result
            column = GROUPS[by]
            rows = conn.execute(
                sa.select(column.label("key"), *_aggregates())
                .where(*where, sends.c.holdout.is_(False))
                .group_by(column)
                .order_by(column)
            ).all()
        return [_row(f"{by}:{row.key}", row) for row in rows if row.key]
