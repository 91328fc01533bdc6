"""A hash's stability (how far it moves under a tiny change of the image) kept with list
entries and the ``add`` changes that carry it, when the value was hashed from media here.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("list_entries", sa.Column("stability", sa.SmallInteger(), nullable=True))
    op.add_column("list_changes", sa.Column("stability", sa.SmallInteger(), nullable=True))
    op.create_index(
        "ix_list_entries_unstable", "list_entries", ["list_id", "stability"],
        sqlite_where=sa.text("stability IS NOT NULL"),
        postgresql_where=sa.text("stability IS NOT NULL"),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_list_entries_unstable", "list_entries")
    with op.batch_alter_table("list_changes") as batch:
        batch.drop_column("stability")
    with op.batch_alter_table("list_entries") as batch:
        batch.drop_column("stability")
