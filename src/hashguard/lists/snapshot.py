"""Signed list snapshots: the lists a Matcher loads, written once, loaded by many replicas.

A snapshot holds lists (their id, name, description, policy and version) and every entry of
each at that version, whatever its status (a Matcher applies later changes to them). It is an
index file (``index/fileformat.py``: JSON header, 64-byte aligned arrays, SHA-256) of kind
``list-snapshot`` followed by the owner's Ed25519 signature of that SHA-256, so the file and
its signature are published together by one rename. The writer spools each array aside (a
temporary file) as the entries come, holding no list of them. A replica reads the file once into
memory, the SHA-256 computed as it reads, checks the signature of that SHA-256, and decodes each
list's entries from those bytes when the list is loaded (not before, and never for a list left
unused) instead of reading them from the database, then follows the change logs from the
snapshot's versions (``SnapshotSource``), for each list whose history in the database is the one
the snapshot was made from. docs/snapshot-format.md describes the layout.
"""

import hashlib
import io
import itertools
import json
import logging
import mmap
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard import durable
from hashguard.errors import Unverified
from hashguard.index import fileformat
from hashguard.lists.model import (
    Category,
    Change,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    new_entry,
)
from hashguard.transparency import keys

log = logging.getLogger("hashguard.lists")

KIND: Final = "list-snapshot"
FORMAT: Final = 2  # the layout of the header's meta and the arrays (the file's own version aside)
SIGNED: Final = b"hashguard list snapshot\n"  # what is signed: this, then the file's SHA-256
SIGNATURE: Final = b"HGSNSIG\n"  # the signature block's magic: then the key, the signature
_SIGNATURE: Final = struct.Struct("<8s32s64s")
_NO_STABILITY: Final = 255  # stabilities are 0-100
_STATUSES: Final = tuple(EntryStatus)
_CHUNK: Final = 1 << 22  # bytes read, or values scanned, at a time
_SPOOLED: Final = 1 << 16  # entries a spooled array holds in memory before writing them aside
_ARRAYS: Final = {"entry": "<i8", "version": "<i8", "signal": "|u1", "status": "|u1",
                  "stability": "|u1", "described": "<u4", "values": "|u1",
                  "descriptions": "|u1"}  # fmt: skip


class SnapshotError(Unverified):
    """A snapshot that cannot be written, or read and trusted: the message names the file and
    what is wrong."""


class StoredLists(Protocol):
    """What a snapshot is made from, checked against and caught up from: the database's lists."""

    def lists(self) -> list[HashList]: ...

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]: ...

    def changes_since(
        self, name: str, version: int, limit: int | None = None
    ) -> Iterator[Change]: ...

    def history_mark(self, list_id: int, version: int) -> str | None: ...


def write(path: Path, store: StoredLists, names: Iterable[str], key: Ed25519PrivateKey) -> int:
    """Write the snapshot of the lists ``names`` of ``store`` (each with its entries at its
    version, and the mark of its history there) to ``path``, signed with ``key`` (aside, then
    renamed: a reader sees the old file or the new one, whole and signed); the number of
    entries. Raises SnapshotError for a value that cannot be held (a line break in it), OSError
    for a file that cannot be written."""
    path = Path(path)
    if path.is_dir():
        raise SnapshotError(f"{path}: is a directory, not a snapshot file")
    if not path.parent.is_dir():
        raise SnapshotError(f"{path}: no directory {path.parent} to write it in")
    held: list[dict[str, Any]] = []
    signals: dict[str, int] = {}
    descriptions: dict[tuple[frozenset[str], Provenance], int] = {}
    numbers = ("entry", "version", "signal", "status", "stability", "described")
    columns = {name: _Spool(path.parent, _ARRAYS[name]) for name in numbers}
    values = _Lines(path.parent)
    status_index = {status: n for n, status in enumerate(_STATUSES)}
    try:
        for name in names:
            hash_list, entries = store.entries(name)
            count = 0
            for entry in entries:
                if "\n" in entry.value:  # canonical values are one line: never the case
                    raise SnapshotError(f"{path}: entry {entry.id}'s value holds a line break")
                columns["entry"].append(entry.id)
                columns["version"].append(entry.version)
                columns["signal"].append(signals.setdefault(entry.signal, len(signals)))
                columns["status"].append(status_index[entry.status])
                columns["stability"].append(
                    _NO_STABILITY if entry.stability is None else entry.stability
                )
                columns["described"].append(descriptions.setdefault(
                    (entry.labels, entry.provenance), len(descriptions)))  # fmt: skip
                values.append(entry.value)
                count += 1
            history = store.history_mark(hash_list.id, hash_list.version)
            held.append({**_list_json(hash_list), "entries": count, "history": history})
        if len(signals) > 255:
            raise SnapshotError(f"{path}: more than 255 signals")
        meta = {
            "format": FORMAT,
            "made": datetime.now(UTC).isoformat(timespec="seconds"),
            "lists": held,
            "signals": list(signals),
            "statuses": [status.value for status in _STATUSES],
        }
        lines = "\n".join(json.dumps([sorted(labels), provenance.as_json()], separators=(",", ":"))
                          for labels, provenance in descriptions)  # fmt: skip
        arrays = {name: column.array() for name, column in columns.items()}
        arrays["values"] = values.array()
        arrays["descriptions"] = np.frombuffer(lines.encode(), "|u1")
        with durable.writing(path, mode=0o600) as file:
            digest = fileformat.write_into(file, KIND, meta, arrays)
            file.write(_SIGNATURE.pack(SIGNATURE, bytes.fromhex(keys.public_hex(key)),
                                       bytes.fromhex(keys.sign(key, SIGNED + digest))))  # fmt: skip
        return sum(int(held_list["entries"]) for held_list in held)
    finally:
        for spool in (*columns.values(), values):
            spool.close()


