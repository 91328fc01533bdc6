"""Entries keyed by (list, signal, value key): the value itself, or the SHA-256 of a value too
long for an index key (a video's vPDQ runs to kilobytes; PostgreSQL refuses index keys over
2,704 bytes). Every value stored before this revision is a hash of hex digits: its own key.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_COLUMNS = "id, list_id, signal, value, labels, status, submitted_by, assessed_by, sources, version"


def upgrade() -> None:
    _rekey(by_value_key=True)


def downgrade() -> None:
    _rekey(by_value_key=False)


def _rekey(by_value_key: bool) -> None:
    key = "value_key" if by_value_key else "value"
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a table's key in place: copy into a new table. hashguard runs
        # migrations with foreign keys off, so dropping the old table cascades nowhere.
        extra = [sa.Column("value_key", sa.Text(), nullable=False)] if by_value_key else []
        op.create_table(
            "list_entries_new",
            sa.Column("id", Id, nullable=False),
            sa.Column(
                "list_id", Id, sa.ForeignKey("hash_lists.id", ondelete="CASCADE"), nullable=False
            ),
            sa.Column("signal", sa.String(32), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            *extra,
            sa.Column("labels", sa.Text(), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("submitted_by", sa.String(200), nullable=False),
            sa.Column("assessed_by", sa.String(200), nullable=False),
            sa.Column("sources", sa.Text(), nullable=False),
            sa.Column("version", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("list_id", "signal", key, name="pk_list_entries"),
            sa.UniqueConstraint("id", name="uq_list_entries_id"),
            sqlite_with_rowid=False,
        )
        columns = f"{_COLUMNS}, value_key" if by_value_key else _COLUMNS
        chosen = f"{_COLUMNS}, value" if by_value_key else _COLUMNS
        op.execute(
            f"INSERT INTO list_entries_new ({columns}) SELECT {chosen} FROM list_entries "
            "ORDER BY list_id, signal, value"
        )
        op.drop_table("list_entries")
        op.rename_table("list_entries_new", "list_entries")
        return
    # PostgreSQL: the same key. The foreign keys point at id, which stays unique throughout.
    op.drop_constraint("pk_list_entries", "list_entries", type_="primary")
    if by_value_key:
        op.add_column("list_entries", sa.Column("value_key", sa.Text(), nullable=True))
        op.execute("UPDATE list_entries SET value_key = value")
        op.alter_column("list_entries", "value_key", nullable=False)
    else:
        op.drop_column("list_entries", "value_key")
    op.create_primary_key("pk_list_entries", "list_entries", ["list_id", "signal", key])
