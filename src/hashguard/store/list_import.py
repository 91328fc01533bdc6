"""The import engine: the changes a stream of records calls for, staged and written a chunk at a
time within the caller's transaction, so memory stays bounded whatever the import's size.

Per chunk: values made canonical (checked in one pass where they already are), the entries
the chunk names looked up, ``model.apply`` folded over them, then new entries, changed entries,
one ``list_changes`` row per change and the references sources gained or lost written in bulk.
A chunk of new submissions is first written as if all were new, without lookups (withdrawals
too, when each keeps what the chunk submitted under its reference and no entry held that
reference before: an exchange restating records the list has never seen; one query a chunk
says so); the first chunk that holds a known value or reference is undone and switches the
import to looking values up.
"""

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from hashguard.lists.model import (
    VICTIM_CATEGORIES,
    Category,
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    Provenance,
    Source,
    apply,
    new_entry,
)
from hashguard.lists.records import (
    Record,
    Submission,
    Tombstone,
    Withdrawal,
    all_canonical,
    canonical,
)
from hashguard.store import driver
from hashguard.store.dialects import Dialect
from hashguard.store.list_codecs import (
    CHANGE_COLUMNS,
    ENTRY_COLUMNS,
    ENTRY_FIELDS,
    ENTRY_NAMES,
    REFERENCE_COLUMNS,
    TEXT,
    entry_of,
    entry_values,
    labels_json,
    now,
    provenance_json,
    sources_json,
    value_key,
)
from hashguard.store.list_errors import ListError
from hashguard.store.tables import EntryRow, HashListRow, ReferenceRow

CHUNK: Final = 2000  # records staged and written at a time
CONTENT_ITEM: Final = "hma:"  # the source reference of an HMA content item: hma:ID


@dataclass
class ImportSummary:
    """What an import did. ``unknown_tombstones`` are removals of values the list never held."""

    list: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    unknown_tombstones: int = 0
    version: int = 0

    def counts(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "removed": self.removed,
                "unchanged": self.unchanged, "unknown_tombstones": self.unknown_tombstones,
                "version": self.version}  # fmt: skip


def import_records(
    session: Session,
    row: HashListRow,
    records: Iterable[Record],
    actor: str,
    dialect: Dialect,
    entry_ids: Sequence[int] = (),
) -> ImportSummary:
    """Write the changes ``records`` call for to the list of ``row`` in ``session``'s
    transaction (the caller holds the list's write lock), and set ``row.version`` to the list's
    new version. ``entry_ids``: ids the caller allocated (``Dialect.allocate_entry_ids``) for
    the first new entries, ascending and below any allocated after them. Returns what the
    import did; raises ListError for a change a mirror cannot follow, InvalidRecord for a
    malformed value, and lets through what ``records`` raises."""
    summary = ImportSummary(row.name)
    writer = _Writer(session, row, actor, summary, dialect, entry_ids)
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= CHUNK:
            writer.write(chunk)
            chunk = []
    writer.write(chunk)
    row.version = writer.version
    summary.version = writer.version
    return summary


def update_entries(connection: Connection, entries: list[Entry]) -> None:
    """Write the state of changed ``entries`` (by id) through the driver."""
    marker = driver.marker(connection)
    sql = (
        f"UPDATE list_entries SET labels = {marker}, status = {marker}, submitted_by = {marker}, "
        f"assessed_by = {marker}, sources = {marker}, version = {marker}, stability = {marker} "
        f"WHERE id = {marker}"
    )
    rows = [
        (labels_json(e.labels), TEXT[e.status], e.provenance.submitted_by,
         e.provenance.assessed_by, sources_json(e.provenance.sources), e.version, e.stability,
         e.id)
        for e in entries
    ]  # fmt: skip
    connection.exec_driver_sql(sql, rows)


def same_state(a: Entry, b: Entry) -> bool:
    """Whether ``a`` and ``b`` hold the same labels, provenance, status and stability: a change
    from one to the other changes nothing."""
    return (a.labels, a.provenance, a.status, a.stability) == (
        b.labels, b.provenance, b.status, b.stability,
    )  # fmt: skip


