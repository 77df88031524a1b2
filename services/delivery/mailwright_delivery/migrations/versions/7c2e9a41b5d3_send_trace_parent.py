"""sends keep the trace context of what made them

Revision ID: 7c2e9a41b5d3
Revises: d1315586a98d
Create Date: 2026-11-28 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c2e9a41b5d3"
down_revision: str | None = "d1315586a98d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_sends") as batch:
        batch.add_column(
            sa.Column("trace_parent", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_sends") as batch:
        batch.drop_column("trace_parent")
