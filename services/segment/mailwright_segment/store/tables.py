"""The segment service's tables (its own database; names prefixed `segment_`).

Three groups:

* the **projection** of what the profile service publishes: profiles (an integer key per
  person), traits (typed columns for SQL, the exact value as JSON), list trait items, the
  bounded event log, event specs with their hits and day buckets, email sends and actions,
  and what has been observed (event properties and trait types, for checking rules);
* **segments**: definitions and their versions;
* **memberships**: current membership with entry and exit times, the transition log (which
  is also the outbox of `segments.membership` and the history `WatchMembership` replays),
  timers of time-driven changes, recompute jobs.

Instants of the projection are integer microseconds since the epoch (UTC); a day is the UTC
day number. Numbers are exact `NUMERIC` on PostgreSQL; on SQLite they are doubles, exact for
values of up to 15 significant digits (sums are added exactly, see `sqlfuncs`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from mailwright.runtime.requests import request_log_table

metadata = sa.MetaData()

NAME = 200
ID = 128


class Number(sa.types.TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, a double on SQLite (read back by its repr)."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Float())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return float(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, float):
            return Decimal(repr(value))
        return Decimal(value)


def _key() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# ---------------------------------------------------------------------------------------
# Projection

workspaces = sa.Table(
    "segment_workspaces",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    # Hits, events and email actions before this instant (a UTC midnight) were pruned.
    sa.Column("pruned_before", sa.BigInteger, nullable=True),
    # Increases with every segment change, so replicas refresh their rule index.
    sa.Column("segments_epoch", sa.BigInteger, nullable=False, server_default="0"),
)

profiles = sa.Table(
    "segment_profiles",
    metadata,
    sa.Column("pk", _key(), primary_key=True, autoincrement=True),
    sa.Column("ws", sa.String(64), nullable=False),
    sa.Column("profile_id", sa.String(ID), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("ws", "profile_id", name="uq_segment_profiles_ws_profile"),
)

traits = sa.Table(
    "segment_traits",
    metadata,
    sa.Column("pk", sa.BigInteger, primary_key=True),
    sa.Column("key", sa.String(NAME), primary_key=True),
    sa.Column("ws", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("number", Number, nullable=True),
    sa.Column("flag", sa.Boolean, nullable=True),
    # The value read as a date (ISO 8601 strings), for before/after/within last.
    sa.Column("instant", sa.BigInteger, nullable=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Index("ix_segment_traits_ws_key", "ws", "key", "pk"),
)

trait_items = sa.Table(
    "segment_trait_items",
    metadata,
    sa.Column("pk", sa.BigInteger, primary_key=True),
    sa.Column("key", sa.String(NAME), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("ws", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
    sa.Column("number", Number, nullable=True),
    sa.Column("flag", sa.Boolean, nullable=True),
    sa.Index("ix_segment_trait_items_ws_key", "ws", "key", "pk"),
)

events = sa.Table(
    "segment_events",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(NAME), primary_key=True),
    sa.Column("pk", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(NAME), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("properties", sa.Text, nullable=False),
    sa.Index("ix_segment_events_pk_at", "pk", "at"),
    sa.Index("ix_segment_events_ws_name_at", "ws", "name", "at"),
    sa.Index("ix_segment_events_ws_at", "ws", "at"),
)

specs = sa.Table(
    "segment_specs",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("spec_id", sa.String(32), primary_key=True),
    sa.Column("event", sa.String(NAME), nullable=False),
    sa.Column("filters", sa.Text, nullable=False),
    sa.Column("measure", sa.String(NAME), nullable=True),
    sa.Column("per", sa.String(NAME), nullable=True),
    sa.Column("implicit", sa.Boolean, nullable=False),
    sa.Column("used_at", sa.BigInteger, nullable=False),
    sa.Index("ix_segment_specs_ws_event", "ws", "event"),
)

hits = sa.Table(
    "segment_hits",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("spec_id", sa.String(32), primary_key=True),
    sa.Column("pk", sa.BigInteger, primary_key=True),
    sa.Column("at", sa.BigInteger, primary_key=True),
    sa.Column("message_id", sa.String(NAME), primary_key=True),
    sa.Column("number", Number, nullable=True),
    sa.Column("grp", sa.Text, nullable=True),
    sa.Index("ix_segment_hits_spec_at", "ws", "spec_id", "at", "pk"),
)

buckets = sa.Table(
    "segment_buckets",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("spec_id", sa.String(32), primary_key=True),
    sa.Column("pk", sa.BigInteger, primary_key=True),
    sa.Column("day", sa.Integer, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("total", Number, nullable=False),
    sa.Column("minimum", Number, nullable=True),
    sa.Column("maximum", Number, nullable=True),
    sa.Index("ix_segment_buckets_spec_day", "ws", "spec_id", "day", "pk"),
)

sends = sa.Table(
    "segment_sends",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("pk", sa.BigInteger, primary_key=True),
    sa.Column("send_id", sa.String(NAME), primary_key=True),
    # None until the send itself is known (an open may arrive first).
    sa.Column("sent_at", sa.BigInteger, nullable=True),
    sa.Column("first_open", sa.BigInteger, nullable=True),
    sa.Column("first_click", sa.BigInteger, nullable=True),
    sa.Index("ix_segment_sends_pk_sent", "pk", "sent_at"),
)

email_actions = sa.Table(
    "segment_email_actions",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(NAME), primary_key=True),
    sa.Column("pk", sa.BigInteger, nullable=False),
    sa.Column("send_id", sa.String(NAME), nullable=False),
    # "o" human open, "c" click, "m" machine open (kept, never counted).
    sa.Column("kind", sa.String(1), nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Index("ix_segment_email_actions_pk_at", "pk", "at"),
    sa.Index("ix_segment_email_actions_ws_at", "ws", "at"),
)

observed = sa.Table(
    "segment_observed",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    # The event name, or "" for traits.
    sa.Column("event", sa.String(NAME), primary_key=True),
    sa.Column("key", sa.String(NAME), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
)

# ---------------------------------------------------------------------------------------
# Segments

segments = sa.Table(
    "segment_segments",
    metadata,
    sa.Column("pk", _key(), primary_key=True, autoincrement=True),
    sa.Column("ws", sa.String(64), nullable=False),
    sa.Column("segment_id", sa.String(63), nullable=False),
    sa.Column("display_name", sa.String(NAME), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("rule_text", sa.Text, nullable=False),
    sa.Column("rule", sa.LargeBinary, nullable=False),
    sa.Column("warnings", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("ws", "segment_id", name="uq_segment_segments_ws_id"),
)

versions = sa.Table(
    "segment_versions",
    metadata,
    sa.Column(
        "segment_pk",
        sa.BigInteger,
        sa.ForeignKey("segment_segments.pk", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("rule_text", sa.Text, nullable=False),
    sa.Column("rule", sa.LargeBinary, nullable=False),
    sa.Column("warnings", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# ---------------------------------------------------------------------------------------
# Memberships

memberships = sa.Table(
    "segment_memberships",
    metadata,
    sa.Column("segment_pk", sa.BigInteger, primary_key=True),
    sa.Column("profile_pk", sa.BigInteger, primary_key=True),
    sa.Column("member", sa.Boolean, nullable=False),
    sa.Column("entered_at", sa.BigInteger, nullable=False),
    sa.Column("exited_at", sa.BigInteger, nullable=True),
    sa.Column("rule_version", sa.BigInteger, nullable=False),
    sa.Index("ix_segment_memberships_profile", "profile_pk"),
    sa.Index("ix_segment_memberships_members", "segment_pk", "member", "profile_pk"),
)

membership_log = sa.Table(
    "segment_membership_log",
    metadata,
    sa.Column("id", _key(), primary_key=True, autoincrement=True),
    sa.Column("ws", sa.String(64), nullable=False),
    sa.Column("segment_id", sa.String(63), nullable=False),
    sa.Column("profile_id", sa.String(ID), nullable=False),
    # "entered" or "exited".
    sa.Column("transition", sa.String(8), nullable=False),
    sa.Column("occurred_at", sa.BigInteger, nullable=False),
    sa.Column("rule_version", sa.BigInteger, nullable=False),
    sa.Column("cause", sa.String(16), nullable=False),
    sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
    # Rows of an erased person: deleted once published.
    sa.Column("erase", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_segment_membership_log_ws_id", "ws", "id"),
    sa.Index("ix_segment_membership_log_ws_time", "ws", "occurred_at"),
    sa.Index("ix_segment_membership_log_unpublished", "published", "id"),
    sa.Index("ix_segment_membership_log_profile", "ws", "profile_id"),
)

timers = sa.Table(
    "segment_timers",
    metadata,
    sa.Column("segment_pk", sa.BigInteger, primary_key=True),
    sa.Column("profile_pk", sa.BigInteger, primary_key=True),
    sa.Column("due_at", sa.BigInteger, nullable=False),
    sa.Column("claimed_by", sa.String(ID), nullable=True),
    sa.Column("claimed_until", sa.BigInteger, nullable=True),
    sa.Index("ix_segment_timers_due", "due_at"),
    sa.Index("ix_segment_timers_profile", "profile_pk"),
)

jobs = sa.Table(
    "segment_jobs",
    metadata,
    sa.Column("ws", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(64), primary_key=True),
    sa.Column("segment_id", sa.String(63), nullable=False),
    # "running", "succeeded" or "failed".
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cause", sa.String(16), nullable=False),
    sa.Column("done", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("total", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("entered", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("exited", sa.BigInteger, nullable=False, server_default="0"),
    # The last profile key done: a job taken over continues after it.
    sa.Column("cursor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger, nullable=True),
    # A replica working on it renews this; a job whose lease lapsed is taken over.
    sa.Column("claimed_by", sa.String(ID), nullable=True),
    sa.Column("claimed_until", sa.BigInteger, nullable=True),
    sa.Index("ix_segment_jobs_state", "state", "claimed_until"),
)

request_log = request_log_table(metadata, "segment")
