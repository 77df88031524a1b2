"""an index in claim order, so a claim reads the first due sends instead of sorting all

Revision ID: 9f4a6d2b8c10
Revises: 5b8d0c3e71aa
Create Date: 2026-11-28 23:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9f4a6d2b8c10"
down_revision: str | None = "5b8d0c3e71aa"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_delivery_sends_claim",
        "delivery_sends",
        ["state", sa.text("priority DESC"), "due_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_sends_claim", table_name="delivery_sends")
