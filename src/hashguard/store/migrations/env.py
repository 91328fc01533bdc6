"""Alembic environment: run on the connection hashguard passes in (see ``database.migrate``),
or, from the alembic command line, on the URL in HASHGUARD_DATABASE_URL."""

import os

from alembic import context
from sqlalchemy import create_engine

from hashguard.store.tables import Base

target_metadata = Base.metadata


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = os.environ.get("HASHGUARD_DATABASE_URL", "sqlite:///hashguard.db")
    with create_engine(url).connect() as opened:
        context.configure(connection=opened, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
