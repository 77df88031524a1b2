"""Delivery's storage: the only part of the service that knows SQLAlchemy.

Tables in `tables.py`, queries by concern; `DeliveryStore` is all of them over one
engine. Every method is synchronous and runs in its own transaction (async code calls
it through `Database.run`).
"""

from __future__ import annotations

import sqlalchemy as sa

from mailwright.runtime.db import snapshot_reads
from mailwright_delivery.store.audience_resync_queries import AudienceResyncQueries
from mailwright_delivery.store.campaign_queries import CampaignQueries
from mailwright_delivery.store.experiment_queries import ExperimentQueries
from mailwright_delivery.store.feedback_queries import Feedback, FeedbackQueries, FeedbackResult
from mailwright_delivery.store.journey_queries import JourneyQueries
from mailwright_delivery.store.outbox_queries import OutboxQueries
from mailwright_delivery.store.report_queries import ReportQueries
from mailwright_delivery.store.send_queries import Accepted, SendFilter, SendQueries
from mailwright_delivery.store.tables import metadata, request_log


class DeliveryStore(
    AudienceResyncQueries,
    CampaignQueries,
    ExperimentQueries,
    SendQueries,
    FeedbackQueries,
    JourneyQueries,
    OutboxQueries,
    ReportQueries,
):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        # Reads on the hot path: on SQLite their transactions do not take the write lock
        # (a plain connection begins IMMEDIATE), so they never queue behind a writer.
        self.reader = engine.execution_options(sqlite_deferred=True)
        # Reads that must agree with each other (a status of several counts): one snapshot.
        self.snapshot = snapshot_reads(engine)


__all__ = [
    "Accepted",
    "DeliveryStore",
    "Feedback",
    "FeedbackResult",
    "SendFilter",
    "metadata",
    "request_log",
]
