"""Which process holds an exchange's lease (``exchanges.lease_holder``), so that a fetch on the
same machine takes over at once the lease of a fetch that was killed.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("exchanges", sa.Column("lease_holder", sa.String(200), nullable=True))


def downgrade() -> None:
    # SQLite copies the table: keep its ids' AUTOINCREMENT (ids of removed exchanges not reused).
    with op.batch_alter_table("exchanges", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("lease_holder")
