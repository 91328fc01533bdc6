"""Entries keyed by (list, signal, value): on SQLite a table clustered on that key, so reading
a list in order (releases, exports, Matchers) is sequential rather than a lookup per entry.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COLUMNS = "id, list_id, signal, value, labels, status, submitted_by, assessed_by, sources, version"


def upgrade() -> None:
    _rekey(by_value=True)


def downgrade() -> None:
    _rekey(by_value=False)


def _rekey(by_value: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a table's key in place: copy into a new table. hashguard runs
        # migrations with foreign keys off, so dropping the old table cascades nowhere.
        if by_value:
            keys = [
                sa.PrimaryKeyConstraint("list_id", "signal", "value", name="pk_list_entries"),
                sa.UniqueConstraint("id", name="uq_list_entries_id"),
            ]
        else:
            keys = [
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("list_id", "signal", "value", name="uq_list_entries_value"),
            ]
        op.create_table(
            "list_entries_new",
            sa.Column("id", Id, nullable=False),
            sa.Column(
                "list_id", Id, sa.ForeignKey("hash_lists.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("signal", sa.String(32), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.Column("labels", sa.Text(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("submitted_by", sa.String(200), nullable=False),
            sa.Column("assessed_by", sa.String(200), nullable=False),
            sa.Column("sources", sa.Text(), nullable=False),
            sa.Column("version", sa.BigInteger(), nullable=False),
            *keys,
            sqlite_with_rowid=not by_value,
        )
        op.execute(
            f"INSERT INTO list_entries_new ({_COLUMNS}) SELECT {_COLUMNS} FROM list_entries "
            "ORDER BY list_id, signal, value"
        )
        op.drop_table("list_entries")
        op.rename_table("list_entries_new", "list_entries")
        return
    # PostgreSQL: the same keys; its heap is not clustered, but both databases share one model.
    for table in ("list_changes", "entry_references"):
        op.drop_constraint(f"{table}_entry_id_fkey", table, type_="foreignkey")
    if by_value:
        op.drop_constraint("list_entries_pkey", "list_entries", type_="primary")
        op.drop_constraint("uq_list_entries_value", "list_entries", type_="unique")
        op.create_unique_constraint("uq_list_entries_id", "list_entries", ["id"])
        op.create_primary_key("pk_list_entries", "list_entries", ["list_id", "signal", "value"])
    else:
        op.drop_constraint("pk_list_entries", "list_entries", type_="primary")
        op.drop_constraint("uq_list_entries_id", "list_entries", type_="unique")
        op.create_primary_key("list_entries_pkey", "list_entries", ["id"])
        op.create_unique_constraint(
            "uq_list_entries_value", "list_entries", ["list_id", "signal", "value"]
        )
    for table in ("list_changes", "entry_references"):
        op.create_foreign_key(
            f"{table}_entry_id_fkey", table, "list_entries", ["entry_id"], ["id"],
            ondelete="CASCADE",
        )  # fmt: skip
