"""outbox messages keep the trace context they were written in

Revision ID: 5b8d0c3e71aa
Revises: 0e51a9a76c80
Create Date: 2026-11-28 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b8d0c3e71aa"
down_revision: str | None = "0e51a9a76c80"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_outbox") as batch:
        batch.add_column(
            sa.Column("trace_parent", sa.String(length=64), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_outbox") as batch:
        batch.drop_column("trace_parent")
