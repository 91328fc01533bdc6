"""StopNCII hash records (the FetchHashes API's JSON), victim-submitted hashes of intimate images.

Accepted: a FetchHashes page ``{"hashRecords": [...], ...}``, a JSON array of records, or JSON
Lines with one record (or one page) per line, so exports of any size stream in bounded memory.
A record is ``{"signalType", "hashValue", "hashStatus", "lastModtimestamp", "caseNumbers", ...}``;
records are snapshots, applied in file order (the API's order).

``hashStatus`` Withdrawn or Deleted is a tombstone: the victim withdrew, so the hash must stop
matching everywhere (HMA's importer compares the wrong field here and keeps such hashes). Active
and Received are submissions. A status hashguard does not know is a tombstone when every case
the record names is Withdrawn or Deleted, and otherwise never activates the hash (fail closed);
such records, and signal types hashguard cannot hold (VideoTMK, Text, URL), are counted in
``skipped``. Case numbers are not stored: the list needs the hash, not who the victim's case is.
``record_of`` reads one record, so the StopNCII exchange (``hashguard.exchanges.stopncii``)
parses a fetched page in memory and sets a bad record aside instead of failing the page.

Export writes JSON Lines records of the same shape, for another StopNCII-aware system.
"""

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final, TextIO

from hashguard.lists.formats import ListFormatError
from hashguard.lists.model import ChangeKind, Entry, EntryStatus, Provenance, Source
from hashguard.lists.records import InvalidRecord, Record, Submission, Tombstone, canonical

SIGNALS: Final = {"ImagePDQ": "pdq", "VideoMD5": "md5"}
_LIVE: Final = {"Active", "Received"}
_WITHDRAWN: Final = {"Withdrawn", "Deleted"}
_SOURCE: Final = Provenance("StopNCII", "", (Source("StopNCII"),))


def read(path: Path, skipped: Counter[str] | None = None) -> Iterator[Record]:
    """Submissions and tombstones from a StopNCII file (streamed). Raises ListFormatError
    naming the line (JSON Lines) or the record number (a page or array)."""
    path = Path(path)
    skipped = skipped if skipped is not None else Counter()
    try:
        with open(path, encoding="utf-8-sig") as file:
            first = file.read(1)
            while first and first.isspace():
                first = file.read(1)
            file.seek(0)
            if first in ("{", "[") and not _json_lines(path):
                try:
                    document = json.load(file)
                except (ValueError, RecursionError) as error:
                    raise ListFormatError(path, None, f"not JSON ({error})") from None
                for number, record in enumerate(_records(path, None, document), start=1):
                    yield from _record(path, f"record {number}", record, skipped)
                return
            for number, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                except (ValueError, RecursionError) as error:
                    raise ListFormatError(path, number, f"not JSON ({error})") from None
                for record in _records(path, number, document):
                    yield from _record(path, f"line {number}", record, skipped)
    except UnicodeDecodeError:
        raise ListFormatError(path, None, "not UTF-8 text") from None
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None


def _json_lines(path: Path) -> bool:
    """Whether the file holds one JSON value per line (several non-blank lines that parse)."""
    with open(path, encoding="utf-8-sig") as file:
        values = 0
        for line in file:
            if line.strip():
                try:
                    json.loads(line)
                except (ValueError, RecursionError):
                    return False
                values += 1
                if values > 1:
                    return True
    return False


def _records(path: Path, line: int | None, document: Any) -> list[Any]:
    if isinstance(document, dict) and "hashRecords" in document:
        records = document["hashRecords"]
        if not isinstance(records, list):
            raise ListFormatError(path, line, "hashRecords is not a list")
        return records
    if isinstance(document, list):
        return document
    return [document]


def _record(path: Path, where: str, record: Any, skipped: Counter[str]) -> Iterator[Record]:
    try:
        read = record_of(record, where, skipped)
    except InvalidRecord as error:
        raise ListFormatError(path, None, str(error)) from None
    if read is not None:
        yield read


def record_of(record: Any, where: str, skipped: Counter[str]) -> Record | None:
    """The list record one StopNCII hash record makes: a Submission (Active, Received), a
    Tombstone (Withdrawn, Deleted; or a status hashguard does not know whose every case is
    withdrawn or deleted), or None when it is counted in ``skipped`` instead (a signal type
    lists cannot hold; a status that must not activate a hash). Raises InvalidRecord, its
    message prefixed with ``where``, for a record that is not one."""
    if not isinstance(record, dict):
        raise InvalidRecord(f"{where}: expected a hash record object")
    try:
        signal_type, value, status = (
            record["signalType"], record["hashValue"], record["hashStatus"]
        )  # fmt: skip
    except KeyError as error:
        raise InvalidRecord(f"{where}: the record lacks {error.args[0]!r}") from None
    for name, field in (("signalType", signal_type), ("hashStatus", status)):
        if not isinstance(field, str):
            raise InvalidRecord(f"{where}: {name} is {_shown(field)}, expected a string")
    signal = SIGNALS.get(signal_type)
    if signal is None:
        skipped[f"{signal_type[:40]} records (not supported)"] += 1
        return None
    value = canonical(signal, str(value), where)
    if status in _WITHDRAWN or (status not in _LIVE and _all_withdrawn(record)):
        shown = status if status in _WITHDRAWN else "withdrawn (every case)"
        return Tombstone(
            signal, value, ChangeKind.DELETE, f"StopNCII: {shown.lower()} by the victim"
        )
    if status in _LIVE:
        return Submission(signal, value, frozenset(), _SOURCE)
    skipped[f"records of status {status[:40]!r} (not activated)"] += 1
    return None


def _all_withdrawn(record: dict[str, Any]) -> bool:
    """Whether the record names cases and every one of them is withdrawn or deleted (what a
    status hashguard does not know still tells)."""
    cases = record.get("caseNumbers")
    return (
        isinstance(cases, dict)
        and bool(cases)
        and all(isinstance(s, str) and s in _WITHDRAWN for s in cases.values())
    )


def _shown(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def write(entries: Iterable[Entry], out: TextIO, withdrawn: bool = False) -> tuple[int, int]:
    """``entries`` as StopNCII hash records, JSON Lines: PDQ as ImagePDQ, MD5 as VideoMD5; an
    entry that is not active as Deleted, or, a deleted entry of a victim list (``withdrawn``:
    the person shown withdrew it), as Withdrawn. Returns (written, left out: other signals)."""
    types = {signal: name for name, signal in SIGNALS.items()}
    written = left_out = 0
    for entry in entries:
        signal_type = types.get(entry.signal)
        if signal_type is None:
            left_out += 1
            continue
        status = "Active" if entry.status is EntryStatus.ACTIVE else "Deleted"
        if withdrawn and entry.status is EntryStatus.DELETED:
            status = "Withdrawn"
        record = {"signalType": signal_type, "hashValue": entry.value, "hashStatus": status}
        out.write(json.dumps(record) + "\n")
        written += 1
    return written, left_out
