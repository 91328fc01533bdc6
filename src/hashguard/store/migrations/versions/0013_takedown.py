"""Notice and takedown: notices (from hotline_notices, which it replaces), deliveries, checks,
events, outcomes told by others; a hoster key's hoster.

Revision ID: 0013
Revises: 0012
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def _id() -> "sa.Column[int]":
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _notice() -> "sa.Column[int]":
    return sa.Column("notice_id", Id, sa.ForeignKey("takedown_notices.id"), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("hoster", sa.String(200), nullable=True))
    notices = op.create_table(
        "takedown_notices",
        _id(),
        sa.Column("case_id", Id, sa.ForeignKey("hotline_cases.id"), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("previous_id", sa.BigInteger(), nullable=True),
        sa.Column("hoster", sa.String(200), nullable=False),
        sa.Column("country", sa.String(8), nullable=True),
        sa.Column("abuse_email", sa.String(320), nullable=True),
        sa.Column("abuse_api", sa.Text(), nullable=True),
        sa.Column("cdn", sa.Boolean(), nullable=False),
        sa.Column("urls", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("issued_by", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("report_id", sa.String(36), nullable=False, unique=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("reported_at", When, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("sent_at", When, nullable=True),
        sa.Column("deadline_at", When, nullable=True),
        sa.Column("acknowledged_at", When, nullable=True),
        sa.Column("claimed_at", When, nullable=True),
        sa.Column("disputed_at", When, nullable=True),
        sa.Column("dispute_reason", sa.Text(), nullable=False),
        sa.Column("verified_at", When, nullable=True),
        sa.Column("withdrawn_at", When, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_reason", sa.Text(), nullable=False),
        sa.Column("outcome_at", When, nullable=True),
        sa.Column("renotices", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("rechecks", sa.Integer(), nullable=False),
        sa.Column("next_action_at", When, nullable=True),
        sa.Column("lease_until", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_takedown_notices_case_id", "takedown_notices", ["case_id"])
    op.create_index("ix_takedown_notices_hoster", "takedown_notices", ["hoster"])
    op.create_index("ix_takedown_notices_state", "takedown_notices", ["state"])
    op.create_index("ix_takedown_notices_next_action_at_state", "takedown_notices",
                    ["next_action_at", "state"])  # fmt: skip
    op.create_index("ix_takedown_notices_state_deadline_at", "takedown_notices",
                    ["state", "deadline_at"])  # fmt: skip
    # the monitor reads only these columns (store.tables.MONITORED, as of this revision)
    op.create_index("ix_takedown_notices_monitor", "takedown_notices",
                    ["kind", "reported_at", "hoster", "country", "state", "verified_at",
                     "deadline_at", "disputed_at", "renotices", "escalations"])  # fmt: skip
    op.create_table(
        "takedown_deliveries",
        _id(),
        _notice(),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("delivered_at", When, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("reply", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_takedown_deliveries_notice_id", "takedown_deliveries", ["notice_id"])
    op.create_index("ix_takedown_deliveries_next_attempt_at", "takedown_deliveries",
                    ["next_attempt_at"])  # fmt: skip
    op.create_table(
        "takedown_checks",
        _id(),
        _notice(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("hashes", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_takedown_checks_notice_id", "takedown_checks", ["notice_id"])
    op.create_table(
        "takedown_events",
        _id(),
        _notice(),
        sa.Column("at", When, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_takedown_events_notice_id", "takedown_events", ["notice_id"])
    op.create_index("ix_takedown_events_at", "takedown_events", ["at"])
    op.create_table(
        "takedown_outcomes",
        _id(),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("reference", sa.String(200), nullable=False),
        sa.Column("case_id", Id, sa.ForeignKey("hotline_cases.id"), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("received_at", When, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_takedown_outcomes_case_id", "takedown_outcomes", ["case_id"])

    # The notices routing queued so far become queued takedown notices: to the CDN where the
    # trace found one, with the case's illegal items (as routing now stores them).
    old = sa.table("hotline_notices", sa.column("id", Id), sa.column("case_id", Id),
                   sa.column("hoster", sa.String()), sa.column("abuse_email", sa.String()),
                   sa.column("abuse_api", sa.Text()), sa.column("cdn", sa.Boolean()),
                   sa.column("urls", sa.JSON()), sa.column("created_at", When))  # fmt: skip
    cases = sa.table("hotline_cases", sa.column("id", Id), sa.column("created_at", When))
    items = sa.table("hotline_items", sa.column("id", Id), sa.column("case_id", Id),
                     sa.column("url", sa.Text()), sa.column("kind", sa.String()),
                     sa.column("hashes", sa.JSON()), sa.column("labels", sa.JSON()),
                     sa.column("legality", sa.JSON()))  # fmt: skip
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(old, cases.c.created_at.label("reported_at"))
        .join(cases, cases.c.id == old.c.case_id)
        .order_by(old.c.id)
    ).all()  # fmt: skip
    illegal: dict[int, list[dict[str, object]]] = {}
    if rows:
        found = connection.execute(
            sa.select(items).where(items.c.case_id.in_(sorted({row.case_id for row in rows})))
            .order_by(items.c.id)
        ).all()  # fmt: skip
        for item in found:
            if "illegal" in dict(item.legality or {}).values():
                illegal.setdefault(item.case_id, []).append({
                    "url": item.url, "kind": item.kind, "hashes": dict(item.hashes or {}),
                    "labels": dict(item.labels or {})})  # fmt: skip
        op.bulk_insert(notices, [{
            "case_id": row.case_id, "kind": "cdn" if row.cdn else "notice", "hoster": row.hoster,
            "country": None, "abuse_email": row.abuse_email, "abuse_api": row.abuse_api,
            "cdn": row.cdn, "urls": row.urls, "items": illegal.get(row.case_id, []),
            "legal_basis": "", "reference": f"case-{row.case_id}",
            "issued_by": "hotline", "state": "queued", "report_id": str(uuid.uuid4()),
            "document": "", "reported_at": row.reported_at, "created_at": row.created_at,
            "dispute_reason": "", "outcome": "", "outcome_reason": "", "renotices": 0,
            "escalations": 0, "rechecks": 0, "next_action_at": row.created_at,
            "last_error": "",
        } for row in rows])  # fmt: skip
    op.drop_index("ix_hotline_notices_state", "hotline_notices")
    op.drop_index("ix_hotline_notices_case_id", "hotline_notices")
    op.drop_table("hotline_notices")


def downgrade() -> None:
    op.create_table(
        "hotline_notices",
        _id(),
        sa.Column("case_id", Id, sa.ForeignKey("hotline_cases.id"), nullable=False),
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
    for table in ("takedown_outcomes", "takedown_events", "takedown_checks",
                  "takedown_deliveries", "takedown_notices"):  # fmt: skip
        op.drop_table(table)
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("hoster")
