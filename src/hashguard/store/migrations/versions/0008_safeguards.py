"""Safeguards: services, detections and their review, actions, the webhook outbox, notices,
complaints, yearly counts; keys tied to a service; the match log's retention.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("service", sa.String(100), nullable=True))
    with op.batch_alter_table("match_log") as table:
        table.add_column(sa.Column("retain_until", When, nullable=True))
    op.create_table(
        "services",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("legal_profile", sa.String(64), nullable=False),
        sa.Column("e2ee", sa.Boolean(), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=False),
        sa.Column("content_url", sa.Text(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_table(
        "detections",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("service_id", Id, sa.ForeignKey("services.id"), nullable=False),
        sa.Column("content_ref", sa.Text(), nullable=False),
        sa.Column("account_ref", sa.Text(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("technology", sa.String(64), nullable=False),
        sa.Column("list", sa.String(100), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("exact", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detected_at", When, nullable=False),
        sa.Column("decided_at", When, nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=False),
        sa.Column("quarantined", sa.Boolean(), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("retain_until", When, nullable=False),
        sa.Column("held_until", When, nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=False),
        sa.UniqueConstraint("service_id", "content_ref", name="uq_detection_content"),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_detections_state", "detections", ["state"])
    op.create_index("ix_detections_retain_until", "detections", ["retain_until"])
    op.create_table(
        "review_votes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("detection_id", Id, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", When, nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_review_votes_detection_id", "review_votes", ["detection_id"])
    op.create_table(
        "actions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("detection_id", Id, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("taken_at", When, nullable=False),
        sa.Column("reversed_at", When, nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_actions_detection_id", "actions", ["detection_id"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("service_id", Id, sa.ForeignKey("services.id"), nullable=False),
        sa.Column("detection_id", sa.BigInteger(), nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("retain_until", When, nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_webhook_outbox_service_id", "webhook_outbox", ["service_id"])
    op.create_index("ix_webhook_outbox_detection_id", "webhook_outbox", ["detection_id"])
    op.create_index("ix_webhook_outbox_next_attempt_at", "webhook_outbox", ["next_attempt_at"])
    op.create_table(
        "notices",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("detection_id", Id, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("complaint_until", When, nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_notices_detection_id", "notices", ["detection_id"])
    op.create_table(
        "complaints",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("notice_id", Id, sa.ForeignKey("notices.id"), nullable=False, unique=True),
        sa.Column("detection_id", Id, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lodged_at", When, nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("decided_at", When, nullable=True),
        sa.Column("outcome_reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_complaints_detection_id", "complaints", ["detection_id"])
    op.create_table(
        "safeguard_counts",
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("year", "metric", "key", name="pk_safeguard_counts"),
    )


def downgrade() -> None:
    for name in ("safeguard_counts", "complaints", "notices", "webhook_outbox", "actions",
                 "review_votes", "detections", "services"):  # fmt: skip
        op.drop_table(name)
    with op.batch_alter_table("match_log") as table:
        table.drop_column("retain_until")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("service")
