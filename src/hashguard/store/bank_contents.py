"""HMA's bank content items: one per add through HMA's routes, as HMA makes them.

An item is a submission to a list: its values (``signals``: HMA's signal type -> value, as
HMA's API names them) are submitted with the source reference ``hma:ID`` and its
``organisation`` as the source, so ``entry_references`` links the item to its entries. HMA's
``disable_until_ts``: 1 enabled, 0 disabled, else disabled until that Unix time. An item holds
its entries while it is live (not deleted) and its stored ``disable_until_ts`` is 1: deleting
or disabling it withdraws its reference, so an entry stays while another item or source holds
it (a source-less import of the value too, before the item or after: each gets a source
standing for it); enabling it again submits its values again, as does ``restore_due`` (run
every second by ``serve``) for an item whose time has passed, storing 1. Every such change is
a change in the list's log, which every follower applies: an item disabled through HMA's routes
stops matching on hashguard's own routes and at peers too.

Item ids come from the entries' counter, so item and entry ids never collide, and an item that
adds a value the list lacked shares the id of the entry it made (HMA's serial ids: a fresh
bank's first items are 1, 2, 3).

HMA's note and metadata are kept with the item only: never in the list, its releases, its
change feed or the audit log, and erased when the item is deleted or its list removed.
"""

import json
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from hashguard.errors import HashguardError
from hashguard.lists.model import Provenance, Source
from hashguard.lists.records import InvalidRecord, Record, Submission, Withdrawal, canonical
from hashguard.store import audit
from hashguard.store.list_codecs import value_key
from hashguard.store.list_errors import ListNotFound
from hashguard.store.list_import import CONTENT_ITEM
from hashguard.store.lists import ListStore
from hashguard.store.tables import BankContentRow, EntryRow, HashListRow, ReferenceRow

log = logging.getLogger(__name__)

ENABLED: Final = 1  # HMA's disable_until_ts: 1 enabled, 0 disabled, else disabled until then
DISABLED: Final = 0
PREFIX: Final = CONTENT_ITEM  # the source reference of an item: hma:ID

