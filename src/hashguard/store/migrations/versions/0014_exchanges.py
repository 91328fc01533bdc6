"""Exchanges: their settings and fetch state, sealed credentials, quarantined records, feedback
owed to them; HMA bank content items (a new id per add: its signals, who added it, HMA's note
and metadata).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _id() -> "sa.Column[int]":
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _exchange() -> "sa.Column[int]":
    return sa.Column(
        "exchange_id", Id, sa.ForeignKey("exchanges.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "exchanges",
        _id(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("api", sa.String(32), nullable=False),
        sa.Column("list_id", Id, sa.ForeignKey("hash_lists.id"), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=True),
        sa.Column("checkpoint_at", When, nullable=True),
        sa.Column("fetch_started_at", When, nullable=True),
        sa.Column("fetch_completed_at", When, nullable=True),
        sa.Column("fetch_succeeded", sa.Boolean(), nullable=True),
        sa.Column("up_to_date", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_counts", sa.JSON(), nullable=False),
        sa.Column("fetched_items", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_fetch_at", When, nullable=False),
        sa.Column("lease_until", When, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_exchanges_next_fetch_at", "exchanges", ["next_fetch_at"])
    op.create_table(
        "exchange_credentials",
        sa.Column("scope", sa.String(140), primary_key=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("updated_at", When, nullable=False),
    )
    op.create_table(
        "exchange_quarantine",
        _id(),
        _exchange(),
        sa.Column("at", When, nullable=False),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_exchange_quarantine_exchange_id", "exchange_quarantine", ["exchange_id"])
    op.create_table(
        "exchange_feedback",
        _id(),
        _exchange(),
        sa.Column("signal", sa.String(32), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("feedback", sa.String(32), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_exchange_feedback_exchange_id", "exchange_feedback", ["exchange_id"])
    op.create_index(
        "ix_exchange_feedback_next_attempt_at", "exchange_feedback", ["next_attempt_at"]
    )
    op.create_table(
        "bank_contents",
        _id(),
        sa.Column(
            "list_id", Id, sa.ForeignKey("hash_lists.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", When, nullable=False),
        sa.Column("disable_until_ts", sa.BigInteger(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("organisation", sa.String(200), nullable=False),
        sa.Column("note", sa.String(255), nullable=True),
        sa.Column("content_metadata", sa.JSON(), nullable=True),
        sa.Column("deleted_at", When, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bank_contents_list_id", "bank_contents", ["list_id"])


def downgrade() -> None:
    op.drop_table("bank_contents")
    op.drop_table("exchange_feedback")
    op.drop_table("exchange_quarantine")
    op.drop_table("exchange_credentials")
    op.drop_table("exchanges")
