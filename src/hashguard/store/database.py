"""Opening the database: SQLite in a file by default (WAL, foreign keys on), PostgreSQL by URL;
the schema is brought to the newest Alembic revision on open."""

import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar

from sqlalchemy import Connection, Engine, Select, create_engine, event, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import InstrumentedAttribute

from hashguard.errors import Unavailable

DEFAULT_URL: Final = "sqlite:///hashguard.db"
_MIGRATION_LOCK: Final = 0x68617368  # PostgreSQL advisory lock key of migrations ("hash")
_SQLITE_TIMEOUT: Final = 30.0  # seconds a SQLite connection waits for a lock
MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
_Query = TypeVar("_Query", bound=Select[Any])


class DatabaseError(Unavailable):
    """The database cannot be opened or used; the message says which and why."""


def database_url(given: str | None = None) -> str:
    """The URL to use: ``given``, else HASHGUARD_DATABASE_URL, else hashguard.db here."""
    return given or os.environ.get("HASHGUARD_DATABASE_URL") or DEFAULT_URL


def open_engine(url: str | None = None, migrate: bool = True) -> Engine:
    """An engine on ``url`` (see ``database_url``), its schema migrated to the newest revision.

    Raises DatabaseError naming the database on a bad URL or a failed connection.
    """
    url = database_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(f"not a database URL: {url!r}") from None
    if parsed.drivername == "postgresql":  # the driver hashguard installs
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": _SQLITE_TIMEOUT}
    elif parsed.get_backend_name() == "postgresql":
        # psycopg prepares statements run 5 times; the generic plan of a lookup with thousands
        # of IN parameters is far slower than planning each one with its values.
        options["connect_args"] = {"prepare_threshold": None}
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError) as error:
        raise DatabaseError(f"{parsed.render_as_string()}: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if migrate:
        _migrated(engine, parsed.render_as_string(hide_password=True))
    return engine


def _migrated(engine: Engine, shown: str) -> None:
    """``engine``'s schema at the newest revision. Processes opening a new SQLite file at once
    can meet SQLite's deadlock refusal ("database is locked" at once, without waiting: two
    connections each holding a lock the other needs, turning the file to WAL or starting to
    write); the one refused lets go and tries again, for as long as SQLite's own timeout."""
    deadline = time.monotonic() + _SQLITE_TIMEOUT
    while True:
        try:
            if current_revision(engine) != head_revision():
                upgrade(engine)
            return
        except DBAPIError as error:
            locked = engine.dialect.name == "sqlite" and "database is locked" in str(error.orig)
            if not locked or time.monotonic() > deadline:
                raise DatabaseError(f"{shown}: {error.orig}") from None
            engine.dispose()  # its connections let go of what they hold
            threading.Event().wait(0.05)


@cache
def head_revision() -> str:
    """The newest migration's revision: each is named after its file's number (a test holds
    the two together), so no migration script is loaded to know it."""
    return max(path.name[:4] for path in (MIGRATIONS / "versions").glob("[0-9]*.py"))


def current_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None for a database without one yet.

    Read with two plain queries: opening a database that is up to date (every command, every
    server start) then imports and runs nothing of Alembic's.
    """
    if engine.dialect.name == "sqlite":
        stamped = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    else:
        stamped = "SELECT to_regclass('alembic_version')"
    with engine.connect() as connection:
        if connection.exec_driver_sql(stamped).scalar() is None:
            return None
        revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    return None if revision is None else str(revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``, the newest by default (a no-op when it is there)."""
    from alembic import command  # only when a schema changes: importing Alembic takes 0.5 s
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection, migration_transaction(connection):
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def for_update(connection: Connection, query: _Query, touched: InstrumentedAttribute[Any],
               *where: Any) -> _Query:  # fmt: skip
    """``query``, which reads the rows of one table where ``where`` holds, made to lock them
    until the transaction ends, so that what it reads of them still holds when the transaction
    writes: a row lock on PostgreSQL (FOR UPDATE OF the table); on SQLite, which has no row
    locks, the database's write lock, taken here by a write that changes nothing (a read takes
    none, and outside BEGIN it is its own transaction). Other writers wait for the commit.

    ``touched`` is the column of that table the write sets to itself: one that no index, key
    or foreign key names, or SQLite would check every row that refers to the row (for a list,
    all of its entries)."""
    row = touched.class_
    if connection.dialect.name != "sqlite":
        return query.with_for_update(of=row)
    connection.execute(update(row).where(*where).values({touched.key: touched}))
    return query


@contextmanager
def migration_transaction(connection: Connection) -> Iterator[None]:
    """One transaction for migrations: all of them or none, the revision stamp included.

    On SQLite, foreign keys are off while migrations rebuild tables (dropping a table would
    otherwise cascade to the rows that point to it) and checked before the commit; and the
    transaction is begun explicitly, as the sqlite3 module would otherwise commit each CREATE
    or DROP by itself.
    """
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only outside a transaction
        connection.commit()
    try:
        with connection.begin():
            # One migrating process at a time (replicas starting together on a new database):
            # the others wait here, then find the schema at its revision and change nothing.
            if sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            yield
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise DatabaseError(
                        f"migrations would leave rows with broken references: {broken[:5]}"
                    )
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA page_size=16384")  # new files only: fewer, fuller index pages
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor it them
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
    cursor.execute("PRAGMA cache_size=-262144")  # 256 MiB: imports update large indexes
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


@contextmanager
def temporary_database(server: str, template: str | None = None) -> Iterator[str]:
    """The URL of a new database on the PostgreSQL ``server`` (a URL), dropped on exit: for
    tests and benchmarks. Empty, or a copy of the database named ``template`` (which nobody
    may be connected to)."""
    base = make_url(server).set(drivername="postgresql+psycopg")
    name = f"hashguard_scratch_{uuid.uuid4().hex[:12]}"
    copied = f' TEMPLATE "{template}"' if template else ""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
