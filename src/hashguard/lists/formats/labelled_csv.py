"""CSV with labels and provenance: hashguard's own exchange format, a header row and then one row
per entry and source.

Columns (header required; only ``signal`` and ``value`` must be present, in any order):

    signal         pdq | vpdq | md5 | sha1 | sha256 | canonical_sha256
    value          the hash in its text form (vPDQ: ThreatExchange's one-line JSON form)
    labels         labels separated by ";" (e.g. "A1;baseline")
    submitted_by   who submitted it to this list
    organisation   a source that holds it (empty: none)
    jurisdiction   the source's jurisdiction (ISO 3166 alpha-2, or INT)
    reference      the source's own reference (case, report or entry id)
    assessed_by    who assessed it
    status         active (default) | contested | delisted | deleted
    stability      for a value hashed from media, how little the hash moves under a 1 % resize
                   (0-100; empty: not measured); a list does not match a value below its
                   signal's minimum

A row whose status is not active is a tombstone: importing it contests, delists or deletes the
entry. An active row does not reinstate a contested or delisted entry (the owner's decision,
which only ``reinstate`` undoes); it revives a deleted one. An entry held by several sources
is written once per source; reading merges them.
"""

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO

from hashguard.lists.formats import ListFormatError, csv_rows
from hashguard.lists.model import ChangeKind, Entry, EntryStatus, Provenance, Source
from hashguard.lists.records import (
    InvalidRecord,
    Record,
    Submission,
    Tombstone,
    bounded,
    canonical,
)

COLUMNS: Final = (
    "signal",
    "value",
    "labels",
    "submitted_by",
    "organisation",
    "jurisdiction",
    "reference",
    "assessed_by",
    "status",
    "stability",
)
_TOMBSTONES: Final = {
    EntryStatus.CONTESTED.value: ChangeKind.CONTEST,
    EntryStatus.DELISTED.value: ChangeKind.DELIST,
    EntryStatus.DELETED.value: ChangeKind.DELETE,
}


def read(path: Path) -> Iterator[Record]:
    """The rows of a labelled CSV list as submissions and tombstones (streamed).

    Raises ListFormatError naming the line and what was wrong.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:
            rows = csv_rows(file)
            try:
                header = _header(path, next(rows, None))
                for row in rows:
                    yield _record(path, rows.line_num, header, row)
            except csv.Error as error:
                raise ListFormatError(path, rows.line_num, f"malformed CSV: {error}") from None
    except UnicodeDecodeError as error:
        raise ListFormatError(path, None, f"not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None


def write(entries: Iterable[Entry], out: TextIO) -> int:
    """Write ``entries`` (one row per source); the number of entries written."""
    rows = csv.writer(out, lineterminator="\n")
    rows.writerow(COLUMNS)
    count = 0
    for entry in entries:
        provenance = entry.provenance
        labels = ";".join(sorted(entry.labels))
        for source in provenance.sources or (Source(""),):
            rows.writerow(
                [
                    entry.signal,
                    entry.value,
                    labels,
                    provenance.submitted_by,
                    source.organisation,
                    source.jurisdiction,
                    source.reference,
                    provenance.assessed_by,
                    entry.status.value,
                    "" if entry.stability is None else str(entry.stability),
                ]
            )
        count += 1
    return count


def _header(path: Path, row: list[str] | None) -> dict[str, int]:
    if row is None:
        raise ListFormatError(path, 1, f"empty file; expected a header with {', '.join(COLUMNS)}")
    names = [name.strip().lower() for name in row]
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        shown = unknown[0] if len(unknown[0]) <= 40 else f"{unknown[0][:40]}..."
        raise ListFormatError(
            path, 1, f"unknown column {shown!r}; the columns are {', '.join(COLUMNS)}"
        )
    repeated = [name for i, name in enumerate(names) if name in names[:i]]
    if repeated:
        raise ListFormatError(path, 1, f"the column {repeated[0]!r} appears twice")
    missing = [name for name in ("signal", "value") if name not in names]
    if missing:
        raise ListFormatError(path, 1, f"the header lacks the {missing[0]!r} column")
    return {name: i for i, name in enumerate(names)}


def _record(path: Path, line: int, header: dict[str, int], row: list[str]) -> Record:
    record = _unchecked(path, line, header, row)
    try:
        return bounded(record)
    except InvalidRecord as error:
        raise ListFormatError(path, line, str(error)) from None


def _unchecked(path: Path, line: int, header: dict[str, int], row: list[str]) -> Record:
    if len(row) != len(header):
        raise ListFormatError(path, line, f"{len(row)} fields, the header has {len(header)}")

    def field(name: str) -> str:
        return row[header[name]].strip() if name in header else ""

    signal = field("signal").lower()
    try:
        value = canonical(signal, field("value"))
    except InvalidRecord as error:
        raise ListFormatError(path, line, str(error)) from None
    status = field("status").lower() or EntryStatus.ACTIVE.value
    if status in _TOMBSTONES:
        return Tombstone(signal, value, _TOMBSTONES[status], f"{path.name}:{line}")
    if status != EntryStatus.ACTIVE.value:
        raise ListFormatError(
            path, line, f"status {status[:40]!r}; expected active, contested, delisted or deleted"
        )
    organisation = field("organisation")
    stability = field("stability")
    if stability and not (stability.isascii() and stability.isdigit() and int(stability) <= 100):
        raise ListFormatError(
            path, line, f"stability {stability[:40]!r}; expected a whole number 0-100, or empty"
        )
    source = (Source(organisation, field("jurisdiction").upper(), field("reference")),)
    return Submission(
        signal,
        value,
        frozenset(label.strip() for label in field("labels").split(";") if label.strip()),
        Provenance(field("submitted_by"), field("assessed_by"), source if organisation else ()),
        stability=int(stability) if stability else None,
    )
