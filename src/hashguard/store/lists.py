"""ListStore: hash lists in the database, changed only by appending to their change logs.

Every write is one transaction: an import either applies all its records or none (a malformed
record anywhere rolls everything back), and a list's version always equals its number of
changes. Re-importing what a list already holds appends nothing.
"""

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    Text,
    any_,
    delete,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hashguard import audit
from hashguard.collector import collector_paused
from hashguard.lists.model import (
    NAME_PATTERN,
    Category,
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
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
from hashguard.signals import registry
from hashguard.store import driver
from hashguard.store.tables import ChangeRow, EntryRow, HashListRow, IdCounterRow, ReferenceRow

_CHUNK: Final = 2000


class ListError(ValueError):
    """A list operation that cannot be done; the message says which list and why."""


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


class ListStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- lists ------------------------------------------------------------------------------

    def create(
        self,
        name: str,
        owner: str,
        category: Category,
        jurisdictions: Sequence[str] = (),
        legal_basis: str = "",
        policy: ListPolicy | None = None,
        actor: str = "",
    ) -> HashList:
        """A new, empty list (and its audit event). Raises ListError if the name is taken or
        malformed."""
        if not _valid_name(name):
            raise ListError(
                f"list name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if not owner.strip():
            raise ListError(f"list {name}: the owner (an organisation) is required")
        _check_thresholds(name, policy or ListPolicy())
        row = HashListRow(
            name=name,
            owner=owner.strip(),
            category=Category(category).value,
            jurisdictions=[j.upper() for j in jurisdictions],
            legal_basis=legal_basis,
            policy=(policy or ListPolicy()).as_json(),
            version=0,
            created_at=datetime.now(UTC),
        )
        try:
            with self._session() as session, session.begin():
                session.add(row)
                session.flush()
                details = {
                    "owner": row.owner,
                    "category": row.category,
                    "policy": row.policy,
                    "jurisdictions": row.jurisdictions,
                    "legal_basis": legal_basis,
                }
                audit.append(session.connection(), actor, "list.create", name, details)
        except IntegrityError:
            raise ListError(f"a list named {name!r} already exists") from None
        return _hash_list(row)

    def update(
        self,
        name: str,
        policy: ListPolicy | None = None,
        legal_basis: str | None = None,
        jurisdictions: Sequence[str] | None = None,
        actor: str = "",
    ) -> HashList:
        """Change a list's policy, legal basis or jurisdictions (what is given), with an audit
        event holding the old and new values. Raises ListError for an unknown list or a bad
        threshold."""
        if policy is not None:
            _check_thresholds(name, policy)
        with self._session() as session, session.begin():
            row = self._row(session, name, for_update=True)
            before = {"policy": row.policy, "legal_basis": row.legal_basis,
                      "jurisdictions": row.jurisdictions}  # fmt: skip
            if policy is not None:
                row.policy = policy.as_json()
            if legal_basis is not None:
                row.legal_basis = legal_basis
            if jurisdictions is not None:
                row.jurisdictions = [j.upper() for j in jurisdictions]
            after = {"policy": row.policy, "legal_basis": row.legal_basis,
                     "jurisdictions": row.jurisdictions}  # fmt: skip
            if after != before:
                details = {"before": before, "after": after}
                audit.append(session.connection(), actor, "list.update", name, details)
            return _hash_list(row)

    def remove(self, name: str, actor: str = "") -> HashList:
        """Remove a list with its entries and change log (its signed releases and their log
        records stay where they were published), with an audit event. Raises ListError if
        there is no such list."""
        with self._session() as session, session.begin():
            row = self._row(session, name, for_update=True)
            hash_list = _hash_list(row)
            for table in (ReferenceRow, ChangeRow, EntryRow):
                session.execute(delete(table).where(table.list_id == row.id))
            session.delete(row)
            details = {"version": hash_list.version, "owner": hash_list.owner}
            audit.append(session.connection(), actor, "list.remove", name, details)
        return hash_list

    def get(self, name: str) -> HashList:
        """The list named ``name``. Raises ListError if there is none."""
        with self._session() as session:
            return _hash_list(self._row(session, name))

    def lists(self) -> list[HashList]:
        with self._session() as session:
            rows = session.scalars(select(HashListRow).order_by(HashListRow.name))
            return [_hash_list(row) for row in rows]

    # --- changes ----------------------------------------------------------------------------

    def apply(self, name: str, records: Iterable[Record], actor: str = "") -> ImportSummary:
        """Append the changes ``records`` call for, in one transaction.

        A submission of a value the list lacks adds an entry; of one it holds, merges labels and
        sources (reviving it if deleted). A tombstone deletes or delists. Records that change
        nothing append nothing. An exception from ``records`` (a parse error) or a ListError
        rolls the whole import back.
        """
        summary = ImportSummary(name)
        with collector_paused(), self._session() as session, session.begin():
            row = self._row(session, name, for_update=True)
            writer = _Writer(session, row, actor, summary)
            chunk: list[Record] = []
            for record in records:
                chunk.append(record)
                if len(chunk) >= _CHUNK:
                    writer.write(chunk)
                    chunk = []
            writer.write(chunk)
            row.version = writer.version
            summary.version = writer.version
            if summary.version != writer.row_version_before:
                audit.append(session.connection(), actor, "list.import", name, summary.counts())
        return summary

    def change(
        self,
        name: str,
        kind: ChangeKind,
        signal: str,
        value: str,
        reason: str = "",
        actor: str = "",
        labels: Iterable[str] | None = None,
    ) -> Change:
        """Contest, delist, delete or relabel one entry. Raises ListError if the list does not
        hold the value, or the entry is already in that state."""
        if kind is ChangeKind.ADD:
            raise ListError("entries are added by importing them")
        value = canonical(signal, value)
        with self._session() as session, session.begin():
            row = self._row(session, name, for_update=True)
            entry = _held(
                session,
                row,
                f"{signal} entry {value}",
                EntryRow.signal == signal,
                EntryRow.value == value,
            )
            change = Change(
                row.id,
                row.version + 1,
                kind,
                entry.id,
                signal,
                value,
                frozenset(labels) if labels is not None else None,
                None,
                reason,
                actor,
                _now(),
            )
            after = apply(entry, change)
            if _same(after, entry):
                raise ListError(f"list {name}: {signal} entry {value} is already {entry.status}")
            connection = session.connection()
            at = driver.stored_time(connection, datetime.fromisoformat(change.at))
            _insert_many(connection, _CHANGE_COLUMNS, [_change_values(change, entry.id, at)])
            _update_entries(session.connection(), [after])
            row.version += 1
            details = {"signal": signal, "value": value, "reason": reason,
                       "version": row.version}  # fmt: skip
            if labels is not None:
                details["labels"] = sorted(labels)
            audit.append(session.connection(), actor, f"list.{kind.value}", name, details)
        return change

    def entry(self, name: str, signal: str, value: str) -> Entry:
        """The list's entry for ``value``. Raises ListError if the list does not hold it,
        InvalidRecord for a malformed value."""
        value = canonical(signal, value)
        with self._session() as session:
            row = self._row(session, name)
            return _held(
                session,
                row,
                f"{signal} entry {value}",
                EntryRow.signal == signal,
                EntryRow.value == value,
            )

    def entry_by_id(self, name: str, entry_id: int) -> Entry:
        """The list's entry numbered ``entry_id``. Raises ListError if the list has none."""
        with self._session() as session:
            row = self._row(session, name)
            return _held(session, row, f"entry {entry_id}", EntryRow.id == entry_id)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Change]:
        """The changes after ``version``, oldest first (all of them from version 0)."""
        with self._session() as session:
            list_id = self._row(session, name).id
            # Through the driver: a Matcher following an import reads 100,000s of changes
            # while the service answers requests, and SQLAlchemy's per-row work held the
            # interpreter lock for most of that time.
            connection = session.connection()
            marker = driver.marker(connection)
            sql = (
                "SELECT c.version, c.kind, c.entry_id, c.labels, c.provenance, c.reason, c.actor,"
                " c.at, e.signal, e.value FROM list_changes c JOIN list_entries e"
                f" ON e.id = c.entry_id WHERE c.list_id = {marker} AND c.version > {marker}"
                " ORDER BY c.version"
            )
            parameters: tuple[int, ...] = (list_id, version)
            if limit is not None:
                sql += f" LIMIT {marker}"
                parameters += (limit,)
            cursor = connection.exec_driver_sql(sql, parameters)
            while rows := cursor.fetchmany(5000):
                for row in rows:
                    yield _change(list_id, row)

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        """The list and its entries now (in ``statuses``, default all), by signal and value.

        Both are read in one transaction, so the entries are exactly those of the list's
        version returned.
        """
        session = self._session()
        try:
            _read_snapshot(session)
            row = self._row(session, name)
            hash_list = _hash_list(row)
        except Exception:
            session.close()
            raise
        wanted = [s.value for s in statuses] if statuses is not None else None

        def rows() -> Iterator[Entry]:
            try:
                # Through a driver cursor (server-side on PostgreSQL): releases and Matchers
                # read millions of entries, where SQLAlchemy's per-row work cost more than
                # the database's.
                connection = session.connection()
                marker = driver.marker(connection)
                sql = f"SELECT {_ENTRY_NAMES} FROM list_entries WHERE list_id = {marker}"
                if wanted is not None:
                    sql += f" AND status IN ({', '.join(marker for _ in wanted)})"
                sql += " ORDER BY signal, value"
                raw = connection.connection.driver_connection
                assert raw is not None
                postgresql = connection.dialect.name == "postgresql"
                cursor = raw.cursor(name="hashguard_entries") if postgresql else raw.cursor()
                try:
                    cursor.execute(sql, (hash_list.id, *(wanted or ())))
                    while batch := cursor.fetchmany(5000):
                        yield from map(_entry_of, batch)
                finally:
                    cursor.close()
            finally:
                session.close()

        return hash_list, rows()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _row(self, session: Session, name: str, for_update: bool = False) -> HashListRow:
        """The list's row; with ``for_update``, the transaction first takes the write lock (a
        no-op update: a row lock on PostgreSQL, the database's write lock on SQLite), so ids
        and versions it hands out cannot collide with another writer's."""
        if for_update:
            session.execute(
                update(HashListRow)
                .where(HashListRow.name == name)
                .values(version=HashListRow.version)
                .execution_options(synchronize_session=False)
            )
        query = select(HashListRow).where(HashListRow.name == name)
        if for_update:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise ListError(f"no list named {name!r}")
        return row


class _Writer:
    """Stages one import's changes chunk by chunk within its transaction."""

    def __init__(self, session: Session, row: HashListRow, actor: str, summary: ImportSummary):
        self.session = session
        self.row = row
        self.actor = actor
        self.summary = summary
        self.version = row.version
        self.row_version_before = row.version
        self.at = _now()
        self.number = 0  # records seen, for error messages
        self.postgresql = session.get_bind().dialect.name == "postgresql"
        self.list_id: int = row.id
        # The chunk being written: entries by key, keys first added, keys changed otherwise,
        # and the change rows (version, kind, entry id, labels, provenance, reason).
        self.current: dict[tuple[str, str], Entry] = {}
        self.holders: dict[str, set[tuple[str, str]]] = {}  # withdrawn references: their entries
        # New entries until something else changes them: (placeholder id, version, labels,
        # provenance); an Entry is built only when needed (``_entry``).
        self.fresh: dict[tuple[str, str], tuple[int, int, frozenset[str], Provenance]] = {}
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
        trusted = {signal for signal, given in values.items() if all_canonical(signal, given)}
        first = self.number + 1
        self.number += len(records)
        for number, record in enumerate(records, start=first):
            if isinstance(record, Withdrawal):
                where = f"record {number}"
                keep = record.keep
                if keep is not None:
                    keep = frozenset((s, canonical(s, v, where)) for s, v in keep)
                keyed.append((Withdrawal(record.reference, keep, record.reason), None))
                references.add(record.reference)
            elif record.signal in trusted:
                keyed.append((record, (record.signal, record.value)))
            else:
                value = canonical(record.signal, record.value, f"record {number}")
                keyed.append((record, (record.signal, value)))
        if self.speculate and not references and self._write_new(keyed):
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
        self._append(change.kind, key, entry, change.labels, change.provenance, change.reason)

    def _write_new(self, keyed: list[tuple[Record, tuple[str, str] | None]]) -> bool:
        """Write the chunk as new entries, without looking any up; False, having written
        nothing, when one is not new (the database refuses it) or the chunk is not all new
        submissions."""
        keys = {key for _, key in keyed}
        if len(keys) != len(keyed) or any(type(record) is not Submission for record, _ in keyed):
            self.speculate = False
            return False
        saved = (self.version, self.placeholder, self.summary.added)
        self.current, self.holders, self.fresh, self.changed, self.rows = {}, {}, {}, set(), []
        add = self._add
        for record, key in keyed:
            add(record, key)  # type: ignore[arg-type]  # checked above: new submissions
        if self._flush({}, probe=True):
            return True
        self.version, self.placeholder, self.summary.added = saved
        self.speculate = False
        return False

    def _add(self, record: Submission, key: tuple[str, str]) -> None:
        """A new entry: what ``_append`` of its add would stage, without building the change."""
        self.placeholder -= 1
        self.version += 1
        labels, provenance = record.labels, record.provenance
        self.fresh[key] = (self.placeholder, self.version, labels, provenance)
        self.summary.added += 1
        if labels is not self._labels[0]:
            self._labels = (labels, _labels_json(labels))
        if provenance is not self._provenance[0]:
            self._provenance = (provenance, _provenance_json(provenance))
        self.rows.append(
            (self.version, "add", self.placeholder, self._labels[1], self._provenance[1], "")
        )

    def _entry(self, key: tuple[str, str]) -> Entry | None:
        """The entry of ``key`` in this chunk, if there is one."""
        entry = self.current.get(key)
        if entry is None and key in self.fresh:
            placeholder, version, labels, provenance = self.fresh[key]
            entry = new_entry(
                placeholder, self.list_id, key[0], key[1], labels, provenance,
                EntryStatus.ACTIVE, version,
            )  # fmt: skip
            self.current[key] = entry
        return entry

    def _submit(self, record: Submission, key: tuple[str, str]) -> None:
        entry = self._entry(key)
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
        self._append(ChangeKind.ADD, key, entry, record.labels, record.provenance)
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
        delisted one stays so (the owner's decision), as does one already deleted."""
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
            elif entry.status is EntryStatus.ACTIVE:
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
    ) -> None:
        """Stage the change of ``entry`` (None: a new one), unless it changes nothing."""
        if entry is None:
            self.placeholder -= 1
        version = self.version + 1
        change = Change(
            self.row.id, version, kind, entry.id if entry else self.placeholder, key[0], key[1],
            labels, provenance, reason, self.actor, self.at,
        )  # fmt: skip
        after = apply(entry, change)
        if entry is None:
            self.fresh[key] = (after.id, version, after.labels, after.provenance)
            self.summary.added += 1
        elif _same(after, entry):
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
            (version, _TEXT[kind], change.entry_id,
             _labels_json(labels) if labels is not None else None,
             _provenance_json(provenance) if provenance is not None else None, reason)
        )  # fmt: skip

    def _existing(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        by_signal: dict[str, list[str]] = {}
        for signal, value in keys:
            by_signal.setdefault(signal, []).append(value)
        found: dict[tuple[str, str], Entry] = {}
        connection = self.session.connection()
        select_entries = f"SELECT {_ENTRY_NAMES} FROM list_entries WHERE list_id = "
        for signal, values in by_signal.items():  # (list, signal, value) is the unique index
            # Through the driver: SQLAlchemy's compiling of thousands of parameters per chunk
            # cost more than the lookup.
            if self.postgresql:
                # One array parameter: thousands of IN parameters cost PostgreSQL more to
                # parse and plan than the lookup itself.
                sql = f"{select_entries}%s AND signal = %s AND value = ANY(%s)"
                rows = connection.exec_driver_sql(sql, (self.list_id, signal, values))
            else:
                markers = ",".join("?" * len(values))
                sql = f"{select_entries}? AND signal = ? AND value IN ({markers})"
                rows = connection.exec_driver_sql(sql, (self.list_id, signal, *values))
            for row in rows:
                entry = _entry_of(row)
                found[(entry.signal, entry.value)] = entry
        return found

    def _holders(self, references: set[str]) -> dict[str, set[tuple[str, str]]]:
        """The entries each reference covers now; they join the chunk's current entries."""
        holders: dict[str, set[tuple[str, str]]] = {reference: set() for reference in references}
        query = (
            select(ReferenceRow.reference, *_ENTRY_FIELDS)
            .join(EntryRow, EntryRow.id == ReferenceRow.entry_id)
            .where(
                ReferenceRow.list_id == self.row.id,
                self._one_of(ReferenceRow.reference, sorted(references)),
            )
        )
        for row in self.session.execute(query):
            entry = _entry_of(row[1:])
            key = (entry.signal, entry.value)
            self.current.setdefault(key, entry)
            holders[row[0]].add(key)
        return holders

    def _one_of(self, column: Any, values: list[str]) -> Any:
        if self.postgresql:
            # One array parameter: thousands of IN parameters cost PostgreSQL more to parse
            # and plan than the lookup itself.
            return column == any_(literal(values, ARRAY(Text())))
        return column.in_(values)

    def _flush(self, stored: dict[tuple[str, str], Entry], probe: bool = False) -> bool:
        """Write the chunk: new entries (sorted, so they land in the value index in order),
        changed entries, the changes, and the references that sources gained or lost.

        With ``probe``, the new entries may be held already: then nothing is written and the
        result is False."""
        connection = self.session.connection()
        rows = self._new_rows()
        ids = {row[0]: ident for row, ident in zip(rows, self._allocate(len(rows)), strict=True)}
        rows = [(ids[row[0]], *row[1:]) for row in rows]
        if probe:
            if not _insert_new(connection, rows):
                return False
        elif rows:
            _insert_many(connection, _ENTRY_COLUMNS, rows)
        updates = [self.current[key] for key in self.changed if key in stored]
        if updates:
            _update_entries(connection, updates)
        if self.rows:
            at = driver.stored_time(connection, datetime.fromisoformat(self.at))
            list_id, actor = self.list_id, self.actor
            _insert_many(
                connection,
                _CHANGE_COLUMNS,
                [
                    (list_id, version, kind, ids.get(entry, entry), labels, provenance, reason,
                     actor, at)
                    for version, kind, entry, labels, provenance, reason in self.rows
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
            _insert_many(connection, _REFERENCE_COLUMNS, linked)
        if unlinked:
            marker = driver.marker(connection)
            connection.exec_driver_sql(
                f"DELETE FROM entry_references WHERE list_id = {marker} AND reference = {marker} "
                f"AND entry_id = {marker}",
                unlinked,
            )
        return True

    def _new_rows(self) -> list[tuple[Any, ...]]:
        """The entry rows of the chunk's new entries, by key (so they land in the value index
        in order), their placeholder ids first."""
        rows = []
        for key in sorted(self.fresh):
            entry = self.current.get(key)
            if entry is not None:  # changed again after its add
                rows.append((entry.id, *_entry_values(entry)))
                continue
            placeholder, version, labels, provenance = self.fresh[key]
            if labels is not self._labels[0]:
                self._labels = (labels, _labels_json(labels))
            if provenance is not self._sources[0]:
                self._sources = (provenance, _sources_json(provenance.sources))
            rows.append(
                (placeholder, self.list_id, key[0], key[1], self._labels[1], "active",
                 provenance.submitted_by, provenance.assessed_by, self._sources[1], version)
            )  # fmt: skip
        return rows

    def _allocate(self, count: int) -> list[int]:
        """``count`` fresh entry ids (the caller holds the write lock)."""
        if not count:
            return []
        connection = self.session.connection()
        if connection.dialect.name == "postgresql":
            query = text(
                "SELECT nextval(pg_get_serial_sequence('list_entries', 'id')) "
                "FROM generate_series(1, :count)"
            )
            return [row[0] for row in connection.execute(query, {"count": count})]
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


_REMOVALS: Final = frozenset((ChangeKind.CONTEST, ChangeKind.DELIST, ChangeKind.DELETE))


_RESTATED: Final = "restated by its source"


def _held(session: Session, row: HashListRow, what: str, *where: Any) -> Entry:
    """The list's one entry that ``where`` picks. Raises ListError if there is none."""
    found = session.execute(
        select(*_ENTRY_FIELDS).where(EntryRow.list_id == row.id, *where)
    ).one_or_none()
    if found is None:
        raise ListError(f"list {row.name} holds no {what}")
    return _entry_of(found)


def _held_only_by(entry: Entry, sources: tuple[Source, ...]) -> bool:
    return bool(entry.provenance.sources) and all(s in sources for s in entry.provenance.sources)


def _references(provenance: Provenance) -> frozenset[str]:
    return frozenset(s.reference for s in provenance.sources if s.reference)


_ENTRY_COLUMNS: Final = (
    "list_entries",
    ("id", "list_id", "signal", "value", "labels", "status", "submitted_by", "assessed_by",
     "sources", "version"),
)  # fmt: skip
_CHANGE_COLUMNS: Final = (
    "list_changes",
    ("list_id", "version", "kind", "entry_id", "labels", "provenance", "reason", "actor", "at"),
)
_REFERENCE_COLUMNS: Final = ("entry_references", ("list_id", "reference", "entry_id"))


def _insert_new(connection: Connection, rows: list[tuple[Any, ...]]) -> bool:
    """Insert entry ``rows`` unless one has a value its list holds: then insert none, False."""
    if connection.dialect.name == "postgresql":  # COPY has no ON CONFLICT; savepoints are cheap
        connection.exec_driver_sql("SAVEPOINT hashguard_new")
        try:
            _insert_many(connection, _ENTRY_COLUMNS, rows)
        except connection.dialect.loaded_dbapi.IntegrityError:
            connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hashguard_new")
            connection.exec_driver_sql("RELEASE SAVEPOINT hashguard_new")
            return False
        connection.exec_driver_sql("RELEASE SAVEPOINT hashguard_new")
        return True
    # SQLite: a savepoint would journal every page the chunk touches; skipping held values and
    # counting is cheaper, and the rare undo deletes the ids just allocated.
    name, columns = _ENTRY_COLUMNS
    marker = driver.marker(connection)
    inserted = connection.exec_driver_sql(
        f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join(marker for _ in columns)}) "
        "ON CONFLICT (list_id, signal, value) DO NOTHING",
        rows,
    ).rowcount
    if inserted == len(rows):
        return True
    connection.exec_driver_sql(
        f"DELETE FROM {name} WHERE id BETWEEN {marker} AND {marker}", (rows[0][0], rows[-1][0])
    )
    return False


def _insert_many(
    connection: Connection, table: tuple[str, tuple[str, ...]], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT ``rows`` through the driver (COPY on PostgreSQL, executemany elsewhere): millions
    of rows in an import, where SQLAlchemy's per-row parameter processing would cost more than
    the database."""
    name, columns = table
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        statement = f"COPY {name} ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        return
    marker = driver.marker(connection)
    sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join(marker for _ in columns)})"
    connection.exec_driver_sql(sql, rows)


def _entry_values(entry: Entry) -> tuple[Any, ...]:
    return (
        entry.list_id,
        entry.signal,
        entry.value,
        _labels_json(entry.labels),
        _TEXT[entry.status],
        entry.provenance.submitted_by,
        entry.provenance.assessed_by,
        _sources_json(entry.provenance.sources),
        entry.version,
    )


def _change_values(change: Change, entry_id: int, at: object) -> tuple[Any, ...]:
    return (
        change.list_id,
        change.version,
        _TEXT[change.kind],
        entry_id,
        _labels_json(change.labels) if change.labels is not None else None,
        _provenance_json(change.provenance) if change.provenance else None,
        change.reason,
        change.actor,
        at,
    )


# Enum members by their stored text, looked up per row instead of through Enum.value.
_TEXT: Final[dict[object, str]] = {member: member.value for member in (*ChangeKind, *EntryStatus)}


def _read_snapshot(session: Session) -> None:
    """Make the session's reads one snapshot: each statement would otherwise see the database
    as it is when that statement starts (PostgreSQL's READ COMMITTED; SQLite outside BEGIN)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def _same(a: Entry, b: Entry) -> bool:
    return (a.labels, a.provenance, a.status) == (b.labels, b.provenance, b.status)


def _check_thresholds(name: str, policy: ListPolicy) -> None:
    if not 0 <= policy.enabled_ratio <= 1:
        raise ListError(f"list {name}: enabled_ratio {policy.enabled_ratio}: expected 0 to 1")
    for signal, threshold in policy.thresholds.items():
        listable = registry.listable_names()
        limit = registry.get(signal).max_threshold if signal in listable else 0
        if signal not in listable or not 0 <= threshold <= limit:
            raise ListError(
                f"list {name}: threshold {signal}={threshold}: expected a signal of "
                f"{', '.join(listable)} and a distance from 0 to {limit:g}"
            )


def _valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _hash_list(row: HashListRow) -> HashList:
    return HashList(
        row.id,
        row.name,
        row.owner,
        Category(row.category),
        tuple(row.jurisdictions),
        row.legal_basis,
        ListPolicy.from_json(row.policy),
        row.version,
    )


# Entries are read as plain rows of these columns: building ORM objects for a million of them
# costs more than the query.
_ENTRY_FIELDS: Final = (
    EntryRow.id, EntryRow.list_id, EntryRow.signal, EntryRow.value, EntryRow.labels,
    EntryRow.submitted_by, EntryRow.assessed_by, EntryRow.sources, EntryRow.status,
    EntryRow.version,
)  # fmt: skip


_ENTRY_NAMES: Final = ", ".join(column.name for column in _ENTRY_FIELDS)


def _entry_of(row: Any) -> Entry:
    """An Entry from a row of ``_ENTRY_FIELDS``."""
    ident, list_id, signal, value, labels, submitted_by, assessed_by, sources, status, version = row
    return new_entry(
        ident,
        list_id,
        signal,
        value,
        _labels_from(labels),
        _provenance(submitted_by, assessed_by, sources),
        _STATUS[status],
        version,
    )


@lru_cache(maxsize=4096)
def _provenance(submitted_by: str, assessed_by: str, sources: str) -> Provenance:
    return Provenance(submitted_by, assessed_by, _sources_from(sources))


_STATUS: Final = {status.value: status for status in EntryStatus}


# Imports repeat a few label sets and provenances millions of times: serialise each once.
@lru_cache(maxsize=4096)
def _labels_json(labels: frozenset[str]) -> str:
    return json.dumps(sorted(labels), ensure_ascii=False)


@lru_cache(maxsize=4096)
def _labels_from(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


@lru_cache(maxsize=4096)
def _sources_json(sources: tuple[Source, ...]) -> str:
    return json.dumps([s.as_json() for s in sources], ensure_ascii=False)


@lru_cache(maxsize=4096)
def _sources_from(text: str) -> tuple[Source, ...]:
    return tuple(Source.from_json(s) for s in json.loads(text))


@lru_cache(maxsize=4096)
def _provenance_json(provenance: Provenance) -> str:
    return json.dumps(provenance.as_json(), ensure_ascii=False)


@lru_cache(maxsize=4096)
def _provenance_from(text: str) -> Provenance:
    return Provenance.from_json(json.loads(text))


def _update_entries(connection: Connection, entries: list[Entry]) -> None:
    """Write the state of changed ``entries`` (by id) through the driver."""
    marker = driver.marker(connection)
    sql = (
        f"UPDATE list_entries SET labels = {marker}, status = {marker}, submitted_by = {marker}, "
        f"assessed_by = {marker}, sources = {marker}, version = {marker} WHERE id = {marker}"
    )
    rows = [
        (_labels_json(e.labels), _TEXT[e.status], e.provenance.submitted_by,
         e.provenance.assessed_by, _sources_json(e.provenance.sources), e.version, e.id)
        for e in entries
    ]  # fmt: skip
    connection.exec_driver_sql(sql, rows)


def _change(list_id: int, row: Any) -> Change:
    version, kind, entry_id, labels, provenance, reason, actor, at, signal, value = row
    return Change(
        list_id,
        version,
        ChangeKind(kind),
        entry_id,
        signal,
        value,
        _labels_from(labels) if labels is not None else None,
        _provenance_from(provenance) if provenance is not None else None,
        reason,
        actor,
        _shown_time(at),
    )


@lru_cache(maxsize=1024)
def _shown_time(at: object) -> str:
    """A stored time as a change shows it (ISO 8601, UTC, seconds): SQLite gives back the text
    SQLAlchemy wrote, PostgreSQL a datetime. The changes of one import share one time."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    assert isinstance(moment, datetime)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")
