"""Victims' cases, their hashes, partners' feedback, hotline referrals; followers' receipts.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "list_acknowledgements",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("partner", sa.String(200), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("at", When, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_list_acknowledgements_list_name", "list_acknowledgements", ["list_name"])
    op.create_table(
        "victim_cases",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("number_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("reference", sa.String(64), nullable=False, unique=True),
        sa.Column("pin_salt", sa.String(64), nullable=False),
        sa.Column("pin_hash", sa.String(128), nullable=False),
        sa.Column("under_18", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", When, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "victim_hashes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, sa.ForeignKey("victim_cases.id"), nullable=False),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("withdrawn_at", When, nullable=True),
        sa.Column("withdrawn_version", sa.BigInteger(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_victim_hashes_case_id", "victim_hashes", ["case_id"])
    op.create_table(
        "victim_feedback",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("partner", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(500), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.UniqueConstraint(
            "partner", "reference", "list_name", "entry_id", name="uq_victim_feedback"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_victim_feedback_list_name", "victim_feedback", ["list_name"])
    op.create_table(
        "victim_referrals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("case_id", Id, sa.ForeignKey("victim_cases.id"), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_victim_referrals_case_id", "victim_referrals", ["case_id"])
    op.create_index("ix_victim_referrals_next_attempt_at", "victim_referrals",
                    ["next_attempt_at"])  # fmt: skip


def downgrade() -> None:
    for table in ("victim_referrals", "victim_feedback", "victim_hashes", "victim_cases",
                  "list_acknowledgements"):  # fmt: skip
        op.drop_table(table)
