"""Signed list snapshots: the lists a Matcher loads, written once, loaded by many replicas.

A snapshot holds lists (their id, name, description, policy and version) and every entry of
each at that version, whatever its status (a Matcher applies later changes to them). It is an
index file (``index/fileformat.py``: JSON header, 64-byte aligned arrays, SHA-256) of kind
``list-snapshot``, with the owner's Ed25519 signature of that SHA-256 beside it in
``FILE.sig``. A replica reads the entries from it (a memory map, one decode per array) instead
of from the database, then follows the change logs from the snapshot's versions
(``SnapshotSource``). docs/snapshot-format.md describes the layout.
"""

import json
import logging
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
FORMAT: Final = 1  # the layout of the header's meta and the arrays (the file's own version aside)
SIGNED: Final = b"hashguard list snapshot\n"  # what is signed: this, then the file's SHA-256
_NO_STABILITY: Final = 255  # stabilities are 0-100
_STATUSES: Final = tuple(EntryStatus)
_ARRAYS: Final = {"entry": "<i8", "version": "<i8", "signal": "|u1", "status": "|u1",
                  "stability": "|u1", "described": "<u4", "values": "|u1",
                  "descriptions": "|u1"}  # fmt: skip


class SnapshotError(Unverified):
    """A snapshot that cannot be written, or read and trusted: the message names the file and
    what is wrong."""


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def write(
    path: Path, lists: Iterable[tuple[HashList, Iterable[Entry]]], key: Ed25519PrivateKey
) -> int:
    """Write the snapshot of ``lists`` (each with its entries at its version) to ``path``
    (aside, then renamed) and its signature to ``path.sig``; the number of entries. Raises
    SnapshotError for a value that cannot be held (a line break in it)."""
    path = Path(path)
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
    for hash_list, entries in lists:
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
        held.append({**_list_json(hash_list), "entries": count})
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
    fileformat.write(path, KIND, meta, arrays)
    with open(path, "rb") as written:  # the SHA-256 the file ends with
        written.seek(-32, 2)
        digest = written.read()
    signature = {"public_key": keys.public_hex(key), "sha256": digest.hex(),
                 "signature": keys.sign(key, SIGNED + digest)}  # fmt: skip
    durable.write(signature_path(path), (json.dumps(signature) + "\n").encode())
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
    _starts: tuple[int, ...]  # where each list's entries begin in the arrays; the total last
    _signals: tuple[str, ...]
    _arrays: Mapping[str, np.ndarray]
    _values: tuple[str, ...]
    _descriptions: tuple[str, ...]

    def entries(self, hash_list: HashList) -> Iterator[Entry]:
        """The entries of one of the snapshot's lists (by id) at its version."""
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
    """The snapshot at ``path``, its signature (``path.sig``) checked against ``public_key``
    (hex) and its SHA-256 against the file before anything in it is read. Raises
    SnapshotError naming the file and the problem."""
    path = Path(path)
    try:
        signed = json.loads(signature_path(path).read_bytes())
        signer, digest, signature = (str(signed[k]) for k in ("public_key", "sha256",
                                                               "signature"))  # fmt: skip
        with open(path, "rb") as file:
            file.seek(-32, 2)
            ending = file.read()
    except OSError as error:
        raise SnapshotError(f"{error.filename}: cannot read: {error.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise SnapshotError(f"{signature_path(path)}: not a snapshot signature") from None
    if signer != public_key:
        raise SnapshotError(f"{path}: signed by key {signer[:16]}..., not the key given")
    if digest != ending.hex() or not keys.verify(public_key, SIGNED + ending, signature):
        raise SnapshotError(f"{path}: the signature does not verify (the file was changed?)")
    try:
        meta, arrays = fileformat.read(path, KIND)
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
    return Snapshot(path, str(meta["made"]), lists, tuple(starts), signals, arrays, values,
                    descriptions)  # fmt: skip


class StoredLists(Protocol):
    """What a snapshot is checked against and caught up from: the database's lists."""

    def lists(self) -> list[HashList]: ...

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]: ...

    def changes_since(
        self, name: str, version: int, limit: int | None = None
    ) -> Iterator[Change]: ...


class SnapshotSource:
    """A Matcher's ListSource that loads each list once from the snapshot where it fits (the
    database still holds the list under its id, at the snapshot's version or later), else
    from ``store``; changes always come from ``store``, so a Matcher catches up from the
    snapshot's versions. ``used`` names the lists taken from the snapshot, ``unused`` the
    snapshot's others with the reason."""

    def __init__(self, snapshot: Snapshot, store: StoredLists) -> None:
        self.store = store
        stored = {hash_list.id: hash_list for hash_list in store.lists()}
        self.unused: dict[str, str] = {}
        self._parts: dict[str, HashList] = {}  # by the name the database has now
        self._snapshot: Snapshot | None = snapshot
        for held in snapshot.lists:
            now = stored.get(held.id)
            if now is None:
                self.unused[held.name] = f"list {held.id} is no longer in the database"
            elif held.version > now.version:
                self.unused[held.name] = (
                    f"the snapshot holds version {held.version}, ahead of the database's "
                    f"{now.version} (a database restored from an older backup?)"
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