class _Spool:
    """One array of a snapshot being written, a number per entry: kept aside in a temporary
    file (in the snapshot's directory, unnamed) a chunk at a time, then mapped to be written."""

    def __init__(self, directory: Path, dtype: str) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (close())
        self._dtype = dtype
        self._pending: list[int] = []

    def append(self, number: int) -> None:
        self._pending.append(number)
        if len(self._pending) >= _SPOOLED:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._file.write(np.array(self._pending, self._dtype).tobytes())
            self._pending.clear()

    def array(self) -> np.ndarray:
        """Every number appended, mapped from the file (read-only)."""
        self._flush()
        self._file.flush()
        size = self._file.seek(0, os.SEEK_END)
        if not size:
            return np.empty(0, self._dtype)
        return np.frombuffer(mmap.mmap(self._file.fileno(), size, prot=mmap.PROT_READ),
                             self._dtype)  # fmt: skip

    def close(self) -> None:
        self._file.close()  # a mapping made of it stays valid until let go


class _Lines(_Spool):
    """The values array being written: each value a line, "\\n" between them."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, "|u1")
        self._lines: list[str] = []
        self._started = False

    def append(self, line: str) -> None:  # type: ignore[override]
        self._lines.append(line)
        if len(self._lines) >= _SPOOLED:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            text = "\n".join(self._lines).encode()
            self._file.write(b"\n" + text if self._started else text)
            self._started = True
            self._lines.clear()


def _list_json(hash_list: HashList) -> dict[str, Any]:
    return {"id": hash_list.id, "name": hash_list.name, "owner": hash_list.owner,
            "category": hash_list.category.value, "jurisdictions": list(hash_list.jurisdictions),
            "legal_basis": hash_list.legal_basis, "policy": hash_list.policy.as_json(),
            "version": hash_list.version}  # fmt: skip


def _list_of(data: Mapping[str, Any]) -> HashList:
    return HashList(int(data["id"]), str(data["name"]), str(data["owner"]),
                    Category(data["category"]), tuple(str(j) for j in data["jurisdictions"]),
                    str(data["legal_basis"]), ListPolicy.from_json(data["policy"]),
                    int(data["version"]))  # fmt: skip


@dataclass(frozen=True)
class Snapshot:
    """A verified snapshot: its lists, and each list's entries read on demand."""

    path: Path
    made: str  # ISO 8601 UTC
    lists: tuple[HashList, ...]
    histories: tuple[str | None, ...]  # each list's history mark in the database it came from
    _starts: tuple[int, ...]  # where each list's entries begin in the arrays; the total last
    _signals: tuple[str, ...]
    _arrays: Mapping[str, np.ndarray]
    _spans: tuple[tuple[int, int], ...]  # where each list's values lie in the values array
    _descriptions: tuple[str, ...]

    def entries(self, hash_list: HashList) -> Iterator[Entry]:
        """The entries of one of the snapshot's lists (by id) at its version, its values
        decoded now. Raises SnapshotError for a value or description that cannot be read
        (signed: a broken writer's)."""
        try:
            yield from self._entries(hash_list)
        # and UnicodeDecodeError; AttributeError: provenance that is not an object
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            raise SnapshotError(f"{self.path}: malformed entry ({error})") from None

    def _entries(self, hash_list: HashList) -> Iterator[Entry]:
        number = next(n for n, held in enumerate(self.lists) if held.id == hash_list.id)
        start, end = self._starts[number], self._starts[number + 1]
        a = self._arrays
        signals = self._signals
        described: dict[int, tuple[frozenset[str], Provenance]] = {}
        first, last = self._spans[number]  # decoded now, for this list only
        values = a["values"][first:last].tobytes().decode().split("\n") if end > start else []
        if len(values) != end - start:
            raise ValueError(f"{len(values)} values for {end - start} entries")
        columns = zip(
            a["entry"][start:end].tolist(), a["signal"][start:end].tolist(),
            values, a["described"][start:end].tolist(),
            a["status"][start:end].tolist(), a["version"][start:end].tolist(),
            a["stability"][start:end].tolist(), strict=True,
        )  # fmt: skip
        for ident, signal, value, description, status, version, stability in columns:
            labels_provenance = described.get(description)
            if labels_provenance is None:
                labels, provenance = json.loads(self._descriptions[description])
                labels_provenance = (frozenset(labels), Provenance.from_json(provenance))
                described[description] = labels_provenance
            yield new_entry(
                ident, hash_list.id, signals[signal], value, labels_provenance[0],
                labels_provenance[1], _STATUSES[status], version,
                None if stability == _NO_STABILITY else stability,
            )  # fmt: skip


