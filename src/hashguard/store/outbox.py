"""Outboxes: rows that wait to be sent elsewhere, tried until delivered, backing off after each
failure. A table is an outbox when it has the columns ``id``, ``attempts``,
``next_attempt_at``, ``delivered_at`` and ``last_error`` (the victims' hotline referrals, the
hotline's referrals and reports); ``deliver_due`` attempts its due rows with the sender given
and records each outcome, the reason of every failure included. Each row is claimed before it
is sent, so that several instances sharing the database send it once: the claim runs from the
moment it is made (a fresh clock reading, not the pass's start), so a row claimed late in a long
pass is not due again while it is being sent."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from time import monotonic
from typing import Any, Final

from sqlalchemy import ColumnElement, Connection, Engine, Row, select, update

from hashguard.store.tables import Base

FIRST_RETRY: Final = 2.0  # seconds; doubled after each failure, at most an hour
LONGEST_RETRY: Final = 3600.0
CLAIM: Final = timedelta(minutes=5)  # a claimed row is due again if its sender died meanwhile

Send = Callable[[Row[Any]], str | None]
"""Sends one row; None when it was delivered, else why not (a sentence for operators)."""

Record = Callable[[Connection, Row[Any], str | None], None]
"""Writes more about an attempt's outcome (the row, None or the failure's reason) in the
transaction that records it."""


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt (2 s, doubled each time, at
    most an hour)."""
    return timedelta(seconds=min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY))


def deliver_due(
    engine: Engine,
    rows: type[Base],
    send: Send,
    now: datetime,
    log: logging.Logger,
    what: Callable[[Row[Any]], str],
    *where: ColumnElement[bool],
    limit: int = 100,
    record: Record | None = None,
    clock: Callable[[], datetime] | None = None,
) -> int:
    """Attempt every undelivered row of the outbox ``rows`` due at ``now`` (and meeting
    ``where``), at most ``limit``, oldest first: one ``send`` each, the outcome written at once
    (delivered, or the attempt counted, the reason kept and the next attempt put off by
    ``retry_delay``). A row is first claimed (its next attempt put off by ``CLAIM`` where it
    still holds the value read); a row another instance claimed meanwhile is left to it.
    Each failure is logged as ``what(row)`` with its reason; ``record``, when given, writes
    what else the outcome changes in the same transaction. The number delivered.

    Each claim, delivery and next attempt is timed by ``clock`` when given (the caller's
    injected clock), else by ``now`` plus the time the pass has taken so far."""
    table = rows.__table__
    started = monotonic()

    def current() -> datetime:
        if clock is not None:
            return clock()
        return now + timedelta(seconds=monotonic() - started)

    with engine.connect() as connection:
        due = connection.execute(
            select(table)
            .where(table.c.delivered_at.is_(None), table.c.next_attempt_at <= now, *where)
            .order_by(table.c.id)
            .limit(limit)
        ).all()
    delivered = 0
    for row in due:
        if not _claimed(engine, table, row, current() + CLAIM):
            continue
        error = send(row)
        attempts, at = row.attempts + 1, current()
        if error is None:
            values: dict[str, Any] = {"attempts": attempts, "delivered_at": at, "last_error": ""}
            delivered += 1
        else:
            wait = retry_delay(attempts)
            values = {"attempts": attempts, "last_error": error[:500],
                      "next_attempt_at": at + wait}  # fmt: skip
            log.warning("%s: attempt %d failed (%s); next in %.0f s", what(row), attempts, error,
                        wait.total_seconds())  # fmt: skip
        with engine.begin() as connection:
            connection.execute(update(rows).where(table.c.id == row.id).values(values))
            if record is not None:
                record(connection, row, error)
    return delivered


def _claimed(engine: Engine, table: Any, row: Row[Any], until: datetime) -> bool:
    """Whether this instance claimed ``row`` (no one changed it since it was read)."""
    with engine.begin() as connection:
        claimed = connection.execute(
            update(table)
            .where(table.c.id == row.id, table.c.delivered_at.is_(None),
                   table.c.attempts == row.attempts,
                   table.c.next_attempt_at == row.next_attempt_at)
            .values(next_attempt_at=until)
        )  # fmt: skip
    return claimed.rowcount == 1
