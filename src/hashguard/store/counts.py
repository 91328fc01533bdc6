"""Yearly counts for the transparency reports, bumped in the transaction of what they count.

A count is (year, metric, key) -> value: ``detections`` by technology, ``false_positives`` by
technology, ``complaints`` by outcome, ``complaint_seconds`` (summed, for the average time to
decide), ``actions`` by kind, ``reports`` by recipient. Counts carry no personal data, so they
stay when the purge deletes the detections they count.
"""

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from hashguard.store.driver import marker
from hashguard.store.tables import CountRow


def bump(connection: Connection, at: datetime, metric: str, key: str, amount: float = 1) -> None:
    """Add ``amount`` to the count of ``metric``/``key`` in the year of ``at``."""
    m = marker(connection)
    # INSERT ... ON CONFLICT is the same on SQLite (3.24+) and PostgreSQL.
    connection.exec_driver_sql(
        "INSERT INTO safeguard_counts (year, metric, key, value) "
        f"VALUES ({m}, {m}, {m}, {m}) ON CONFLICT (year, metric, key) "
        "DO UPDATE SET value = safeguard_counts.value + excluded.value",
        (at.year, metric, key, float(amount)),
    )


def counts(engine: Engine, year: int) -> dict[str, dict[str, float]]:
    """Every count of ``year``: metric -> key -> value."""
    table = CountRow.__table__
    found: dict[str, dict[str, float]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            select(table.c.metric, table.c.key, table.c.value).where(table.c.year == year)
        )
        for metric, key, value in rows:
            found.setdefault(metric, {})[key] = float(value)
    return found


def total(by_key: Mapping[str, float] | None) -> float:
    return sum((by_key or {}).values())
