"""predictive models: stored model versions and per-profile scores

`profile_predict_models` keeps every trained version of every scorer of a workspace (its
stored document with parameters and metrics, the metrics again as JSON for reports, the
opaque artifact, when it was trained); the newest is the one in use. Profiles gain
`scores`: the computed traits the scorers wrote (`clv_12m`, `churn_risk`, …).

Revision ID: d7e2a9c4b1f0
Revises: c3a1f0d2e4b7
Create Date: 2026-11-28 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d7e2a9c4b1f0"
down_revision: str | None = "c3a1f0d2e4b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "profile_predict_models",
        sa.Column("workspace", sa.String(64), nullable=False),
        sa.Column("scorer", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("as_of", Moment, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("metrics", JSONDoc, nullable=False),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("workspace", "scorer", "version"),
    )
    op.create_index(
        "ix_profile_predict_models_latest",
        "profile_predict_models",
        ["workspace", "scorer", "created_at"],
    )
    with op.batch_alter_table("profile_profiles") as batch:
        batch.add_column(
            sa.Column("scores", JSONDoc, nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("profile_profiles") as batch:
        batch.drop_column("scores")
    op.drop_index("ix_profile_predict_models_latest", table_name="profile_predict_models")
    op.drop_table("profile_predict_models")