# HMA's signal types, as an item's signals name them, and hashguard's signal of each (HMA's
# video_md5 is the MD5 of the file; hashguard's own names are taken too).
HMA_SIGNALS: Final = {"pdq": "pdq", "vpdq": "vpdq", "video_md5": "md5", "md5": "md5",
                      "sha1": "sha1", "sha256": "sha256"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BankContent:
    id: int
    list: str
    disable_until_ts: int
    signals: Mapping[str, str]  # HMA's signal type -> value, in the order they were added
    note: str | None = None
    metadata: Mapping[str, Any] | None = None  # HMA's BankedContentMetadata, as given
    organisation: str = ""  # who added it (the source of its submissions)

    def enabled(self, now: float) -> bool:
        return enabled(self.disable_until_ts, now)

    def submitted(self) -> tuple[tuple[str, str], ...]:
        """(hashguard's signal, value) of each of its signals."""
        return tuple((HMA_SIGNALS[kind], value) for kind, value in self.signals.items())

    @property
    def reference(self) -> str:
        return f"{PREFIX}{self.id}"


def enabled(disable_until_ts: int, now: float) -> bool:
    """HMA's rule: 1 is enabled, 0 disabled, a time disabled until it has passed."""
    return disable_until_ts == ENABLED or (disable_until_ts > ENABLED and disable_until_ts <= now)


class _Unset:
    pass


UNSET: Final = _Unset()


class BankContents:
    def __init__(self, engine: Engine, lists: ListStore) -> None:
        self.engine = engine
        self.lists = lists

    def add(
        self,
        name: str,
        signals: Mapping[str, str],
        organisation: str,
        actor: str,
        note: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        stabilities: Mapping[str, int] | None = None,
    ) -> BankContent:
        """A new item submitting ``signals`` (HMA's signal type -> value) to the list
        ``name``, each with its stability when it was hashed from media here (``stabilities``:
        hashguard's signal -> stability; the entries keep it). Raises ListError for an unknown
        list, InvalidRecord for a signal type HMA does not have or a malformed value."""
        for kind in signals:
            if kind not in HMA_SIGNALS:
                raise InvalidRecord(
                    f"content item: no HMA signal type {kind[:40]!r}; expected one of "
                    f"{', '.join(HMA_SIGNALS)}"
                )
        with self.engine.begin() as connection:
            self.lists.apply(name, [], actor, connection)  # the list's write lock, first
            content_id = self.lists.dialect.allocate_entry_ids(connection, 1)[0]
            item = BankContent(content_id, name, ENABLED, dict(signals), note,
                               None if metadata is None else dict(metadata),
                               organisation)  # fmt: skip
            list_id = _list_id(connection, name)
            values = item.submitted()
            records: list[Record] = [
                Submission(
                    signal,
                    value,
                    provenance=_provenance(item, prior),
                    stability=(stabilities or {}).get(signal),
                )
                for (signal, value), prior in zip(
                    values, _unsourced(connection, list_id, values), strict=True
                )
            ]
            self.lists.apply(name, records, actor, connection, entry_ids=[content_id])
            connection.execute(
                insert(BankContentRow).values(
                    id=content_id, list_id=list_id, created_at=datetime.now(UTC),
                    disable_until_ts=ENABLED, signals=item.signals,
                    organisation=organisation, note=note, content_metadata=item.metadata,
                    deleted_at=None,
                )
            )  # fmt: skip
        self.lists.committed()
        return item

    def known(self, content_id: int) -> bool:
        """Whether ``content_id`` is (or was, before its deletion) an item's id."""
        with self.engine.connect() as connection:
            found = connection.scalar(
                select(BankContentRow.id).where(BankContentRow.id == content_id)
            )
        return found is not None

    def get(self, name: str, content_id: int) -> BankContent | None:
        """The live item ``content_id`` of the list ``name``, or None."""
        with self.engine.connect() as connection:
            row = _row(connection, name, content_id)
        return None if row is None else _item(name, row)

    def update(
        self,
        name: str,
        content_id: int,
        actor: str,
        disable_until_ts: int | None = None,
        note: str | _Unset | None = UNSET,
    ) -> BankContent | None:
        """Set the item's ``disable_until_ts`` and/or note; None if there is no such live item.
        An item that becomes disabled withdraws its reference, one enabled again submits its
        values again (a time already passed enables it, and is then kept as 1)."""
        with self.engine.begin() as connection:
            self.lists.apply(name, [], actor, connection)  # the list's write lock, first
            row = _row(connection, name, content_id)
            if row is None:
                return None
            updated = self._set(connection, name, row, actor, disable_until_ts, note)
        self.lists.committed()
        return updated

    def _set(
        self,
        connection: Connection,
        name: str,
        row: Any,
        actor: str,
        disable_until_ts: int | None,
        note: str | _Unset | None,
    ) -> BankContent:
        """``update`` of the item's ``row``, in the caller's transaction holding the list's
        write lock."""
        item = _item(name, row)
        now = time.time()
        until = item.disable_until_ts if disable_until_ts is None else disable_until_ts
        records = _transition(item, until, now)
        if records:
            self.lists.apply(name, records, actor, connection)
        if enabled(until, now) and until != ENABLED:
            until = ENABLED  # restored: the sweep has nothing left to do
        values: dict[str, Any] = {"disable_until_ts": until}
        details: dict[str, Any] = {"content": item.id, "disable_until_ts": until}
        if not isinstance(note, _Unset):
            values["note"] = note
            details["note"] = "set" if note else "cleared"  # never the note itself
        connection.execute(
            update(BankContentRow).where(BankContentRow.id == item.id).values(**values)
        )
        audit.append(connection, actor, "bank_content.update", name, details)
        shown = disable_until_ts if disable_until_ts is not None else until
        changed = item.note if isinstance(note, _Unset) else note
        return BankContent(item.id, name, shown, item.signals, changed, item.metadata,
                           item.organisation)  # fmt: skip

    def delete(self, name: str, content_id: int, actor: str) -> int:
        """Delete the item: its reference withdrawn, its note and metadata erased. 1, or 0 if
        there was no such live item."""
        with self.engine.begin() as connection:
            self.lists.apply(name, [], actor, connection)  # the list's write lock, first
            row = _row(connection, name, content_id)
            if row is None:
                return 0
            item = _item(name, row)
            records: list[Record] = [Withdrawal(item.reference, reason=_DELETED)]
            self.lists.apply(name, records, actor, connection)
            connection.execute(
                update(BankContentRow)
                .where(BankContentRow.id == content_id)
                .values(deleted_at=datetime.now(UTC), note=None, content_metadata=None)
            )
            audit.append(connection, actor, "bank_content.delete", name, {"content": content_id})
        self.lists.committed()
        return 1

    def holders(self, entry_ids: Collection[int], now: float | None = None) -> dict[int, list[int]]:
        """For each of ``entry_ids`` that live, enabled items hold now: those items' ids."""
        if not entry_ids:
            return {}
        now = time.time() if now is None else now
        ids = sorted(set(entry_ids))
        with self.engine.connect() as connection:
            linked = connection.execute(
                select(ReferenceRow.entry_id, ReferenceRow.list_id, ReferenceRow.reference).where(
                    ReferenceRow.entry_id.in_(ids), ReferenceRow.reference.startswith(PREFIX)
                )
            ).all()
            wanted = {i for r in linked if (i := _content_id(r.reference)) is not None}
            items = {
                row.id: row
                for row in connection.execute(
                    select(BankContentRow).where(
                        BankContentRow.id.in_(sorted(wanted)),
                        BankContentRow.deleted_at.is_(None),
                    )
                )
            }
        found: dict[int, list[int]] = {}
        for entry_id, list_id, reference in linked:
            item = items.get(_content_id(reference) or 0)
            if item is not None and item.list_id == list_id and enabled(item.disable_until_ts, now):
                found.setdefault(entry_id, []).append(item.id)
        return {entry: sorted(held) for entry, held in found.items()}

    def restore_due(self, actor: str = "hashguard serve") -> int:
        """Enable the items whose ``disable_until_ts`` has passed (their values submitted
        again); how many. Each is enabled only if it is still as read, under its list's write
        lock: a curator's change since (disabled for good, a new time) stands, and of several
        instances sweeping at once one restores it. An item that cannot be restored (a
        domain error: its list renamed or removed meanwhile, a value its list refuses) is
        logged and left for the next sweep; the others are restored."""
        now = time.time()
        with self.engine.connect() as connection:
            due = connection.execute(
                select(BankContentRow.id, HashListRow.name, BankContentRow.disable_until_ts)
                .join(HashListRow, HashListRow.id == BankContentRow.list_id)
                .where(
                    BankContentRow.deleted_at.is_(None),
                    BankContentRow.disable_until_ts > ENABLED,
                    BankContentRow.disable_until_ts <= int(now),
                )
                .order_by(BankContentRow.id)
            ).all()
        restored = 0
        for content_id, name, until in due:
            try:
                restored += self._restore(name, content_id, int(until), actor)
            except HashguardError as error:
                log.warning("HMA content item %d of list %s not restored: %s",
                            content_id, name, error)  # fmt: skip
        return restored

    def _restore(self, name: str, content_id: int, until: int, actor: str) -> bool:
        """Enable the item if its ``disable_until_ts`` is still ``until``, a time passed;
        whether it did."""
        with self.engine.begin() as connection:
            self.lists.apply(name, [], actor, connection)  # the list's write lock, first
            row = _row(connection, name, content_id)
            if row is None or row.disable_until_ts != until or not enabled(until, time.time()):
                return False  # changed since it was read: a curator's decision, or restored
            self._set(connection, name, row, actor, ENABLED, UNSET)
        self.lists.committed()
        return True


def _transition(item: BankContent, until: int, now: float) -> list[Record]:
    """The records that take the item from its state to ``until``'s. An item holds its values
    while its stored ``disable_until_ts`` is 1: a time passed is still to be restored
    (``restore_due``), which stores 1."""
    was, will = item.disable_until_ts == ENABLED, enabled(until, now)
    if was and not will:
        return [Withdrawal(item.reference, reason=_DISABLED)]
    if will and not was:
        return [
            Submission(signal, value, provenance=_provenance(item))
            for signal, value in item.submitted()
        ]
    return []


_DELETED: Final = "content deleted through the HMA API"
_DISABLED: Final = "content disabled through the HMA API"


def _provenance(item: BankContent, prior: Source | None = None) -> Provenance:
    source = Source(item.organisation or "hma", "", item.reference)
    return Provenance(item.organisation, "", (source,) if prior is None else (prior, source))


def _unsourced(
    connection: Connection, list_id: int, signals: Sequence[tuple[str, str]]
) -> list[Source | None]:
    """Per value: for an entry the list holds without any source (a plain file's import), a
    source standing for whoever submitted it, so that deleting the item later withdraws the
    item alone and leaves the entry to its first holder."""
    priors: list[Source | None] = []
    for signal, value in signals:
        row = connection.execute(
            select(EntryRow.sources, EntryRow.submitted_by, EntryRow.status).where(
                EntryRow.list_id == list_id,
                EntryRow.signal == signal,
                EntryRow.value_key == value_key(canonical(signal, value)),
            )
        ).one_or_none()
        if row is None or row.status != "active" or json.loads(row.sources or "[]"):
            priors.append(None)
        else:
            priors.append(Source(row.submitted_by or "unsourced", "", ""))
    return priors


def _content_id(reference: str) -> int | None:
    digits = reference.removeprefix(PREFIX)
    return int(digits) if digits.isdigit() else None


def _item(name: str, row: Any) -> BankContent:
    return BankContent(row.id, name, row.disable_until_ts, dict(row.signals), row.note,
                       row.content_metadata, row.organisation)  # fmt: skip


def _list_id(connection: Connection, name: str) -> int:
    found = connection.scalar(select(HashListRow.id).where(HashListRow.name == name))
    if found is None:
        raise ListNotFound(f"no list named {name!r}")
    return int(found)


def _row(connection: Connection, name: str, content_id: int) -> Any:
    return connection.execute(
        select(BankContentRow)
        .join(HashListRow, HashListRow.id == BankContentRow.list_id)
        .where(
            HashListRow.name == name,
            BankContentRow.id == content_id,
            BankContentRow.deleted_at.is_(None),
        )
    ).one_or_none()