def read(path: Path, public_key: str) -> Snapshot:
    """The snapshot at ``path``, read once into memory (its SHA-256 computed as it is read):
    its signature checked against ``public_key`` (hex) and its SHA-256 against those same bytes
    before anything else in them is read (so a file replaced or rewritten meanwhile cannot slip
    in). Entries are decoded a list at a time, when loaded. Raises SnapshotError naming the
    file and the problem."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            buffer = bytearray(os.fstat(file.fileno()).st_size)
            computed = _read_hashing(file, buffer)
    except OSError as error:
        raise SnapshotError(f"{path}: cannot read: {error.strerror}") from None
    if len(buffer) < _SIGNATURE.size or buffer[-_SIGNATURE.size :][:8] != SIGNATURE:
        raise SnapshotError(f"{path}: not a signed list snapshot (no signature at its end: "
                            "written by an older hashguard? write it again)")  # fmt: skip
    _, signer_bytes, signature_bytes = _SIGNATURE.unpack_from(buffer, len(buffer) - _SIGNATURE.size)
    signer = signer_bytes.hex()
    body = memoryview(buffer)[: -_SIGNATURE.size]
    digest = bytes(body[-32:])
    if signer != public_key:
        raise SnapshotError(f"{path}: signed by key {signer[:16]}..., not the key given")
    if not keys.verify(public_key, SIGNED + digest, signature_bytes.hex()):
        raise SnapshotError(f"{path}: the signature does not verify (the file was changed?)")
    if computed != digest:
        raise SnapshotError(f"{path}: checksum mismatch: the file is corrupt or was modified")
    try:  # the SHA-256 the signature covers was computed over these very bytes
        meta, arrays = fileformat.parse(path, body, KIND, verify=False)
    except fileformat.IndexFileError as error:
        raise SnapshotError(str(error)) from None
    try:
        return _checked(path, meta, arrays)
    # AttributeError: an object where a policy or provenance is expected (ListPolicy.from_json);
    # OverflowError: a number such as 10**400 where a float is expected
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, AttributeError,
            OverflowError) as error:  # fmt: skip
        raise SnapshotError(f"{path}: malformed snapshot ({error})") from None


def _read_hashing(file: io.BufferedReader, buffer: bytearray) -> bytes:
    """Fill ``buffer`` from ``file``, a chunk at a time; the SHA-256 of what precedes the
    container's own (its last 32 bytes before the signature block), computed as it is read."""
    view = memoryview(buffer)
    hashed = max(0, len(buffer) - _SIGNATURE.size - 32)
    digest = hashlib.sha256()
    position = 0
    while position < len(buffer):
        read = file.readinto(view[position : position + _CHUNK])
        if not read:
            raise OSError(0, "the file shrank while it was read")
        digest.update(view[position : min(position + read, hashed)])
        position += read
    return digest.digest()


