"""Writing through the database driver, below SQLAlchemy, where bulk or hot paths need it: the
driver's parameter marker, and times in the form SQLAlchemy reads back."""

from datetime import UTC, datetime

from sqlalchemy import Connection


def marker(connection: Connection) -> str:
    """The driver's positional parameter marker."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def stored_time(connection: Connection, moment: datetime) -> object:
    """``moment`` as the driver takes it: SQLite stores SQLAlchemy's text form (UTC), others a
    datetime."""
    if connection.dialect.name == "sqlite":
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment
