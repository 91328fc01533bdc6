"""Outboxes: rows that wait to be sent elsewhere, tried until delivered, backing off after each
failure. A table is an outbox when it has the columns ``id``, ``attempts``,
``next_attempt_at``, ``delivered_at`` and ``last_error`` (the victims' hotline referrals, the
hotline's referrals and reports); ``deliver_due`` attempts its due rows with the sender given
and records each outcome, the reason of every failure included."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import ColumnElement, Engine, Row, select, update

from hashguard.store.tables import Base

FIRST_RETRY: Final = 2.0  # seconds; doubled after each failure, at most an hour
LONGEST_RETRY: Final = 3600.0

Send = Callable[[Row[Any]], str | None]
"""Sends one row; None when it was delivered, else why not (a sentence for operators)."""


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
) -> int:
    """Attempt every undelivered row of the outbox ``rows`` due at ``now`` (and meeting
    ``where``), at most ``limit``, oldest first: one ``send`` each, the outcome written at once
    (delivered, or the attempt counted, the reason kept and the next attempt put off by
    ``retry_delay``).
    Each failure is logged as ``what(row)`` with its reason. The number delivered."""
    table = rows.__table__
    with engine.connect() as connection:
        due = connection.execute(
            select(table)
            .where(table.c.delivered_at.is_(None), table.c.next_attempt_at <= now, *where)
            .order_by(table.c.id)
            .limit(limit)
        ).all()
    delivered = 0
    for row in due:
        error = send(row)
        attempts = row.attempts + 1
        if error is None:
            values: dict[str, Any] = {"attempts": attempts, "delivered_at": now, "last_error": ""}
            delivered += 1
        else:
            wait = retry_delay(attempts)
            values = {"attempts": attempts, "last_error": error[:500],
                      "next_attempt_at": now + wait}  # fmt: skip
            log.warning("%s: attempt %d failed (%s); next in %.0f s", what(row), attempts, error,
                        wait.total_seconds())  # fmt: skip
        with engine.begin() as connection:
            connection.execute(update(rows).where(table.c.id == row.id).values(values))
    return delivered