def _checked(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Snapshot:
    """The snapshot, once its meta and arrays agree; raises SnapshotError (or KeyError,
    TypeError, ValueError for a malformed header: signed, so made by a broken writer)."""
    if meta.get("format") != FORMAT:
        raise SnapshotError(f"{path}: snapshot format {meta.get('format')}; this reads {FORMAT}")
    if meta["statuses"] != [status.value for status in _STATUSES]:
        raise SnapshotError(f"{path}: entry statuses {meta['statuses']} not known here")
    for name, dtype in _ARRAYS.items():
        if name not in arrays or arrays[name].dtype.str != dtype or arrays[name].ndim != 1:
            raise SnapshotError(f"{path}: array {name!r} missing or not of type {dtype}")
    lists = tuple(_list_of(held) for held in meta["lists"])
    histories = tuple(None if held["history"] is None else str(held["history"])
                      for held in meta["lists"])  # fmt: skip
    starts = [0]
    for held in meta["lists"]:
        starts.append(starts[-1] + int(held["entries"]))
    count = starts[-1]
    signals = tuple(str(s) for s in meta["signals"])
    columns = ("entry", "version", "signal", "status", "stability", "described")
    if any(len(arrays[name]) != count for name in columns):
        raise SnapshotError(f"{path}: the arrays do not hold {count} entries")
    spans = _spans(path, arrays["values"], starts)
    descriptions = tuple(arrays["descriptions"].tobytes().decode().split("\n"))
    if count and (
        int(arrays["signal"].max()) >= len(signals)
        or int(arrays["status"].max()) >= len(_STATUSES)
        or int(arrays["described"].max()) >= len(descriptions)
    ):
        raise SnapshotError(f"{path}: an entry refers to a signal, status or label not held")
    return Snapshot(path, str(meta["made"]), lists, histories, tuple(starts), signals, arrays,
                    spans, descriptions)  # fmt: skip


def _spans(path: Path, values: np.ndarray, starts: list[int]) -> tuple[tuple[int, int], ...]:
    """Where each list's values (one line each, ``starts`` giving each list's first entry and
    the total last) lie in ``values``, found a chunk at a time without decoding any. Raises
    SnapshotError unless it holds as many lines as entries."""
    count = starts[-1]
    wanted = sorted({start - 1 for start in starts if 0 < start < count})  # breaks before lists
    breaks: dict[int, int] = {}  # a line break's number: its offset
    seen = 0
    for offset in range(0, len(values), _CHUNK):
        found = np.flatnonzero(values[offset : offset + _CHUNK] == ord("\n"))
        for number in wanted[len(breaks) :]:
            if number >= seen + len(found):
                break
            breaks[number] = offset + int(found[number - seen])
        seen += len(found)
    if (count and seen != count - 1) or (not count and len(values)):
        raise SnapshotError(f"{path}: {seen + 1 if len(values) else 0} values for {count} entries")
    spans = []
    for start, end in itertools.pairwise(starts):
        if end == start:
            spans.append((0, 0))
            continue
        first = 0 if start == 0 else breaks[start - 1] + 1
        spans.append((first, len(values) if end == count else breaks[end - 1]))
    return tuple(spans)


class SnapshotSource:
    """A Matcher's ListSource that loads each list once from the snapshot where it fits (the
    database still holds the list under its id, at the snapshot's version or later, with the
    same history up to that version: made at the same moment, the same change at that
    version), else from ``store``; changes always come from ``store``, so a Matcher catches up
    from the snapshot's versions. ``used`` names the lists taken from the snapshot, ``unused`` the
    snapshot's others with the reason."""

    def __init__(self, snapshot: Snapshot, store: StoredLists) -> None:
        self.store = store
        stored = {hash_list.id: hash_list for hash_list in store.lists()}
        self.unused: dict[str, str] = {}
        self._parts: dict[str, HashList] = {}  # by the name the database has now
        self._snapshot: Snapshot | None = snapshot
        for held, history in zip(snapshot.lists, snapshot.histories, strict=True):
            now = stored.get(held.id)
            if now is None:
                self.unused[held.name] = f"list {held.id} is no longer in the database"
            elif held.version > now.version:
                self.unused[held.name] = (
                    f"the snapshot holds version {held.version}, ahead of the database's "
                    f"{now.version} (a database restored from an older backup?)"
                )
            elif history is None or store.history_mark(held.id, held.version) != history:
                self.unused[held.name] = (
                    f"the database's list {held.id} does not have the history the snapshot "
                    f"was made from up to version {held.version} (a snapshot of another "
                    "database, or of this one before a restore from a backup?)"
                )
            else:  # renamed since: loaded under its name now, described as it is at the end
                self._parts[now.name] = HashList(
                    held.id, now.name, held.owner, held.category, held.jurisdictions,
                    held.legal_basis, held.policy, held.version,
                )  # fmt: skip
        self.used = tuple(self._parts)

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        """The list from the snapshot the first time it is asked for (all statuses, as a
        Matcher asks), else from the store."""
        snapshot = self._snapshot
        hash_list = self._parts.pop(name, None) if statuses is None else None
        if hash_list is None or snapshot is None:
            return self.store.entries(name, statuses)
        if not self._parts:
            self._snapshot = None  # every list taken: let the arrays go once read
        return hash_list, snapshot.entries(hash_list)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Change]:
        return self.store.changes_since(name, version, limit)
