"""profile service v1: merge forest, projections, partitioned event history

Profiles gain their merge forest (`root_id`, `merged_into`) and their projections as JSON
(traits with the write behind each, computed traits, aggregates, consents); identities
and events gain `home_id`. The event history moves to a table whose primary key holds the
event time, range-partitioned by month on PostgreSQL with a default partition (the
service creates the monthly partitions ahead). Traits of the first schema move into the
profiles; merges, refusals, merge candidates, policies, match models and keys, trait
keys, conflicts, the outbox and the erasure record are new.

Revision ID: c3a1f0d2e4b7
Revises: b5e76b5cb93c
Create Date: 2026-11-29 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c3a1f0d2e4b7"
down_revision: str | None = "b5e76b5cb93c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Moment = sa.DateTime(timezone=True)
EMPTY = sa.text("'{}'")


def _utc_text(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
        return text + "Z"
    return str(value)


def _profiles() -> None:
    with op.batch_alter_table("profile_profiles") as batch:
        batch.add_column(sa.Column("root_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("merged_into", sa.String(36), nullable=True))
        for name in ("traits", "trait_meta", "computed", "aggregates", "consents"):
            batch.add_column(sa.Column(name, JSONDoc, nullable=False, server_default=EMPTY))
        batch.add_column(sa.Column("refresh_at", Moment, nullable=True))
    op.execute("UPDATE profile_profiles SET root_id = profile_id")
    with op.batch_alter_table("profile_profiles") as batch:
        batch.alter_column("root_id", existing_type=sa.String(36), nullable=False)
        batch.create_index("ix_profile_profiles_root", ["workspace", "root_id"])
        batch.create_index("ix_profile_profiles_updated", ["workspace", "updated_at", "profile_id"])
        batch.create_index("ix_profile_profiles_created", ["workspace", "created_at", "profile_id"])
        batch.create_index(
            "ix_profile_profiles_last_seen", ["workspace", "last_seen", "profile_id"]
        )
        batch.create_index("ix_profile_profiles_refresh", ["refresh_at"])
    # The first schema kept one row per trait; they move into the profile.
    bind = op.get_bind()
    old = sa.table(
        "profile_traits",
        sa.column("workspace"),
        sa.column("profile_id"),
        sa.column("key"),
        sa.column("value", sa.JSON()),
        sa.column("event_time"),
        sa.column("source"),
    )
    collected: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
    for row in bind.execute(sa.select(old)):
        values, meta = collected.setdefault((row.workspace, row.profile_id), ({}, {}))
        if row.value is not None:
            values[row.key] = row.value
        meta[row.key] = [_utc_text(row.event_time), row.source]
    target = sa.table(
        "profile_profiles",
        sa.column("workspace"),
        sa.column("profile_id"),
        sa.column("traits", JSONDoc),
        sa.column("trait_meta", JSONDoc),
    )
    for (workspace, profile_id), (values, meta) in collected.items():
        bind.execute(
            target.update()
            .where(target.c.workspace == workspace, target.c.profile_id == profile_id)
            .values(traits=values, trait_meta=meta)
        )
    op.drop_table("profile_traits")


def _identities() -> None:
    with op.batch_alter_table("profile_identities") as batch:
        batch.add_column(sa.Column("home_id", sa.String(36), nullable=True))
    op.execute("UPDATE profile_identities SET home_id = profile_id")
    with op.batch_alter_table("profile_identities") as batch:
        batch.alter_column("home_id", existing_type=sa.String(36), nullable=False)
        batch.create_index("ix_profile_identities_home", ["workspace", "home_id"])


def _events() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("profile_events") as batch:
        batch.drop_index("ix_profile_events_profile_time")
    op.rename_table("profile_events", "profile_events_v0")
    if postgres:
        op.execute(
            "ALTER TABLE profile_events_v0 RENAME CONSTRAINT profile_events_pkey "
            "TO profile_events_v0_pkey"
        )
    op.create_table(
        "profile_events",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("occurred_at", Moment, nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("home_id", sa.String(36), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("received_at", Moment, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "message_id", "occurred_at"),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    if postgres:
        op.execute("CREATE TABLE profile_events_default PARTITION OF profile_events DEFAULT")
    op.create_index(
        "ix_profile_events_profile",
        "profile_events",
        ["workspace", "profile_id", "occurred_at", "message_id"],
    )
    op.create_index("ix_profile_events_home", "profile_events", ["workspace", "home_id"])
    op.execute(
        "INSERT INTO profile_events (workspace, message_id, occurred_at, profile_id, home_id, "
        "type, name, source, received_at, payload) "
        "SELECT workspace, message_id, timestamp, profile_id, profile_id, type, event, "
        "'unknown', timestamp, payload FROM profile_events_v0"
    )
    op.drop_table("profile_events_v0")


def _new_tables() -> None:
    op.create_table(
        "profile_merges",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("merge_id", sa.String(36), primary_key=True),
        sa.Column("kept_id", sa.String(36), nullable=False),
        sa.Column("absorbed_id", sa.String(36), nullable=False),
        sa.Column("reason", sa.SmallInteger(), nullable=False),
        sa.Column("shared", JSONDoc, nullable=False),
        sa.Column("evidence", JSONDoc, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("unmerged_at", Moment, nullable=True),
        sa.Column("unmerged_by", sa.String(255), nullable=True),
    )
    op.create_index("ix_profile_merges_kept", "profile_merges", ["workspace", "kept_id"])
    op.create_index("ix_profile_merges_absorbed", "profile_merges", ["workspace", "absorbed_id"])
    op.create_table(
        "profile_refused_merges",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("refusal_id", sa.String(36), primary_key=True),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("other_id", sa.String(36), nullable=False),
        sa.Column("identity_type", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(255), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
    )
    op.create_index(
        "ix_profile_refused_merges_profile", "profile_refused_merges", ["workspace", "profile_id"]
    )
    op.create_index(
        "ix_profile_refused_merges_other", "profile_refused_merges", ["workspace", "other_id"]
    )
    op.create_table(
        "profile_merge_candidates",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("left_id", sa.String(36), primary_key=True),
        sa.Column("right_id", sa.String(36), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("evidence", JSONDoc, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
    )
    op.create_index(
        "ix_profile_merge_candidates_created",
        "profile_merge_candidates",
        ["workspace", "created_at"],
    )
    op.create_index(
        "ix_profile_merge_candidates_right", "profile_merge_candidates", ["workspace", "right_id"]
    )
    op.create_table(
        "profile_merge_policies",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("unique_identity_types", JSONDoc, nullable=False),
        sa.Column("source_priority", JSONDoc, nullable=False),
        sa.Column("auto_merge_threshold", sa.Float(), nullable=False),
        sa.Column("review_threshold", sa.Float(), nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
    )
    op.create_table(
        "profile_match_models",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("model", JSONDoc, nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("fitted_at", Moment, nullable=False),
    )
    op.create_table(
        "profile_match_keys",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("rule", sa.SmallInteger(), primary_key=True),
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("profile_id", sa.String(36), primary_key=True),
    )
    op.create_index(
        "ix_profile_match_keys_profile", "profile_match_keys", ["workspace", "profile_id"]
    )
    op.create_table(
        "profile_trait_keys",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("first_seen", Moment, nullable=False),
    )
    op.create_table(
        "profile_trait_conflicts",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("profile_id", sa.String(36), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("sources", JSONDoc, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_at", Moment, nullable=False),
    )
    op.create_table(
        "profile_outbox",
        sa.Column("id", sa.String(48), primary_key=True),
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
    )
    op.create_index("ix_profile_outbox_profile", "profile_outbox", ["workspace", "profile_id"])
    op.create_table(
        "profile_erasures",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("profile_id", sa.String(36), primary_key=True),
        sa.Column("erased_at", Moment, nullable=False),
        sa.Column("identities", sa.Integer(), nullable=False),
        sa.Column("events", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "profile_erased_events",
        sa.Column("workspace", sa.String(64), primary_key=True),
        sa.Column("message_hash", sa.String(64), primary_key=True),
        sa.Column("erased_at", Moment, nullable=False),
    )
    op.create_index("ix_profile_erased_events_time", "profile_erased_events", ["erased_at"])


def upgrade() -> None:
    _profiles()
    _identities()
    _events()
    _new_tables()


_NEW_TABLES = (
    "profile_merges",
    "profile_refused_merges",
    "profile_merge_candidates",
    "profile_merge_policies",
    "profile_match_models",
    "profile_match_keys",
    "profile_trait_keys",
    "profile_trait_conflicts",
    "profile_outbox",
    "profile_erasures",
    "profile_erased_events",
)


def downgrade() -> None:
    """Back to the first schema: history, identities and traits are kept; merges,
    computed traits, consents and the rest of v1 are dropped."""
    bind = op.get_bind()
    for name in _NEW_TABLES:
        op.drop_table(name)
    op.create_table(
        "profile_events_v0",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("type", sa.SmallInteger(), nullable=False),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("timestamp", Moment, nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "message_id", name="profile_events_v0_pkey"),
    )
    op.execute(
        "INSERT INTO profile_events_v0 (workspace, message_id, profile_id, type, event, "
        "timestamp, payload) SELECT workspace, message_id, profile_id, type, name, occurred_at, "
        "payload FROM profile_events"
    )
    op.drop_table("profile_events")
    op.rename_table("profile_events_v0", "profile_events")
    if bind.dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE profile_events RENAME CONSTRAINT profile_events_v0_pkey "
            "TO profile_events_pkey"
        )
    op.create_index(
        "ix_profile_events_profile_time", "profile_events", ["workspace", "profile_id", "timestamp"]
    )
    with op.batch_alter_table("profile_identities") as batch:
        batch.drop_index("ix_profile_identities_home")
        batch.drop_column("home_id")
    op.create_table(
        "profile_traits",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("profile_id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("event_time", Moment, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "profile_id", "key"),
    )
    held = sa.table(
        "profile_profiles",
        sa.column("workspace"),
        sa.column("profile_id"),
        sa.column("merged_into"),
        sa.column("traits", JSONDoc),
        sa.column("trait_meta", JSONDoc),
    )
    rows = []
    for row in bind.execute(sa.select(held).where(held.c.merged_into.is_(None))):
        for key, (time_text, source) in (row.trait_meta or {}).items():
            moment = datetime.fromisoformat(str(time_text).removesuffix("Z")).replace(tzinfo=UTC)
            rows.append(
                {
                    "workspace": row.workspace,
                    "profile_id": row.profile_id,
                    "key": key,
                    "value": (row.traits or {}).get(key),
                    "event_time": moment,
                    "source": source,
                }
            )
    if rows:
        traits = sa.table(
            "profile_traits",
            sa.column("workspace"),
            sa.column("profile_id"),
            sa.column("key"),
            sa.column("value", sa.JSON()),
            sa.column("event_time", Moment),
            sa.column("source"),
        )
        bind.execute(traits.insert(), rows)
    op.execute("DELETE FROM profile_profiles WHERE merged_into IS NOT NULL")
    with op.batch_alter_table("profile_profiles") as batch:
        for index in ("root", "updated", "created", "last_seen", "refresh"):
            batch.drop_index(f"ix_profile_profiles_{index}")
        for name in (
            "root_id",
            "merged_into",
            "traits",
            "trait_meta",
            "computed",
            "aggregates",
            "consents",
            "refresh_at",
        ):
            batch.drop_column(name)
