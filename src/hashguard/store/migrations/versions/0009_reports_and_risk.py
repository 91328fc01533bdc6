"""Provider reports and risk assessments.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provider_reports",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("detection_id", Id, sa.ForeignKey("detections.id"), nullable=False),
        sa.Column("recipient", sa.String(32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("submitted_at", When, nullable=True),
        sa.UniqueConstraint("detection_id", "recipient", name="uq_report_recipient"),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_provider_reports_detection_id", "provider_reports", ["detection_id"])
    op.create_table(
        "risk_assessments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("service_id", Id, sa.ForeignKey("services.id"), nullable=False),
        sa.Column("performed_at", When, nullable=False),
        sa.Column("factors", sa.JSON(), nullable=False),
        sa.Column("mitigations", sa.JSON(), nullable=False),
        sa.Column("remaining_risk", sa.String(16), nullable=False),
        sa.Column("next_due_at", When, nullable=False),
        sa.Column("submitted_at", When, nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sqlite_autoincrement=True,  # ids never reused: they key webhook calls and audit
    )
    op.create_index("ix_risk_assessments_service_id", "risk_assessments", ["service_id"])


def downgrade() -> None:
    op.drop_table("risk_assessments")
    op.drop_table("provider_reports")
