"""The match log: every match the service answers is stored, with the caller, the time, the list
entry, the distance and the caller's opaque content reference. Queries that match nothing are
not stored at all: the service keeps no trace of content that is not on a list."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from hashguard.store.driver import marker, stored_time
from hashguard.store.tables import MatchRow, utc

RETENTION = timedelta(days=365)  # then the purge deletes the row (retention.purge)


@dataclass(frozen=True, slots=True)
class LoggedMatch:
    caller: str  # the API key's id
    list: str
    entry: int
    signal: str
    distance: float
    content_ref: str = ""  # the caller's reference for the content, opaque to hashguard
    at: datetime | None = None  # set when stored
    id: int | None = None


class MatchLog:
    def __init__(self, engine: Engine, retention: timedelta = RETENTION) -> None:
        self.engine = engine
        self.retention = retention
        self._table = MatchRow.__table__

    def record(self, matches: Sequence[LoggedMatch]) -> None:
        """Store ``matches`` (one transaction; nothing for an empty sequence)."""
        if not matches:
            return
        now = datetime.now(UTC)
        # Through the driver: the service records matches while it answers requests, and
        # SQLAlchemy's per-statement work there costs more than the insert.
        with self.engine.begin() as connection:
            at = stored_time(connection, now)
            until = stored_time(connection, now + self.retention)
            rows = [(at, m.caller, m.list, m.entry, m.signal, m.distance, m.content_ref, until)
                    for m in matches]  # fmt: skip
            sql = (
                "INSERT INTO match_log (at, caller, list, entry_id, signal, distance, content_ref,"
                f" retain_until) VALUES ({', '.join([marker(connection)] * 8)})"
            )
            connection.exec_driver_sql(sql, rows)

    def recent(
        self, after: int = 0, limit: int = 100, lists: Sequence[str] | None = None
    ) -> list[LoggedMatch]:
        """Stored matches with an id above ``after``, oldest first, at most ``limit``; only
        those of ``lists`` when given."""
        table = self._table
        query = select(table).where(table.c.id > after).order_by(table.c.id).limit(limit)
        if lists is not None:
            query = query.where(table.c.list.in_(list(lists)))
        with self.engine.connect() as connection:
            return [_logged(row) for row in connection.execute(query)]

    def counts_since(
        self, moment: datetime, lists: Sequence[str] | None = None
    ) -> dict[tuple[str, str], int]:
        """How many matches were stored from ``moment`` on, per (list, signal); only those of
        ``lists`` when given."""
        table = self._table
        query = (select(table.c.list, table.c.signal, func.count())
                 .where(table.c.at >= moment).group_by(table.c.list, table.c.signal))  # fmt: skip
        if lists is not None:
            query = query.where(table.c.list.in_(list(lists)))
        with self.engine.connect() as connection:
            return {(name, signal): int(n) for name, signal, n in connection.execute(query)}

    def latest(self, limit: int = 10, lists: Sequence[str] | None = None) -> list[LoggedMatch]:
        """The ``limit`` matches stored last, newest first; only those of ``lists`` when given."""
        table = self._table
        query = select(table).order_by(table.c.id.desc()).limit(limit)
        if lists is not None:
            query = query.where(table.c.list.in_(list(lists)))
        with self.engine.connect() as connection:
            return [_logged(row) for row in connection.execute(query)]


def _logged(row: Any) -> LoggedMatch:
    return LoggedMatch(
        row.caller, row.list, row.entry_id, row.signal, row.distance, row.content_ref,
        utc(row.at), row.id,
    )  # fmt: skip
