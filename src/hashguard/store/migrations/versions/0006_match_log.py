"""The match log: one row per match the service answered.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "match_log",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("list", sa.String(100), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("distance", sa.Float(), nullable=False),
        sa.Column("content_ref", sa.Text(), nullable=False),
    )
    op.create_index("ix_match_log_at", "match_log", ["at"])


def downgrade() -> None:
    op.drop_index("ix_match_log_at", "match_log")
    op.drop_table("match_log")
