"""What a list looks like at a glance, read from the store: its entries counted by signal and
status, and its latest changes (kind, time, who). The console shows these; the counts are one
grouped scan of each list's entries (in the table's own order), the changes a read backwards
along the list's version index."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from hashguard.store.tables import ChangeRow, EntryRow, utc


@dataclass(frozen=True, slots=True)
class ChangeMark:
    """One change of a list, as an overview shows it: no value, no labels."""

    version: int
    kind: str
    signal: str
    at: datetime
    actor: str


def entry_counts(engine: Engine, list_ids: Sequence[int]) -> dict[int, dict[str, dict[str, int]]]:
    """Per list of ``list_ids``: per signal, the number of entries in each status."""
    if not list_ids:
        return {}
    table = EntryRow.__table__
    query = (
        select(table.c.list_id, table.c.signal, table.c.status, func.count())
        .where(table.c.list_id.in_(list(list_ids)))
        .group_by(table.c.list_id, table.c.signal, table.c.status)
    )
    counted: dict[int, dict[str, dict[str, int]]] = {ident: {} for ident in list_ids}
    with engine.connect() as connection:
        for list_id, signal, status, count in connection.execute(query):
            counted[list_id].setdefault(signal, {})[status] = int(count)
    return counted


def latest_changes(engine: Engine, list_id: int, limit: int) -> list[ChangeMark]:
    """The list's ``limit`` latest changes, newest first."""
    changes = ChangeRow.__table__
    entries = EntryRow.__table__
    query = (
        select(changes.c.version, changes.c.kind, entries.c.signal, changes.c.at, changes.c.actor)
        .join(entries, entries.c.id == changes.c.entry_id)
        .where(changes.c.list_id == list_id)
        .order_by(changes.c.version.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [
            ChangeMark(int(version), kind, signal, utc(at), actor)
            for version, kind, signal, at, actor in connection.execute(query)
        ]
