"""Delivery's tables. Every row carries its workspace; every query names it."""

from __future__ import annotations

import sqlalchemy as sa

from mailwright.runtime.requests import request_log_table

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)
ID = sa.String(128)
WS = sa.String(64)

campaigns = sa.Table(
    "delivery_campaigns",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("spec", sa.LargeBinary, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("template_version", sa.String(300), nullable=False, default=""),
    sa.Column("start_at", TS, nullable=True),
    sa.Column("end_at", TS, nullable=True),
    sa.Column("paused_at", TS, nullable=True),
    sa.Column("started", sa.Boolean, nullable=False, default=False),
    sa.Column("audience_size", sa.BigInteger, nullable=False, default=0),
    sa.Column("snapshot_done", sa.Boolean, nullable=False, default=False),
    sa.Column("winner", sa.String(64), nullable=False, default=""),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", TS, nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_delivery_campaigns_state_start", "state", "start_at"),
)

sends = sa.Table(
    "delivery_sends",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("workspace", WS, nullable=False),
    sa.Column("idempotency_key", sa.String(400), nullable=False),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(600), nullable=False, default=""),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("profile_id", ID, nullable=False, default=""),
    sa.Column("campaign_id", ID, nullable=False, default=""),
    sa.Column("journey_id", ID, nullable=False, default=""),
    sa.Column("journey_version", sa.Integer, nullable=False, default=0),
    sa.Column("step_id", ID, nullable=False, default=""),
    sa.Column("enrolment_id", ID, nullable=False, default=""),
    sa.Column("email_hash", sa.String(64), nullable=False, default=""),
    # Only for transactional sends to a bare address; cleared once the send is final.
    sa.Column("address", sa.String(320), nullable=False, default=""),
    sa.Column("template", sa.String(300), nullable=False, default=""),
    sa.Column("variant", sa.String(64), nullable=False, default=""),
    sa.Column("subject_variant", sa.String(64), nullable=False, default=""),
    sa.Column("preheader_variant", sa.String(64), nullable=False, default=""),
    sa.Column("holdout", sa.Boolean, nullable=False, default=False),
    sa.Column("awaiting_winner", sa.Boolean, nullable=False, default=False),
    sa.Column("hold", sa.Boolean, nullable=False, default=False),
    sa.Column("segment", sa.String(300), nullable=False, default=""),
    sa.Column("sender", sa.Text, nullable=False, default=""),
    sa.Column("context", sa.Text, nullable=False, default=""),
    sa.Column("provider", sa.String(64), nullable=False, default=""),
    sa.Column("provider_message_id", sa.String(300), nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", TS, nullable=True),
    sa.Column("sent_at", TS, nullable=True),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Column("deferred_at", TS, nullable=True),
    sa.Column("open_at", TS, nullable=True),
    sa.Column("machine_open_at", TS, nullable=True),
    sa.Column("click_at", TS, nullable=True),
    sa.Column("bounced_at", TS, nullable=True),
    sa.Column("bounce_type", sa.String(8), nullable=False, default=""),
    sa.Column("complained_at", TS, nullable=True),
    sa.Column("unsubscribed_at", TS, nullable=True),
    sa.Column("conversions", sa.Integer, nullable=False, default=0),
    sa.Column("revenue", sa.Numeric(18, 4), nullable=False, default=0),
    sa.Column("revenue_currency", sa.String(3), nullable=False, default=""),
    sa.Column("converted_at", TS, nullable=True),
    # Orders this long after a click (or, for lift, after the send was due) count.
    sa.Column("attribution_seconds", sa.Integer, nullable=False, default=7 * 86400),
    # W3C traceparent of what made the send; the worker continues that trace.
    sa.Column("trace_parent", sa.String(64), nullable=False, default="", server_default=""),
    sa.UniqueConstraint("workspace", "idempotency_key", name="uq_delivery_sends_key"),
    sa.Index("ix_delivery_sends_due", "state", "due_at"),
    sa.Index("ix_delivery_sends_campaign", "workspace", "campaign_id", "state"),
    sa.Index("ix_delivery_sends_journey", "workspace", "journey_id", "step_id"),
    sa.Index("ix_delivery_sends_profile", "workspace", "profile_id"),
    sa.Index("ix_delivery_sends_provider_message", "workspace", "provider_message_id"),
    sa.Index("ix_delivery_sends_enrolment", "enrolment_id", "state"),
)
# A claim's order within a state (highest priority, then earliest due): a claim reads
# the first due rows of the index instead of sorting every queued send.
sa.Index("ix_delivery_sends_claim", sends.c.state, sends.c.priority.desc(), sends.c.due_at)

