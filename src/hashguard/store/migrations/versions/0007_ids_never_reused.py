"""Ids are never reused: a list removed and made anew, or entries added after a removal, get ids
no Matcher has seen (a running Matcher tells lists and entries apart by id). PostgreSQL's
sequences never reuse ids; on SQLite, hash_lists gets AUTOINCREMENT and entry ids come from a
counter that only grows.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "id_counters",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO id_counters (name, value) "
        "SELECT 'list_entries', COALESCE(MAX(id), 0) FROM list_entries"
    )
    if op.get_bind().dialect.name == "sqlite":
        # Foreign keys are off while hashguard migrates: the copy keeps every reference.
        with op.batch_alter_table(
            "hash_lists", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    op.drop_table("id_counters")
