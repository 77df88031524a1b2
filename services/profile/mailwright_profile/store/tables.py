"""The profile service's tables (one database of its own; names prefixed `profile_`).

Profiles form a forest of merges: a profile merged into another keeps its row, with
`merged_into` (its parent) and `root_id` (the profile it now belongs to), so its id still
resolves and an unmerge can restore it. Identities and events carry two profile ids:
`profile_id`, the root that holds them now, and `home_id`, the profile they were first
attributed to; an unmerge gives back every row whose home lies in the restored subtree.

A profile's `version` goes up with every change of its projections (traits, computed
traits, aggregates, consents, first and last seen): the event batches keep the states
they wrote and use one again only while the stored version is still its own
(`store/cache.py`), so any code that writes those columns must bump it.

`profile_events` is range-partitioned by month on PostgreSQL (`occurred_at` is in its
primary key for that reason); see docs/profiles.md for the partitions the service keeps.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from mailwright.runtime.requests import request_log_table

__all__ = [
    "conflicts",
    "erased_events",
    "erasures",
    "events",
    "identities",
    "is_event_partition",
    "match_keys",
    "merge_candidates",
    "merges",
    "metadata",
    "models",
    "outbox",
    "policies",
    "predict_models",
    "profiles",
    "refusals",
    "request_log",
    "trait_keys",
]

metadata = sa.MetaData()

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Moment = sa.DateTime(timezone=True)
ProfileId = sa.String(36)
Workspace = sa.String(64)

profiles = sa.Table(
    "profile_profiles",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("profile_id", ProfileId, primary_key=True),
    sa.Column("root_id", ProfileId, nullable=False),
    sa.Column("merged_into", ProfileId, nullable=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
    sa.Column("first_seen", Moment, nullable=True),
    sa.Column("last_seen", Moment, nullable=True),
    sa.Column("traits", JSONDoc, nullable=False),
    sa.Column("trait_meta", JSONDoc, nullable=False),
    sa.Column("computed", JSONDoc, nullable=False),
    sa.Column("aggregates", JSONDoc, nullable=False),
    sa.Column("consents", JSONDoc, nullable=False),
    sa.Column("refresh_at", Moment, nullable=True),
    # Computed traits written by the predictive scorers (see predict/service.py).
    sa.Column("scores", JSONDoc, nullable=False, server_default=sa.text("'{}'")),
    sa.Index("ix_profile_profiles_root", "workspace", "root_id"),
    sa.Index("ix_profile_profiles_updated", "workspace", "updated_at", "profile_id"),
    sa.Index("ix_profile_profiles_created", "workspace", "created_at", "profile_id"),
    sa.Index("ix_profile_profiles_last_seen", "workspace", "last_seen", "profile_id"),
    sa.Index("ix_profile_profiles_refresh", "refresh_at"),
)

identities = sa.Table(
    "profile_identities",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("type", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(320), primary_key=True),
    sa.Column("profile_id", ProfileId, nullable=False),
    sa.Column("home_id", ProfileId, nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("linked_at", Moment, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Index("ix_profile_identities_profile", "workspace", "profile_id"),
    sa.Index("ix_profile_identities_home", "workspace", "home_id"),
)

events = sa.Table(
    "profile_events",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("message_id", sa.String(255), primary_key=True),
    sa.Column("occurred_at", Moment, primary_key=True),
    sa.Column("profile_id", ProfileId, nullable=False),
    sa.Column("home_id", ProfileId, nullable=False),
    sa.Column("type", sa.SmallInteger, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("received_at", Moment, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_profile_events_profile", "workspace", "profile_id", "occurred_at", "message_id"),
    sa.Index("ix_profile_events_home", "workspace", "home_id"),
    postgresql_partition_by="RANGE (occurred_at)",
)

merges = sa.Table(
    "profile_merges",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("merge_id", sa.String(36), primary_key=True),
    sa.Column("kept_id", ProfileId, nullable=False),
    sa.Column("absorbed_id", ProfileId, nullable=False),
    sa.Column("reason", sa.SmallInteger, nullable=False),
    sa.Column("shared", JSONDoc, nullable=False),
    sa.Column("evidence", JSONDoc, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("unmerged_at", Moment, nullable=True),
    sa.Column("unmerged_by", sa.String(255), nullable=True),
    sa.Index("ix_profile_merges_kept", "workspace", "kept_id"),
    sa.Index("ix_profile_merges_absorbed", "workspace", "absorbed_id"),
    # Unmerges are rare: whether a workspace has any is asked once per batch of events.
    sa.Index(
        "ix_profile_merges_unmerged",
        "workspace",
        postgresql_where=sa.text("unmerged_at IS NOT NULL"),
        sqlite_where=sa.text("unmerged_at IS NOT NULL"),
    ),
)

refusals = sa.Table(
    "profile_refused_merges",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("refusal_id", sa.String(36), primary_key=True),
    sa.Column("profile_id", ProfileId, nullable=False),
    sa.Column("other_id", ProfileId, nullable=False),
    sa.Column("identity_type", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(255), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Index("ix_profile_refused_merges_profile", "workspace", "profile_id"),
    sa.Index("ix_profile_refused_merges_other", "workspace", "other_id"),
)

merge_candidates = sa.Table(
    "profile_merge_candidates",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("left_id", ProfileId, primary_key=True),
    sa.Column("right_id", ProfileId, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("evidence", JSONDoc, nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Index("ix_profile_merge_candidates_created", "workspace", "created_at"),
    sa.Index("ix_profile_merge_candidates_right", "workspace", "right_id"),
)

policies = sa.Table(
    "profile_merge_policies",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("unique_identity_types", JSONDoc, nullable=False),
    sa.Column("source_priority", JSONDoc, nullable=False),
    sa.Column("auto_merge_threshold", sa.Float, nullable=False),
    sa.Column("review_threshold", sa.Float, nullable=False),
    sa.Column("updated_at", Moment, nullable=False),
)

models = sa.Table(
    "profile_match_models",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("model", JSONDoc, nullable=False),
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("fitted_at", Moment, nullable=False),
)

predict_models = sa.Table(
    "profile_predict_models",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("scorer", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("created_at", Moment, nullable=False),
    sa.Column("as_of", Moment, nullable=False),
    sa.Column("document", sa.Text, nullable=False),  # ModelVersion.to_json()
    sa.Column("metrics", JSONDoc, nullable=False),
    sa.Column("artifact", sa.LargeBinary, nullable=True),
    sa.Index("ix_profile_predict_models_latest", "workspace", "scorer", "created_at"),
)

match_keys = sa.Table(
    "profile_match_keys",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("rule", sa.SmallInteger, primary_key=True),
    sa.Column("key", sa.String(320), primary_key=True),
    sa.Column("profile_id", ProfileId, primary_key=True),
    sa.Index("ix_profile_match_keys_profile", "workspace", "profile_id"),
)

trait_keys = sa.Table(
    "profile_trait_keys",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("first_seen", Moment, nullable=False),
)

conflicts = sa.Table(
    "profile_trait_conflicts",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("profile_id", ProfileId, primary_key=True),
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("sources", JSONDoc, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("last_at", Moment, nullable=False),
)

outbox = sa.Table(
    "profile_outbox",
    metadata,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("workspace", Workspace, nullable=False),
    sa.Column("profile_id", ProfileId, nullable=False),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Moment, nullable=False),
    sa.Index("ix_profile_outbox_profile", "workspace", "profile_id"),
)

erasures = sa.Table(
    "profile_erasures",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("profile_id", ProfileId, primary_key=True),
    sa.Column("erased_at", Moment, nullable=False),
    sa.Column("identities", sa.Integer, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
)

erased_events = sa.Table(
    "profile_erased_events",
    metadata,
    sa.Column("workspace", Workspace, primary_key=True),
    sa.Column("message_hash", sa.String(64), primary_key=True),
    sa.Column("erased_at", Moment, nullable=False),
    sa.Index("ix_profile_erased_events_time", "erased_at"),
)

request_log = request_log_table(metadata, "profile")


_PARTITION = re.compile(r"^profile_events_(default|\d{6})$")


def is_event_partition(name: str) -> bool:
    """Whether a table is one of the history's partitions (PostgreSQL), not in `metadata`."""
    return bool(_PARTITION.match(name))
