"""Lists, entries and changes as their rows store them, and back: JSON for labels, sources and
provenance, enum members as text, times in the form a change shows.

Imports and readers convert millions of rows, so the few label sets and provenances that repeat
are converted once each (cached), and entries are read as plain rows of ``ENTRY_FIELDS`` rather
than ORM objects.
"""

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Final

from hashguard.lists.model import (
    Category,
    Change,
    ChangeKind,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    Source,
    new_entry,
)
from hashguard.store.tables import EntryRow, HashListRow

# The tables bulk writes go to, with their columns in the order of the rows written.
ENTRY_COLUMNS: Final = (
    "list_entries",
    ("id", "list_id", "signal", "value", "value_key", "labels", "status", "submitted_by",
     "assessed_by", "sources", "version", "stability"),
)  # fmt: skip
CHANGE_COLUMNS: Final = (
    "list_changes",
    ("list_id", "version", "kind", "entry_id", "labels", "provenance", "reason", "actor", "at",
     "stability"),
)  # fmt: skip
REFERENCE_COLUMNS: Final = ("entry_references", ("list_id", "reference", "entry_id"))

# Entries are read as plain rows of these columns: building ORM objects for a million of them
# costs more than the query.
ENTRY_FIELDS: Final = (
    EntryRow.id, EntryRow.list_id, EntryRow.signal, EntryRow.value, EntryRow.labels,
    EntryRow.submitted_by, EntryRow.assessed_by, EntryRow.sources, EntryRow.status,
    EntryRow.version, EntryRow.stability,
)  # fmt: skip

ENTRY_NAMES: Final = ", ".join(column.name for column in ENTRY_FIELDS)

# Enum members by their stored text, looked up per row instead of through Enum.value.
TEXT: Final[dict[object, str]] = {member: member.value for member in (*ChangeKind, *EntryStatus)}

_STATUS: Final = {status.value: status for status in EntryStatus}


def hash_list_of(row: HashListRow) -> HashList:
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


def entry_of(row: Any) -> Entry:
    """An Entry from a row of ``ENTRY_FIELDS``."""
    (ident, list_id, signal, value, labels, submitted_by, assessed_by, sources, status, version,
     stability) = row  # fmt: skip
    return new_entry(
        ident,
        list_id,
        signal,
        value,
        _labels_from(labels),
        _provenance(submitted_by, assessed_by, sources),
        _STATUS[status],
        version,
        stability,
    )


KEY_LENGTH: Final = 128  # values up to this long are their own key


def value_key(value: str) -> str:
    """What identifies ``value`` (canonical) among its list's entries of one signal, short
    enough for any database's index: the value itself (every hash of hex digits), or for a
    longer one (a video's vPDQ runs to kilobytes) ``sha256:`` and the SHA-256 of its text."""
    if len(value) <= KEY_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def entry_values(entry: Entry) -> tuple[Any, ...]:
    """The row of ``entry`` in ``ENTRY_COLUMNS`` order, but its id."""
    return (
        entry.list_id,
        entry.signal,
        entry.value,
        value_key(entry.value),
        labels_json(entry.labels),
        TEXT[entry.status],
        entry.provenance.submitted_by,
        entry.provenance.assessed_by,
        sources_json(entry.provenance.sources),
        entry.version,
        entry.stability,
    )


def change_values(change: Change, entry_id: int, at: object) -> tuple[Any, ...]:
    """The row of ``change`` in ``CHANGE_COLUMNS`` order (``at`` as the driver takes it)."""
    return (
        change.list_id,
        change.version,
        TEXT[change.kind],
        entry_id,
        labels_json(change.labels) if change.labels is not None else None,
        provenance_json(change.provenance) if change.provenance else None,
        change.reason,
        change.actor,
        at,
        change.stability,
    )


def change_of(list_id: int, row: Any) -> Change:
    """A Change from a row of (version, kind, entry id, labels, provenance, reason, actor, at,
    signal, value, stability)."""
    version, kind, entry_id, labels, provenance, reason, actor, at, signal, value, stability = row
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
        stability,
    )


def now() -> str:
    """The time now as a change shows it (ISO 8601, UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


@lru_cache(maxsize=1024)
def _shown_time(at: object) -> str:
    """A stored time as a change shows it (ISO 8601, UTC, seconds): SQLite gives back the text
    SQLAlchemy wrote, PostgreSQL a datetime. The changes of one import share one time."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    assert isinstance(moment, datetime)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="seconds")


@lru_cache(maxsize=4096)
def _provenance(submitted_by: str, assessed_by: str, sources: str) -> Provenance:
    return Provenance(submitted_by, assessed_by, _sources_from(sources))


# json.dumps(..., ensure_ascii=False) builds an encoder per call: an exchange's entries each have
# a provenance of their own, so the caches below miss a million times a fetch.
_json: Final = json.JSONEncoder(ensure_ascii=False).encode
_string: Final = encode_basestring  # a str as _json writes it


# Imports repeat a few label sets and provenances millions of times: serialise each once.
@lru_cache(maxsize=4096)
def labels_json(labels: frozenset[str]) -> str:
    return _json(sorted(labels))


@lru_cache(maxsize=4096)
def _labels_from(text: str) -> frozenset[str]:
    return frozenset(json.loads(text))


@lru_cache(maxsize=4096)
def sources_json(sources: tuple[Source, ...]) -> str:
    # json.dumps([s.as_json() for s in sources]) exactly, without building the dictionaries
    return (
        "["
        + ", ".join(
            f'{{"organisation": {_string(s.organisation)}, "jurisdiction": '
            f'{_string(s.jurisdiction)}, "reference": {_string(s.reference)}}}'
            for s in sources
        )
        + "]"
    )


@lru_cache(maxsize=4096)
def _sources_from(text: str) -> tuple[Source, ...]:
    return tuple(Source.from_json(s) for s in json.loads(text))


@lru_cache(maxsize=4096)
def provenance_json(provenance: Provenance) -> str:
    # json.dumps(provenance.as_json()) exactly, its sources' JSON shared with sources_json
    return (
        f'{{"submitted_by": {_string(provenance.submitted_by)}, "assessed_by": '
        f'{_string(provenance.assessed_by)}, "sources": {sources_json(provenance.sources)}}}'
    )


@lru_cache(maxsize=4096)
def _provenance_from(text: str) -> Provenance:
    return Provenance.from_json(json.loads(text))
