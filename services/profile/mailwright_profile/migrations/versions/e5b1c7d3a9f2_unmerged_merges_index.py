"""profile merges: a partial index of the unmerged ones

The batch apply asks once per batch and workspace whether a person ever unmerged
profiles there (`rows.any_unmerged`); only then does a planned merge look for an unmerge
between the two trees. Unmerges are rare, so the index holds few rows and answers at
once however many merges the workspace has.

Revision ID: e5b1c7d3a9f2
Revises: d7e2a9c4b1f0
Create Date: 2026-11-29 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b1c7d3a9f2"
down_revision: str | None = "d7e2a9c4b1f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_profile_merges_unmerged",
        "profile_merges",
        ["workspace"],
        postgresql_where=sa.text("unmerged_at IS NOT NULL"),
        sqlite_where=sa.text("unmerged_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_profile_merges_unmerged", table_name="profile_merges")
