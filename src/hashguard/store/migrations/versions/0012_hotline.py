"""The hotline: reports, cases, fetches, items, assessments, traces, routes, notices, outbox.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _id() -> "sa.Column[int]":
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _case() -> "sa.Column[int]":
    return sa.Column("case_id", Id, sa.ForeignKey("hotline_cases.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "hotline_reports",
        _id(),
        sa.Column("reference", sa.String(32), nullable=False, unique=True),
        sa.Column("token_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.String(120), nullable=False),
        sa.Column("partner_reference", sa.String(100), nullable=True),
        sa.Column("seen_where", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("retain_until", When, nullable=False),
        sa.UniqueConstraint("source", "partner_reference", name="uq_hotline_report_referral"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_reports_retain_until", "hotline_reports", ["retain_until"])
    op.create_table(
        "hotline_cases",
        _id(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(64), nullable=False, unique=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_cases_state", "hotline_cases", ["state"])
    op.create_table(
        "hotline_case_reports",
        _case(),
        sa.Column("report_id", Id, sa.ForeignKey("hotline_reports.id"), nullable=False),
        sa.PrimaryKeyConstraint("case_id", "report_id"),
    )
    op.create_index("ix_hotline_case_reports_report_id", "hotline_case_reports", ["report_id"])
    op.create_table(
        "hotline_fetches",
        _id(),
        _case(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(200), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_fetches_case_id", "hotline_fetches", ["case_id"])
    op.create_table(
        "hotline_items",
        _id(),
        _case(),
        sa.Column("fetch_id", Id, sa.ForeignKey("hotline_fetches.id"), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sa.Column("quality", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("assessment_id", sa.BigInteger(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("legality", sa.JSON(), nullable=False),
        sa.Column("triage", sa.JSON(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("decided_at", When, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_items_case_id", "hotline_items", ["case_id"])
    op.create_index("ix_hotline_items_state", "hotline_items", ["state"])
    op.create_table(
        "hotline_assessments",
        _id(),
        sa.Column("item_id", Id, sa.ForeignKey("hotline_items.id"), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("legality", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("first_by", sa.String(200), nullable=False),
        sa.Column("first_at", When, nullable=False),
        sa.Column("second_by", sa.String(200), nullable=True),
        sa.Column("second_at", When, nullable=True),
        sa.Column("list_name", sa.String(100), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_assessments_item_id", "hotline_assessments", ["item_id"])
    op.create_table(
        "hotline_traces",
        _id(),
        _case(),
        sa.Column("at", When, nullable=False),
        sa.Column("country", sa.String(8), nullable=True),
        sa.Column("hoster", sa.String(200), nullable=True),
        sa.Column("cdn", sa.Boolean(), nullable=False),
        sa.Column("trace", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_traces_case_id", "hotline_traces", ["case_id"])
    op.create_table(
        "hotline_routes",
        _id(),
        _case(),
        sa.Column("at", When, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_routes_case_id", "hotline_routes", ["case_id"])
    op.create_table(
        "hotline_notices",
        _id(),
        _case(),
        sa.Column("hoster", sa.String(200), nullable=False),
        sa.Column("abuse_email", sa.String(320), nullable=True),
        sa.Column("abuse_api", sa.Text(), nullable=True),
        sa.Column("cdn", sa.Boolean(), nullable=False),
        sa.Column("urls", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_notices_case_id", "hotline_notices", ["case_id"])
    op.create_index("ix_hotline_notices_state", "hotline_notices", ["state"])
    op.create_table(
        "hotline_outbox",
        _id(),
        _case(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_hotline_outbox_case_id", "hotline_outbox", ["case_id"])
    op.create_index("ix_hotline_outbox_next_attempt_at", "hotline_outbox", ["next_attempt_at"])


def downgrade() -> None:
    for table in ("hotline_outbox", "hotline_notices", "hotline_routes", "hotline_traces",
                  "hotline_assessments", "hotline_items", "hotline_fetches",
                  "hotline_case_reports", "hotline_cases", "hotline_reports"):  # fmt: skip
        op.drop_table(table)