class _Writer:
    """Stages one import's changes chunk by chunk within its transaction."""

    def __init__(
        self,
        session: Session,
        row: HashListRow,
        actor: str,
        summary: ImportSummary,
        dialect: Dialect,
        entry_ids: Sequence[int] = (),
    ) -> None:
        self.session = session
        self.reserved = list(entry_ids)  # given to the first new entries written
        self.row = row
        self.actor = actor
        self.summary = summary
        self.dialect = dialect
        self.version = row.version
        self.at = now()
        self.number = 0  # records seen, for error messages
        self.list_id: int = row.id
        # On a victim list the person's withdrawal deletes whatever the entry's status.
        self.withdrawal_deletes = Category(row.category) in VICTIM_CATEGORIES
        # The chunk being written: entries by key, keys first added, keys changed otherwise,
        # and the change rows (version, kind, entry id, labels, provenance, reason, stability).
        self.current: dict[tuple[str, str], Entry] = {}
        self.holders: dict[str, set[tuple[str, str]]] = {}  # withdrawn references: their entries
        # New entries until something else changes them: (placeholder id, version, labels,
        # provenance, stability); an Entry is built only when needed (``_entry``).
        self.fresh: dict[
            tuple[str, str], tuple[int, int, frozenset[str], Provenance, int | None]
        ] = {}
        self.changed: set[tuple[str, str]] = set()
        self.rows: list[tuple[Any, ...]] = []
        self.placeholder = 0  # entries not inserted yet have negative ids until the flush
        # Records of one file share a few label sets and provenances: serialised once each.
        self._labels: tuple[object, str] = (None, "")
        self._provenance: tuple[object, str] = (None, "")
        self._sources: tuple[object, str] = (None, "")
        # Chunks of submissions are first written as if all new, with no lookups; the first
        # that holds a known value is undone and written the careful way, as is the rest.
        self.speculate = True

    def write(self, records: list[Record]) -> None:
        if not records:
            return
        keyed: list[tuple[Record, tuple[str, str] | None]] = []
        references: set[str] = set()
        values: dict[str, list[str]] = {}
        for record in records:
            if not isinstance(record, Withdrawal):
                values.setdefault(record.signal, []).append(record.value)
            elif record.keep:  # what a restated record keeps is checked in the same pass
                for signal, value in record.keep:
                    values.setdefault(signal, []).append(value)
        trusted = {signal for signal, given in values.items() if all_canonical(signal, given)}
        first = self.number + 1
        self.number += len(records)
        for number, record in enumerate(records, start=first):
            if isinstance(record, Withdrawal):
                keep = record.keep
                if keep is not None and not all(s in trusted for s, _ in keep):
                    where = f"record {number}"
                    keep = frozenset((s, canonical(s, v, where)) for s, v in keep)
                    record = Withdrawal(record.reference, keep, record.reason)
                keyed.append((record, None))
                references.add(record.reference)
            elif record.signal in trusted:
                keyed.append((record, (record.signal, record.value)))
            else:
                value = canonical(record.signal, record.value, f"record {number}")
                keyed.append((record, (record.signal, value)))
        if self.speculate and self._write_new(keyed, references):
            return
        self.current = self._existing({key for _, key in keyed if key is not None})
        self.holders = self._holders(references) if references else {}
        stored = dict(self.current)
        self.fresh, self.changed, self.rows = {}, set(), []
        current, fresh = self.current, self.fresh
        for record, key in keyed:
            if key is None:
                assert isinstance(record, Withdrawal)
                self._withdraw(record)
            elif (
                type(record) is Submission
                and key not in current
                and key not in fresh
                and not self.holders
            ):
                self._add(record, key)  # the common case of a big import, kept lean
            elif isinstance(record, Submission):
                self._submit(record, key)
            elif isinstance(record, Change):
                self._replay(record, key)
            else:
                assert isinstance(record, Tombstone)
                entry = self._entry(key)
                if entry is None:
                    self.summary.unknown_tombstones += 1
                else:
                    self._append(record.kind, key, entry, reason=record.reason)
        self._flush(stored)

    def _replay(self, change: Change, key: tuple[str, str]) -> None:
        """Append a change made by another instance (a mirror following its feed)."""
        entry = self._entry(key)
        if entry is None and change.kind is not ChangeKind.ADD:
            raise ListError(
                f"list {self.row.name}: change {change.version} ({change.kind}) is for "
                f"{key[0]} {key[1]}, which this list does not hold: it is not a mirror of "
                "that list, or changes were missed"
            )
        self._append(
            change.kind, key, entry, change.labels, change.provenance, change.reason,
            change.stability,
        )  # fmt: skip

    def _write_new(
        self, keyed: list[tuple[Record, tuple[str, str] | None]], references: set[str]
    ) -> bool:
        """Write the chunk as new entries, without looking any up; False, having written
        nothing, when one is not new (the database refuses it) or the chunk is not all new
        submissions and withdrawals that change nothing (an exchange restating a record the
        list has never seen: a reference no entry holds, keeping what the chunk submitted)."""
        submitted = [key for record, key in keyed if key is not None]
        if len(set(submitted)) != len(submitted) or not self._idle_withdrawals(keyed):
            self.speculate = False
            return False
        if references and self._known(references):
            self.speculate = False
            return False
        saved = (self.version, self.placeholder, self.summary.added)
        self.current, self.holders, self.fresh, self.changed, self.rows = {}, {}, {}, set(), []
        add = self._add
        unknown = 0
        for record, key in keyed:
            if key is not None:
                add(record, key)  # type: ignore[arg-type]  # checked: new submissions
            elif record.keep is None:  # type: ignore[union-attr]  # checked: a withdrawal
                unknown += 1
        if self._flush({}, probe=True):
            self.summary.unknown_tombstones += unknown
            return True
        self.version, self.placeholder, self.summary.added = saved
        self.speculate = False
        return False

    @staticmethod
    def _idle_withdrawals(keyed: list[tuple[Record, tuple[str, str] | None]]) -> bool:
        """Whether the chunk holds only submissions and withdrawals, and each withdrawal keeps
        every value the chunk submitted before it under its reference (if no entry held the
        reference before, it changes nothing)."""
        covered: dict[str, set[tuple[str, str]]] = {}
        for record, key in keyed:
            if key is not None:
                if type(record) is not Submission:
                    return False
                for source in record.provenance.sources:
                    if source.reference:
                        covered.setdefault(source.reference, set()).add(key)
                continue
            assert isinstance(record, Withdrawal)
            held = covered.get(record.reference)
            if held and (record.keep is None or not held <= record.keep):
                return False
        return True

    def _known(self, references: set[str]) -> bool:
        """Whether an entry of the list holds any of ``references`` (one query a chunk)."""
        connection = self.session.connection()
        marker = driver.marker(connection)
        any_reference, given = self.dialect.in_values(sorted(references))
        sql = (
            f"SELECT 1 FROM entry_references WHERE list_id = {marker} "
            f"AND reference{any_reference} LIMIT 1"
        )
        return connection.exec_driver_sql(sql, (self.list_id, *given)).first() is not None

    def _add(self, record: Submission, key: tuple[str, str]) -> None:
        """A new entry: what ``_append`` of its add would stage, without building the change."""
        self.placeholder -= 1
        self.version += 1
        labels, provenance, stability = record.labels, record.provenance, record.stability
        self.fresh[key] = (self.placeholder, self.version, labels, provenance, stability)
        self.summary.added += 1
        if labels is not self._labels[0]:
            self._labels = (labels, labels_json(labels))
        if provenance is not self._provenance[0]:
            self._provenance = (provenance, provenance_json(provenance))
        self.rows.append(
            (self.version, "add", self.placeholder, self._labels[1], self._provenance[1], "",
             stability)
        )  # fmt: skip

    def _entry(self, key: tuple[str, str]) -> Entry | None:
        """The entry of ``key`` in this chunk, if there is one."""
        entry = self.current.get(key)
        if entry is None and key in self.fresh:
            placeholder, version, labels, provenance, stability = self.fresh[key]
            entry = new_entry(
                placeholder, self.list_id, key[0], key[1], labels, provenance,
                EntryStatus.ACTIVE, version, stability,
            )  # fmt: skip
            self.current[key] = entry
        return entry

    def _submit(self, record: Submission, key: tuple[str, str]) -> None:
        entry = self._entry(key)
        if not record.provenance.sources and entry is not None and _items_only(entry):
            record = dataclasses.replace(record, provenance=_standing_in(record.provenance))
        if self.holders:
            for source in record.provenance.sources:
                if source.reference in self.holders:
                    self.holders[source.reference].add(key)
        if (
            record.restates
            and entry is not None
            and entry.status is not EntryStatus.DELETED
            and _held_only_by(entry, record.provenance.sources)
        ):
            # The source's own entry restated: its labels replace the entry's.
            if entry.labels == record.labels:
                self.summary.unchanged += 1
            else:
                self._append(ChangeKind.RELABEL, key, entry, record.labels, reason=_RESTATED)
            return
        self._append(
            ChangeKind.ADD, key, entry, record.labels, record.provenance, stability=record.stability
        )
        entry = self.current[key]
        if (
            record.restates
            and entry.labels != record.labels
            and _held_only_by(entry, record.provenance.sources)
        ):
            self._append(ChangeKind.RELABEL, key, entry, record.labels, reason=_RESTATED)

    def _withdraw(self, record: Withdrawal) -> None:
        """The source of ``record.reference`` leaves the entries it covers (but those kept). An
        entry it alone held is deleted if active, its sources kept on record; a contested or
        delisted one stays so (the owner's decision), as does one already deleted. On a
        victim list an entry the person alone held is deleted whatever its status: their
        withdrawal holds, and no later reinstatement brings it back."""
        held = self.holders.get(record.reference, set())
        keep = record.keep or frozenset()
        found = False
        for key in sorted(held - keep):
            entry = self._entry(key)
            assert entry is not None
            gone = tuple(s for s in entry.provenance.sources if s.reference == record.reference)
            if not gone:
                continue
            found = True
            withdrawn = Provenance("", "", gone)
            if len(gone) < len(entry.provenance.sources):
                self._append(ChangeKind.WITHDRAW, key, entry, None, withdrawn, record.reason)
            elif entry.status is EntryStatus.ACTIVE or (
                self.withdrawal_deletes and entry.status is not EntryStatus.DELETED
            ):
                self._append(ChangeKind.DELETE, key, entry, None, withdrawn, record.reason)
            else:
                self.summary.unchanged += 1
        still = set()  # the entries that keep this source: kept ones, and deleted ones
        for key in held:
            entry = self._entry(key)
            if entry is not None and record.reference in _references(entry.provenance):
                still.add(key)
        self.holders[record.reference] = still
        if not found and record.keep is None:
            self.summary.unknown_tombstones += 1

    def _append(
        self,
        kind: ChangeKind,
        key: tuple[str, str],
        entry: Entry | None,
        labels: frozenset[str] | None = None,
        provenance: Provenance | None = None,
        reason: str = "",
        stability: int | None = None,
    ) -> None:
        """Stage the change of ``entry`` (None: a new one), unless it changes nothing
        (``stability``: an add's, measured from media)."""
        if entry is None:
            self.placeholder -= 1
        version = self.version + 1
        change = Change(
            self.row.id, version, kind, entry.id if entry else self.placeholder, key[0], key[1],
            labels, provenance, reason, self.actor, self.at, stability,
        )  # fmt: skip
        after = apply(entry, change)
        if entry is None:
            self.fresh[key] = (after.id, version, after.labels, after.provenance, after.stability)
            self.summary.added += 1
        elif same_state(after, entry):
            self.summary.unchanged += 1
            return
        elif kind in _REMOVALS:
            self.summary.removed += 1
        else:
            self.summary.updated += 1
        self.version = version
        self.current[key] = after
        self.changed.add(key)
        self.rows.append(
            (version, TEXT[kind], change.entry_id,
             labels_json(labels) if labels is not None else None,
             provenance_json(provenance) if provenance is not None else None, reason, stability)
        )  # fmt: skip

    def _existing(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        by_signal: dict[str, list[str]] = {}
        for signal, value in keys:
            by_signal.setdefault(signal, []).append(value)
        found: dict[tuple[str, str], Entry] = {}
        connection = self.session.connection()
        marker = driver.marker(connection)
        select_entries = (
            f"SELECT {ENTRY_NAMES} FROM list_entries WHERE list_id = {marker} AND signal = {marker}"
        )
        for signal, values in by_signal.items():  # (list, signal, value key) is the index
            # Through the driver: SQLAlchemy's compiling of thousands of parameters per chunk
            # cost more than the lookup.
            any_value, given = self.dialect.in_values([value_key(v) for v in values])
            sql = f"{select_entries} AND value_key{any_value}"
            for row in connection.exec_driver_sql(sql, (self.list_id, signal, *given)):
                entry = entry_of(row)
                found[(entry.signal, entry.value)] = entry
        return found

    def _holders(self, references: set[str]) -> dict[str, set[tuple[str, str]]]:
        """The entries each reference covers now; they join the chunk's current entries."""
        holders: dict[str, set[tuple[str, str]]] = {reference: set() for reference in references}
        query = (
            select(ReferenceRow.reference, *ENTRY_FIELDS)
            .join(EntryRow, EntryRow.id == ReferenceRow.entry_id)
            .where(
                ReferenceRow.list_id == self.row.id,
                self.dialect.one_of(ReferenceRow.reference, sorted(references)),
            )
        )
        for row in self.session.execute(query):
            entry = entry_of(row[1:])
            key = (entry.signal, entry.value)
            self.current.setdefault(key, entry)
            holders[row[0]].add(key)
        return holders

    def _flush(self, stored: dict[tuple[str, str], Entry], probe: bool = False) -> bool:
        """Write the chunk: new entries (sorted, so they land in the value index in order),
        changed entries, the changes, and the references that sources gained or lost.

        With ``probe``, the new entries may be held already: then nothing is written and the
        result is False."""
        connection = self.session.connection()
        rows = self._new_rows()
        given = self.reserved[: len(rows)]
        fresh_ids = given + self.dialect.allocate_entry_ids(connection, len(rows) - len(given))
        ids = {row[0]: ident for row, ident in zip(rows, fresh_ids, strict=True)}
        rows = [(ids[row[0]], *row[1:]) for row in rows]
        if probe:
            if rows and not self.dialect.insert_new_entries(connection, rows):
                return False
        elif rows:
            self.dialect.insert(connection, ENTRY_COLUMNS, rows)
        updates = [self.current[key] for key in self.changed if key in stored]
        if updates:
            update_entries(connection, updates)
        if self.rows:
            at = driver.stored_time(connection, datetime.fromisoformat(self.at))
            list_id, actor = self.list_id, self.actor
            self.dialect.insert(
                connection,
                CHANGE_COLUMNS,
                [
                    (list_id, version, kind, ids.get(entry, entry), labels, provenance, reason,
                     actor, at, stability)
                    for version, kind, entry, labels, provenance, reason, stability in self.rows
                ],
            )  # fmt: skip
        linked, unlinked = [], []
        for key in self.changed.union(self.fresh):
            entry = self._entry(key) if key in self.changed else None
            provenance = entry.provenance if entry is not None else self.fresh[key][3]
            before = stored.get(key)
            if not provenance.sources and (before is None or not before.provenance.sources):
                continue
            had = _references(before.provenance) if before is not None else frozenset()
            has = _references(provenance)
            if had != has:
                placeholder = entry.id if entry is not None else self.fresh[key][0]
                ident = ids.get(placeholder, placeholder)
                linked += [(self.list_id, reference, ident) for reference in sorted(has - had)]
                unlinked += [(self.list_id, reference, ident) for reference in had - has]
        if linked:
            linked.sort()  # in the primary key's order: an exchange links one per new entry
            self.dialect.insert(connection, REFERENCE_COLUMNS, linked)
        if unlinked:
            marker = driver.marker(connection)
            connection.exec_driver_sql(
                f"DELETE FROM entry_references WHERE list_id = {marker} AND reference = {marker} "
                f"AND entry_id = {marker}",
                unlinked,
            )
        del self.reserved[: len(given)]
        return True

    def _new_rows(self) -> list[tuple[Any, ...]]:
        """The entry rows of the chunk's new entries, by key (so they land in the value index
        in order), their placeholder ids first."""
        rows = []
        for key in sorted(self.fresh):
            entry = self.current.get(key)
            if entry is not None:  # changed again after its add
                rows.append((entry.id, *entry_values(entry)))
                continue
            placeholder, version, labels, provenance, stability = self.fresh[key]
            if labels is not self._labels[0]:
                self._labels = (labels, labels_json(labels))
            if provenance is not self._sources[0]:
                self._sources = (provenance, sources_json(provenance.sources))
            rows.append(
                (placeholder, self.list_id, key[0], key[1], value_key(key[1]), self._labels[1],
                 "active",
                 provenance.submitted_by, provenance.assessed_by, self._sources[1], version,
                 stability)
            )  # fmt: skip
        return rows


_REMOVALS: Final = frozenset((ChangeKind.CONTEST, ChangeKind.DELIST, ChangeKind.DELETE))


_RESTATED: Final = "restated by its source"


def _held_only_by(entry: Entry, sources: tuple[Source, ...]) -> bool:
    return bool(entry.provenance.sources) and all(s in sources for s in entry.provenance.sources)


def _items_only(entry: Entry) -> bool:
    """Whether HMA's content items alone hold the active entry (``store.bank_contents``)."""
    sources = entry.provenance.sources
    return (
        entry.status is EntryStatus.ACTIVE
        and bool(sources)
        and all(s.reference.startswith(CONTENT_ITEM) for s in sources)
    )


def _standing_in(provenance: Provenance) -> Provenance:
    """A source-less submission's provenance with a source standing for its submitter, which
    no withdrawal names: merged into an entry content items alone hold, it holds the entry too,
    so deleting or disabling the items leaves the entry to it (``bank_contents`` does the same
    when an item joins a source-less entry)."""
    standing = Source(provenance.submitted_by or "unsourced", "", "")
    return dataclasses.replace(provenance, sources=(standing,))


def _references(provenance: Provenance) -> frozenset[str]:
    return frozenset(s.reference for s in provenance.sources if s.reference)
