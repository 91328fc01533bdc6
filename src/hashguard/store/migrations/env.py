"""Alembic environment: run on the connection hashguard passes in (see ``database.migrate``),
or, from the alembic command line, on the database hashguard uses (HASHGUARD_DATABASE_URL,
else hashguard.db here)."""

from alembic import context

from hashguard.store.database import database_url, migration_transaction, open_engine
from hashguard.store.tables import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    # From the alembic command line: the database hashguard would open, its settings applied.
    engine = open_engine(database_url(), migrate=False)
    with engine.connect() as opened, migration_transaction(opened):
        context.configure(connection=opened, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
