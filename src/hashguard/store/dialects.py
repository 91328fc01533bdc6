"""What the list store does differently on SQLite and on PostgreSQL, behind one interface chosen
once per engine (``dialect_of``): bulk inserts, writing a chunk of entries that may be held
already, allocating entry ids, snapshot reads, streaming reads and matching a column against many
values.

The bulk and hot paths go through the database driver, below SQLAlchemy: its per-row parameter
processing and compiling cost more than the database's work there.
"""

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from typing import Any

from sqlalchemy import ARRAY, Connection, Engine, Text, any_, literal, select, text, update
from sqlalchemy.sql import ColumnElement

from hashguard.store.list_codecs import ENTRY_COLUMNS
from hashguard.store.tables import IdCounterRow

Table = tuple[str, tuple[str, ...]]  # a table's name and the columns of the rows written


class Dialect(ABC):
    """The list store's SQL where SQLite and PostgreSQL differ."""

    @abstractmethod
    def insert(self, connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        """INSERT ``rows`` into ``table``."""

    @abstractmethod
    def insert_new_entries(self, connection: Connection, rows: list[tuple[Any, ...]]) -> bool:
        """Insert entry ``rows`` (in ``ENTRY_COLUMNS`` order, ids ascending) unless one has a
        value its list holds: then insert none and return False."""

    @abstractmethod
    def allocate_entry_ids(self, connection: Connection, count: int) -> list[int]:
        """``count`` fresh entry ids, ascending (the caller holds the list's write lock)."""

    @abstractmethod
    def read_snapshot(self, connection: Connection) -> None:
        """Make the transaction's reads one snapshot: each statement would otherwise see the
        database as it is when that statement starts."""

    def batches(
        self, connection: Connection, sql: str, parameters: Sequence[Any], size: int = 5000
    ) -> Generator[Sequence[Any], None, None]:
        """The rows ``sql`` selects, ``size`` at a time, read as they are fetched (through the
        driver: releases and Matchers read millions of entries, where SQLAlchemy's per-row work
        cost more than the database's)."""
        cursor = self._streaming_cursor(connection)
        try:
            cursor.execute(sql, parameters)
            while batch := cursor.fetchmany(size):
                yield batch
        finally:
            cursor.close()

    @abstractmethod
    def _streaming_cursor(self, connection: Connection) -> Any:
        """A driver cursor whose rows come as they are fetched."""

    @abstractmethod
    def in_values(self, values: list[str]) -> tuple[str, tuple[Any, ...]]:
        """SQL that follows a column to match any of ``values``, and its parameters."""

    @abstractmethod
    def one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        """``column`` matching any of ``values``, as a SQLAlchemy condition."""


class SQLite(Dialect):
    def insert(self, connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        connection.exec_driver_sql(_insert_sql(table), rows)

    def insert_new_entries(self, connection: Connection, rows: list[tuple[Any, ...]]) -> bool:
        # A savepoint would journal every page the chunk touches; skipping held values and
        # counting is cheaper, and the rare undo deletes the ids just allocated.
        sql = f"{_insert_sql(ENTRY_COLUMNS)} ON CONFLICT (list_id, signal, value_key) DO NOTHING"
        if connection.exec_driver_sql(sql, rows).rowcount == len(rows):
            return True
        connection.exec_driver_sql(
            f"DELETE FROM {ENTRY_COLUMNS[0]} WHERE id BETWEEN ? AND ?", (rows[0][0], rows[-1][0])
        )
        return False

    def allocate_entry_ids(self, connection: Connection, count: int) -> list[int]:
        if not count:
            return []
        counter = IdCounterRow.__table__.c
        connection.execute(
            update(IdCounterRow)
            .where(counter.name == "list_entries")
            .values(value=counter.value + count)
        )
        last = connection.execute(
            select(counter.value).where(counter.name == "list_entries")
        ).scalar_one()
        return list(range(last - count + 1, last + 1))

    def read_snapshot(self, connection: Connection) -> None:
        # Outside BEGIN, SQLite's reads are each their own transaction.
        connection.exec_driver_sql("BEGIN")

    def _streaming_cursor(self, connection: Connection) -> Any:
        return _driver_connection(connection).cursor()  # sqlite3 steps through the rows

    def in_values(self, values: list[str]) -> tuple[str, tuple[Any, ...]]:
        return f" IN ({','.join('?' * len(values))})", tuple(values)

    def one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = column.in_(values)
        return condition


class PostgreSQL(Dialect):
    def insert(self, connection: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
        name, columns = table
        statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
        with _driver_connection(connection).cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def insert_new_entries(self, connection: Connection, rows: list[tuple[Any, ...]]) -> bool:
        # COPY has no ON CONFLICT; savepoints are cheap.
        connection.exec_driver_sql("SAVEPOINT hashguard_new")
        try:
            self.insert(connection, ENTRY_COLUMNS, rows)
        except connection.dialect.loaded_dbapi.IntegrityError:
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hashguard_new")
            connection.exec_driver_sql("RELEASE SAVEPOINT hashguard_new")
            return False
        connection.exec_driver_sql("RELEASE SAVEPOINT hashguard_new")
        return True

    def allocate_entry_ids(self, connection: Connection, count: int) -> list[int]:
        if not count:
            return []
        query = text(
            "SELECT nextval(pg_get_serial_sequence('list_entries', 'id')) "
            "FROM generate_series(1, :count)"
        )
        return [row[0] for row in connection.execute(query, {"count": count})]

    def read_snapshot(self, connection: Connection) -> None:
        # READ COMMITTED, the default, takes a snapshot per statement.
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def _streaming_cursor(self, connection: Connection) -> Any:
        # A named (server-side) cursor: psycopg's default one fetches every row at once.
        return _driver_connection(connection).cursor(name="hashguard_entries")

    # One array parameter: thousands of IN parameters cost PostgreSQL more to parse and plan
    # than the lookup itself.
    def in_values(self, values: list[str]) -> tuple[str, tuple[Any, ...]]:
        return " = ANY(%s)", (values,)

    def one_of(self, column: Any, values: list[str]) -> ColumnElement[bool]:
        condition: ColumnElement[bool] = column == any_(literal(values, ARRAY(Text())))
        return condition


def dialect_of(engine: Engine) -> Dialect:
    """The list store's SQL for ``engine``'s database: PostgreSQL's, else SQLite's."""
    return PostgreSQL() if engine.dialect.name == "postgresql" else SQLite()


def _insert_sql(table: Table) -> str:
    name, columns = table
    return f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


def _driver_connection(connection: Connection) -> Any:
    raw = connection.connection.driver_connection
    assert raw is not None
    return raw
