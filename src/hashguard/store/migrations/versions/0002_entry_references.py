"""Entries by their sources' references, for withdrawals that name only a reference.

Revision ID: 0002
Revises: 0001
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    references = op.create_table(
        "entry_references",
        sa.Column(
            "list_id", Id, sa.ForeignKey("hash_lists.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("reference", sa.Text(), primary_key=True),
        sa.Column(
            "entry_id", Id, sa.ForeignKey("list_entries.id", ondelete="CASCADE"), primary_key=True
        ),
    )
    # Entries stored before this revision: their sources' references, from the JSON text.
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            'SELECT id, list_id, sources FROM list_entries WHERE sources LIKE \'%"reference": "_%\''
        )
    )
    found = [
        {"list_id": list_id, "reference": reference, "entry_id": entry_id}
        for entry_id, list_id, sources in rows
        for reference in dict.fromkeys(s.get("reference", "") for s in json.loads(sources))
        if reference
    ]
    if found:
        op.bulk_insert(references, found)


def downgrade() -> None:
    op.drop_table("entry_references")
