"""ListStore: hash lists in the database, changed only by appending to their change logs.

Every write is one transaction: an import either applies all its records or none (a malformed
record anywhere rolls everything back), and a list's version always equals its number of
changes. Re-importing what a list already holds appends nothing. Imports are written by
``list_import``; what SQLite and PostgreSQL do differently is in ``dialects``.
"""

import hashlib
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    apply,
)
from hashguard.lists.records import Record, canonical
from hashguard.signals import registry
from hashguard.store import audit, driver, list_names
from hashguard.store.database import for_update
from hashguard.store.dialects import dialect_of
from hashguard.store.list_codecs import (
    CHANGE_COLUMNS,
    ENTRY_FIELDS,
    ENTRY_NAMES,
    KEY_LENGTH,
    change_of,
    change_values,
    entry_of,
    hash_list_of,
    now,
    value_key,
)
from hashguard.store.list_errors import (
    EntryNotFound,
    ListError,
    ListExists,
    ListInUse,
    ListNotFound,
    Unchanged,
)
from hashguard.store.list_import import ImportSummary, import_records, same_state, update_entries
from hashguard.store.tables import (
    BankContentRow,
    ChangeRow,
    EntryRow,
    ExchangeRow,
    HashListRow,
    ReferenceRow,
    utc,
)


class ListStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = dialect_of(engine)

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
        connection: Connection | None = None,
    ) -> HashList:
        """A new, empty list (and its audit event), in its own transaction or in the caller's
        (``connection``: it commits or rolls back the list with its own, then calls
        ``committed``). Raises ListError if the name is taken or malformed."""
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
        opened = self._session() if connection is None else self._joining(connection)
        try:
            with opened as session, session.begin():
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
            raise ListExists(f"a list named {name!r} already exists") from None
        return hash_list_of(row)

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
            row = self._row(session, name, lock=True)
            _update(session, row, policy, legal_basis, jurisdictions, actor)
            return hash_list_of(row)

    def rename(
        self, name: str, new_name: str, actor: str = "", policy: ListPolicy | None = None
    ) -> HashList:
        """Give a list a new name, with an audit event naming both. Its entries, change log
        and version stay; every row that names it follows the new name in the same
        transaction (detections, match log, receipts, victims, hotline, API key scopes:
        ``list_names``); settings that name it do not. Releases already signed
        keep the old name in their manifests (they are never rewritten); the next release is
        signed under the new one. With ``policy``, the policy changes in the same transaction
        (all or nothing; an audit event each). Raises ListError for an unknown list, a
        malformed name or a bad threshold, ListExists if the new name is taken."""
        if not _valid_name(new_name):
            raise ListError(
                f"list name {new_name!r}: use 1-100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if policy is not None:
            _check_thresholds(name, policy)
        try:
            with self._session() as session, session.begin():
                row = self._row(session, name, lock=True)
                if new_name != name:
                    row.name = new_name
                    session.flush()
                    carried = list_names.carry(session.connection(), row.id, name, new_name)
                    details = {"from": name, "to": new_name, "version": row.version,
                               "carried": carried}  # fmt: skip
                    audit.append(session.connection(), actor, "list.rename", new_name, details)
                _update(session, row, policy, None, None, actor)
                return hash_list_of(row)
        except IntegrityError:
            raise ListExists(f"a list named {new_name!r} already exists") from None

    def remove(self, name: str, actor: str = "") -> HashList:
        """Remove a list with its entries and change log (its signed releases and their log
        records stay where they were published), with an audit event. Keys limited to it
        keep it as a removed list's (``list_names.forget``): a list made or renamed later under
        its name is not theirs. Raises ListNotFound if there is no such list, ListInUse if an
        exchange fills it."""
        with self._session() as session, session.begin():
            row = self._row(session, name, lock=True)
            hash_list = hash_list_of(row)
            filling = session.scalar(
                select(ExchangeRow.name).where(ExchangeRow.list_id == row.id).limit(1)
            )
            if filling is not None:
                raise ListInUse(
                    f"list {name} is filled by exchange {filling}: remove the exchange first"
                )
            for table in (BankContentRow, ReferenceRow, ChangeRow, EntryRow):
                session.execute(delete(table).where(table.list_id == row.id))
            session.delete(row)
            details = {"version": hash_list.version, "owner": hash_list.owner,
                       "keys": list_names.forget(session.connection(), name)}  # fmt: skip
            audit.append(session.connection(), actor, "list.remove", name, details)
        return hash_list

    def get(self, name: str) -> HashList:
        """The list named ``name``. Raises ListError if there is none."""
        with self._session() as session:
            return hash_list_of(self._row(session, name))

    def lists(self) -> list[HashList]:
        with self._session() as session:
            rows = session.scalars(select(HashListRow).order_by(HashListRow.name))
            return [hash_list_of(row) for row in rows]

    # --- changes ----------------------------------------------------------------------------

    def apply(
        self,
        name: str,
        records: Iterable[Record],
        actor: str = "",
        connection: Connection | None = None,
        entry_ids: Sequence[int] = (),
    ) -> ImportSummary:
        """Append the changes ``records`` call for, in one transaction (the caller's, when
        ``connection`` is given: it commits or rolls back the changes with its own, then calls
        ``committed``). ``entry_ids``: ids the caller allocated in that transaction for the
        first new entries (an HMA content item shares its id with the entry it creates).

        A submission of a value the list lacks adds an entry; of one it holds, merges labels and
        sources (a deleted one is revived, held by the submission's sources alone). A tombstone
        deletes or delists. Records that change
        nothing append nothing. An exception from ``records`` (a parse error) or a ListError
        rolls the whole import back.
        """
        opened = self._session() if connection is None else self._joining(connection)
        with collector_paused(), opened as session, session.begin():
            row = self._row(session, name, lock=True)
            before = row.version
            summary = import_records(session, row, records, actor, self.dialect, entry_ids)
            if summary.version != before:
                audit.append(session.connection(), actor, "list.import", name, summary.counts())
        return summary

    def committed(self) -> None:
        """Told by a caller whose transaction holding ``apply(..., connection)`` committed: a
        store that keeps a matcher current takes the changes in (here nothing)."""

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
        """Contest, delist, delete, reinstate or relabel one entry. Raises ListError if the list
        does not hold the value, or a reinstatement has no reason; Unchanged if the entry is
        already in that state, or is not contested or delisted when reinstated."""
        if kind is ChangeKind.ADD:
            raise ListError("entries are added by importing them")
        if kind is ChangeKind.REINSTATE and not reason.strip():
            raise ListError(f"list {name}: a reinstatement needs a reason (it is kept in the log)")
        value = canonical(signal, value)
        with self._session() as session, session.begin():
            row = self._row(session, name, lock=True)
            entry = _held(
                session,
                row,
                f"{signal} entry {value}",
                EntryRow.signal == signal,
                EntryRow.value_key == value_key(value),
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
                now(),
            )
            after = apply(entry, change)
            if same_state(after, entry):
                raise Unchanged(_unchanged(name, kind, entry, _withdrawn(session, entry)))
            connection = session.connection()
            at = driver.stored_time(connection, datetime.fromisoformat(change.at))
            self.dialect.insert(connection, CHANGE_COLUMNS, [change_values(change, entry.id, at)])
            update_entries(connection, [after])
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
                EntryRow.value_key == value_key(value),
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
                " c.at, e.signal, e.value, c.stability FROM list_changes c JOIN list_entries e"
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
                    yield change_of(list_id, row)

    def versions(self) -> dict[int, tuple[str, int]]:
        """Each list's name and version, by id: one small query, for a follower to tell how
        far behind it is."""
        with self._session() as session:
            rows = session.execute(select(HashListRow.id, HashListRow.name, HashListRow.version))
            return {int(ident): (str(name), int(version)) for ident, name, version in rows}

    def history_mark(self, list_id: int, version: int) -> str | None:
        """What tells list ``list_id``'s history up to ``version`` in this database from that
        of a list in another database, or of this one before a restore that then diverged: a
        digest of when the list was made (to the microsecond) and of the change at ``version``
        (its entry, kind, value and time), times in UTC whatever the session's time zone. None
        when the database holds no such list or change."""
        with self._session() as session:
            made = session.scalar(select(HashListRow.created_at).where(HashListRow.id == list_id))
            if made is None:
                return None
            parts = [utc(made).isoformat(timespec="microseconds"), str(version)]
            if version:
                change = session.execute(
                    select(ChangeRow.entry_id, ChangeRow.kind, EntryRow.value, ChangeRow.at)
                    .join(EntryRow, EntryRow.id == ChangeRow.entry_id)
                    .where(ChangeRow.list_id == list_id, ChangeRow.version == version)
                ).one_or_none()
                if change is None:
                    return None
                entry_id, kind, value, at = change
                parts += [str(entry_id), str(kind), str(value), utc(at).isoformat()]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        """The list and its entries now (in ``statuses``, default all), by signal and value.

        Both are read in one transaction, so the entries are exactly those of the list's
        version returned.
        """
        session = self._session()
        try:
            self.dialect.read_snapshot(session.connection())
            row = self._row(session, name)
            hash_list = hash_list_of(row)
        except Exception:
            session.close()
            raise
        wanted = [s.value for s in statuses] if statuses is not None else None

        def rows() -> Iterator[Entry]:
            try:
                connection = session.connection()
                marker = driver.marker(connection)
                sql = f"SELECT {ENTRY_NAMES} FROM list_entries WHERE list_id = {marker}"
                if wanted is not None:
                    sql += f" AND status IN ({', '.join(marker for _ in wanted)})"
                sql += " ORDER BY signal, value_key"  # the index's order: no sort
                parameters = (hash_list.id, *(wanted or ()))
                # Closed before the session, should the reader stop early.
                with closing(self.dialect.batches(connection, sql, parameters)) as batches:
                    entries = (entry for batch in batches for entry in map(entry_of, batch))
                    yield from _by_value(entries)
            finally:
                session.close()

        return hash_list, rows()

    def unstable(self, name: str) -> int:
        """The number of the list's active entries measured as too unstable to match (a
        stability below their signal's ``min_stability``: ``Entry.matchable`` leaves them
        out). Raises ListNotFound."""
        floors = [(signal.name, signal.min_stability) for signal in registry.listable()
                  if signal.min_stability is not None]  # fmt: skip
        with self._session() as session:
            list_id = self._row(session, name).id
            count = 0
            for signal, floor in floors:
                counted = (
                    select(func.count())
                    .select_from(EntryRow)
                    .where(
                        EntryRow.list_id == list_id,
                        EntryRow.signal == signal,
                        EntryRow.status == EntryStatus.ACTIVE.value,
                        EntryRow.stability < floor,
                    )
                )
                count += session.scalar(counted) or 0
            return count

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _joining(self, connection: Connection) -> Session:
        """A session in ``connection``'s transaction: its commit leaves the transaction to
        the caller; a failure rolls the caller's transaction back."""
        return Session(connection, expire_on_commit=False,
                       join_transaction_mode="rollback_only")  # fmt: skip

    def _row(self, session: Session, name: str, lock: bool = False) -> HashListRow:
        """The list's row; with ``lock``, locked until the transaction ends
        (``database.for_update``), so ids and versions it hands out cannot collide with another
        writer's."""
        where = HashListRow.name == name
        query = select(HashListRow).where(where)
        if lock:
            query = for_update(session.connection(), query, HashListRow.version, where)
        row = session.scalars(query).one_or_none()
        if row is None:
            raise ListNotFound(f"no list named {name!r}")
        return row


def _held(session: Session, row: HashListRow, what: str, *where: Any) -> Entry:
    """The list's one entry that ``where`` picks. Raises ListError if there is none."""
    found = session.execute(
        select(*ENTRY_FIELDS).where(EntryRow.list_id == row.id, *where)
    ).one_or_none()
    if found is None:
        raise EntryNotFound(f"list {row.name} holds no {what}")
    return entry_of(found)


def _withdrawn(session: Session, entry: Entry) -> bool:
    """Whether ``entry`` is deleted because every source that submitted it withdrew it (its
    last change a deletion naming the sources that left, as a withdrawal writes it)."""
    if entry.status is not EntryStatus.DELETED:
        return False
    last = session.execute(
        select(ChangeRow.kind, ChangeRow.provenance)
        .where(ChangeRow.list_id == entry.list_id, ChangeRow.entry_id == entry.id)
        .order_by(ChangeRow.version.desc())
        .limit(1)
    ).one_or_none()
    return last is not None and last.kind == ChangeKind.DELETE.value and bool(last.provenance)


def _unchanged(name: str, kind: ChangeKind, entry: Entry, withdrawn: bool = False) -> str:
    """Why ``kind`` would change nothing of ``entry`` (``withdrawn``: deleted by its sources'
    withdrawal)."""
    held = f"list {name}: {entry.signal} entry {entry.value}"
    if kind is not ChangeKind.REINSTATE:
        return f"{held} is already {entry.status}"
    if withdrawn:
        return (
            f"{held} cannot be reinstated: every source that submitted it withdrew it (a "
            "withdrawal holds; only a new submission of the value brings it back)"
        )
    if entry.status is EntryStatus.DELETED:
        return (
            f"{held} is deleted (withdrawn), not contested or delisted: only those can be "
            "reinstated; a new submission of the value brings it back"
        )
    return f"{held} is {entry.status}: only a contested or delisted entry can be reinstated"


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


def _update(
    session: Session,
    row: HashListRow,
    policy: ListPolicy | None,
    legal_basis: str | None,
    jurisdictions: Sequence[str] | None,
    actor: str,
) -> None:
    """Set what is given on the list's row, with an audit event holding the old and new values
    when anything changed."""
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
        audit.append(session.connection(), actor, "list.update", row.name, details)


def _valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def _by_value(entries: Iterator[Entry]) -> Iterator[Entry]:
    """``entries`` in (signal, value key) order, put in (signal, value) order: a signal whose
    values are their own keys (every hash of hex digits) streams as it is read; one whose
    values can be longer (vPDQ, keyed by a digest) is sorted in memory, a signal at a time."""
    for signal, group in itertools.groupby(entries, key=lambda entry: entry.signal):
        if _keyed_by_value(signal):
            yield from group
        else:
            yield from sorted(group, key=lambda entry: entry.value)


def _keyed_by_value(signal: str) -> bool:
    try:
        digits = registry.get(signal).hex_digits
    except registry.UnknownSignal:
        return False
    return digits is not None and digits <= KEY_LENGTH
