"""Signed list snapshots: the lists a Matcher loads, written once, loaded by many replicas.

A snapshot holds lists (their id, name, description, policy and version) and every entry of
each at that version, whatever its status (a Matcher applies later changes to them). It is an
index file (``index/fileformat.py``: JSON header, 64-byte aligned arrays, SHA-256) of kind
``list-snapshot`` followed by the owner's Ed25519 signature of that SHA-256, so the file and
its signature are published together by one rename. A replica reads the file once into memory,
checks the signature and the SHA-256 over those bytes and decodes the entries from them
(one decode per array) instead of reading them from the database, then follows the change logs
from the snapshot's versions (``SnapshotSource``), for each list whose history in the database
is the one the snapshot was made from. docs/snapshot-format.md describes the layout.
"""

import json
import logging
import os
import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

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
    ids: list[int] = []
    versions: list[int] = []
    signal_of: list[int] = []
    status_of: list[int] = []
    stability_of: list[int] = []
    described: list[int] = []
    values: list[str] = []
    status_index = {status: n for n, status in enumerate(_STATUSES)}
    for name in names:
        hash_list, entries = store.entries(name)
        count = 0
        for entry in entries:
            if "\n" in entry.value:  # canonical values are one line: never the case
                raise SnapshotError(f"{path}: entry {entry.id}'s value holds a line break")
            ids.append(entry.id)
            versions.append(entry.version)
            signal_of.append(signals.setdefault(entry.signal, len(signals)))
            status_of.append(status_index[entry.status])
            stability_of.append(_NO_STABILITY if entry.stability is None else entry.stability)
            described.append(descriptions.setdefault((entry.labels, entry.provenance),
                                                     len(descriptions)))  # fmt: skip
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
    lines = (json.dumps([sorted(labels), provenance.as_json()], separators=(",", ":"))
             for labels, provenance in descriptions)  # fmt: skip
    arrays = {
        "entry": np.array(ids, "<i8"),
        "version": np.array(versions, "<i8"),
        "signal": np.array(signal_of, "|u1"),
        "status": np.array(status_of, "|u1"),
        "stability": np.array(stability_of, "|u1"),
        "described": np.array(described, "<u4"),
        "values": np.frombuffer("\n".join(values).encode(), "|u1"),
        "descriptions": np.frombuffer("\n".join(lines).encode(), "|u1"),
    }
    with durable.writing(path, mode=0o600) as file:
        digest = fileformat.write_into(file, KIND, meta, arrays)
        file.write(_SIGNATURE.pack(SIGNATURE, bytes.fromhex(keys.public_hex(key)),
                                   bytes.fromhex(keys.sign(key, SIGNED + digest))))  # fmt: skip
    return len(ids)


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
    _values: tuple[str, ...]
    _descriptions: tuple[str, ...]

    def entries(self, hash_list: HashList) -> Iterator[Entry]:
        """The entries of one of the snapshot's lists (by id) at its version. Raises
        SnapshotError for a description that cannot be read (signed: a broken writer's)."""
        try:
            yield from self._entries(hash_list)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise SnapshotError(f"{self.path}: malformed entry description ({error})") from None

    def _entries(self, hash_list: HashList) -> Iterator[Entry]:
        number = next(n for n, held in enumerate(self.lists) if held.id == hash_list.id)
        start, end = self._starts[number], self._starts[number + 1]
        a = self._arrays
        signals = self._signals
        described: dict[int, tuple[frozenset[str], Provenance]] = {}
        columns = zip(
            a["entry"][start:end].tolist(), a["signal"][start:end].tolist(),
            self._values[start:end], a["described"][start:end].tolist(),
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
    """The snapshot at ``path``, read once into memory: its signature checked against
    ``public_key`` (hex) and its SHA-256 against those same bytes before anything else in them
    is read (so a file replaced or rewritten meanwhile cannot slip in). Raises SnapshotError
    naming the file and the problem."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            buffer = bytearray(os.fstat(file.fileno()).st_size)
            file.readinto(buffer)
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
    try:  # the SHA-256 the signature covers is checked over these very bytes
        meta, arrays = fileformat.parse(path, body, KIND)
    except fileformat.IndexFileError as error:
        raise SnapshotError(str(error)) from None
    try:
        return _checked(path, meta, arrays)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise SnapshotError(f"{path}: malformed snapshot ({error})") from None


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
    values = tuple(arrays["values"].tobytes().decode().split("\n")) if count else ()
    descriptions = tuple(arrays["descriptions"].tobytes().decode().split("\n"))
    if len(values) != count:
        raise SnapshotError(f"{path}: {len(values)} values for {count} entries")
    if count and (
        int(arrays["signal"].max()) >= len(signals)
        or int(arrays["status"].max()) >= len(_STATUSES)
        or int(arrays["described"].max()) >= len(descriptions)
    ):
        raise SnapshotError(f"{path}: an entry refers to a signal, status or label not held")
    return Snapshot(path, str(meta["made"]), lists, histories, tuple(starts), signals, arrays,
                    values, descriptions)  # fmt: skip


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