suppressions = sa.Table(
    "delivery_suppressions",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("email_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("source", sa.String(200), nullable=False, default=""),
    sa.Column("note", sa.String(500), nullable=False, default=""),
    sa.Column("created_at", TS, nullable=False),
)

soft_bounces = sa.Table(
    "delivery_soft_bounces",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("email_hash", sa.String(64), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Feedback and orders already applied (the bus delivers at least once).
feedback_log = sa.Table(
    "delivery_feedback_log",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Index("ix_delivery_feedback_log_created", "created_at"),
)

# The transactional outbox of bus messages: written with the change, relayed after.
outbox = sa.Table(
    "delivery_outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # W3C traceparent of the work that wrote the message; "" when not traced.
    sa.Column("trace_parent", sa.String(64), nullable=False, server_default=""),
)

policies = sa.Table(
    "delivery_policies",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("spec", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

journeys = sa.Table(
    "delivery_journeys",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # What starts it, for lookups from the bus: "event", "segment_entered", ...
    sa.Column("trigger_kind", sa.String(32), nullable=False),
    sa.Column("trigger_key", sa.String(300), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_delivery_journeys_trigger", "workspace", "state", "trigger_kind", "trigger_key"),
)

journey_versions = sa.Table(
    "delivery_journey_versions",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("journey_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("spec", sa.LargeBinary, nullable=False),
    sa.Column("goal_event", sa.String(200), nullable=False, default=""),
    sa.Column("created_at", TS, nullable=False),
)

enrolments = sa.Table(
    "delivery_enrolments",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("workspace", WS, nullable=False),
    sa.Column("journey_id", ID, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("profile_id", ID, nullable=False),
    # What let the person in (the trigger's message id): a redelivered trigger is a no-op.
    sa.Column("entry_key", sa.String(300), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("step_id", ID, nullable=False, default=""),
    sa.Column("wake_at", TS, nullable=True),
    sa.Column("waiting_event", sa.String(200), nullable=False, default=""),
    sa.Column("waiting_where", sa.Text, nullable=False, default=""),
    sa.Column("exit_reason", sa.String(32), nullable=False, default=""),
    sa.Column("revision", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", TS, nullable=True),
    sa.Column("entered_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.UniqueConstraint(
        "workspace", "journey_id", "entry_key", name="uq_delivery_enrolments_entry"
    ),
    sa.Index("ix_delivery_enrolments_timer", "state", "wake_at"),
    sa.Index("ix_delivery_enrolments_profile", "workspace", "profile_id", "state"),
    sa.Index("ix_delivery_enrolments_journey", "workspace", "journey_id", "state", "step_id"),
)

request_log = request_log_table(metadata, "delivery")

# -- audience sync: segments kept in step with a provider's audience ---------------------

audience_destinations = sa.Table(
    "delivery_audience_destinations",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("id", ID, primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("connector", sa.String(64), nullable=False),
    sa.Column("connector_config", sa.String(64), nullable=False),
    # JSON: [{"segment": id, "audience_name": name}], and the trait names sent.
    sa.Column("segments", sa.Text, nullable=False),
    sa.Column("traits", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

# Which destinations follow a segment (the lookup of every membership transition).
audience_segments = sa.Table(
    "delivery_audience_segments",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("segment_id", ID, primary_key=True),
    sa.Column("destination_id", ID, primary_key=True),
)

# Transitions not yet acknowledged by the provider: one row per member, the latest wins.
# `change_id` is set while a change carrying the row is in flight (until `lease_until`);
# `sent_op` is what that change said, so a transition arriving meanwhile is kept.
audience_pending = sa.Table(
    "delivery_audience_pending",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("destination_id", ID, primary_key=True),
    sa.Column("segment_id", ID, primary_key=True),
    sa.Column("profile_id", ID, primary_key=True),
    sa.Column("op", sa.String(8), nullable=False),
    sa.Column("occur_at", TS, nullable=False),
    sa.Column("due_at", TS, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("change_id", ID, nullable=True),
    sa.Column("sent_op", sa.String(8), nullable=True),
    sa.Column("lease_until", TS, nullable=True),
    sa.Index("ix_delivery_audience_pending_due", "due_at"),
    sa.Index("ix_delivery_audience_pending_change", "change_id"),
)

# Who the provider was told is in a segment's audience, with the address it knows them by
# (so a person whose profile was erased can still be removed); deleted on removal.
audience_members = sa.Table(
    "delivery_audience_members",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("destination_id", ID, primary_key=True),
    sa.Column("segment_id", ID, primary_key=True),
    sa.Column("profile_id", ID, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, default=""),
    sa.Column("external_ids", sa.Text, nullable=False, default="{}"),
    sa.Column("synced_at", TS, nullable=False),
    # The resync that last saw this member in the segment.
    sa.Column("resync_id", ID, nullable=False, default=""),
)

audience_failures = sa.Table(
    "delivery_audience_failures",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("destination_id", ID, primary_key=True),
    sa.Column("segment_id", ID, primary_key=True),
    sa.Column("profile_id", ID, primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(600), nullable=False, default=""),
    sa.Column("failed_at", TS, nullable=False),
    sa.Index("ix_delivery_audience_failures_at", "workspace", "destination_id", "failed_at"),
)

# Per destination and segment: totals, the last error, and the resync in progress (its
# page token, so a restart goes on from the page it stopped at).
audience_status = sa.Table(
    "delivery_audience_status",
    metadata,
    sa.Column("workspace", WS, primary_key=True),
    sa.Column("destination_id", ID, primary_key=True),
    sa.Column("segment_id", ID, primary_key=True),
    sa.Column("added", sa.BigInteger, nullable=False, default=0),
    sa.Column("removed", sa.BigInteger, nullable=False, default=0),
    sa.Column("failed", sa.BigInteger, nullable=False, default=0),
    sa.Column("last_sync_at", TS, nullable=True),
    sa.Column("last_error", sa.String(600), nullable=False, default=""),
    sa.Column("resync_id", ID, nullable=False, default=""),
    sa.Column("resync_running", sa.Boolean, nullable=False, default=False),
    sa.Column("resync_page_token", sa.Text, nullable=False, default=""),
    sa.Column("resync_total", sa.BigInteger, nullable=False, default=0),
    sa.Column("resync_done", sa.BigInteger, nullable=False, default=0),
    sa.Column("resync_started_at", TS, nullable=True),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", TS, nullable=True),
    sa.Index("ix_delivery_audience_status_resync", "resync_running"),
)
