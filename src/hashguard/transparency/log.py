"""An append-only transparency log in a directory, RFC 9162 style.

Each record (a signed release manifest) is a leaf of a Merkle tree; after each append the log
signs a tree head {size, root, timestamp} with its own Ed25519 key. Anyone holding an earlier
tree head can check that the log only grew since (a consistency proof), and that a record is in
it (an inclusion proof); a log that rewrote or dropped a record, or shows different histories
to different readers, fails those checks.

Layout of the directory (all of it public; the log's private key is kept elsewhere)::

    log.pub              the log's public key, 64 hex digits
    records/00000000     record 0, the leaf's data as written
    heads/00000001.json  the signed tree head after record 0, and so on
"""

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard import durable
from hashguard.errors import Unverified
from hashguard.transparency import keys, merkle


class LogError(Unverified):
    """The log cannot be used or does not prove what was asked; the message says why."""


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    timestamp: str
    signature: str  # hex, by the log's key over ``signed_bytes``

    def signed_bytes(self) -> bytes:
        return canonical({"size": self.size, "root": self.root.hex(), "timestamp": self.timestamp})

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root.hex(),
            "timestamp": self.timestamp,
            "signature": self.signature,
        }

    @staticmethod
    def from_json(data: Any, where: str) -> "TreeHead":
        try:
            return TreeHead(
                int(data["size"]), bytes.fromhex(data["root"]), str(data["timestamp"]),
                str(data["signature"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError, OverflowError):  # OverflowError: 1e400
            raise LogError(f"{where}: not a signed tree head") from None

    @staticmethod
    def read(path: Path) -> "TreeHead":
        """The tree head in the file ``path`` (a head a verifier kept: ``--known-head``).
        Raises OSError when it cannot be read, LogError when it is no tree head."""
        data = Path(path).read_bytes()
        try:
            parsed = json.loads(data)
        except (ValueError, RecursionError) as error:  # RecursionError: nested too deeply
            raise LogError(f"{path}: not a tree head (not JSON: {str(error)[:80]})") from None
        return TreeHead.from_json(parsed, str(path))

    def verify(self, public: str) -> bool:
        return keys.verify(public, self.signed_bytes(), self.signature)


def canonical(value: Any) -> bytes:
    """The one byte form of a JSON value that is signed and hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class TransparencyLog:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def create_or_open(cls, directory: Path, key: Ed25519PrivateKey) -> "TransparencyLog":
        """The log in ``directory`` signed with ``key``, created when there is none. Raises
        LogError when the directory's log belongs to another key."""
        directory = Path(directory)
        (directory / "records").mkdir(parents=True, exist_ok=True)
        (directory / "heads").mkdir(exist_ok=True)
        log = cls(directory)
        public = keys.public_hex(key)
        if not (directory / "log.pub").exists():
            durable.write(directory / "log.pub", (public + "\n").encode())
        elif log.public_key() != public:
            raise LogError(f"{directory}: this log is signed with another key")
        return log

    def public_key(self) -> str:
        try:
            return keys.read_public(self.directory / "log.pub")
        except keys.KeyFileError as error:
            raise LogError(str(error)) from None

    def append(
        self, record: bytes | Callable[[], bytes], key: Ed25519PrivateKey
    ) -> tuple[int, TreeHead]:
        """Append ``record`` (or what it makes, called while the log is locked: it may read the
        log); its index and the new tree head, signed with ``key``."""
        if keys.public_hex(key) != self.public_key():
            raise LogError(f"{self.directory}: this log is signed with another key")
        with self._locked():
            if callable(record):
                record = record()
            index = self.size()
            durable.write(self.directory / "records" / f"{index:08d}", record)
            return index, self._sign_head(key)

    def seal(self, key: Ed25519PrivateKey) -> TreeHead:
        """The newest tree head, signed now with ``key`` when a record has none (the process
        appending it was killed before it signed one). Raises LogError."""
        if keys.public_hex(key) != self.public_key():
            raise LogError(f"{self.directory}: this log is signed with another key")
        with self._locked():
            size = self.size()
            if (self.directory / "heads" / f"{size:08d}.json").exists():
                return self.head()
            return self._sign_head(key)

    def _sign_head(self, key: Ed25519PrivateKey) -> TreeHead:
        """A tree head over every record, signed with ``key`` and written (the log locked)."""
        leaves = self.leaves()
        head = TreeHead(len(leaves), merkle.root(leaves), _now(), "")
        head = TreeHead(head.size, head.root, head.timestamp, keys.sign(key, head.signed_bytes()))
        path = self.directory / "heads" / f"{head.size:08d}.json"
        durable.write(path, canonical(head.as_json()))
        return head

    def size(self) -> int:
        return len(list((self.directory / "records").glob("[0-9]" * 8)))

    def record(self, index: int) -> bytes:
        path = self.directory / "records" / f"{index:08d}"
        try:
            return path.read_bytes()
        except OSError:
            raise LogError(f"{self.directory}: the log has no record {index}") from None

    def leaves(self) -> list[bytes]:
        return [merkle.leaf_hash(self.record(i)) for i in range(self.size())]

    def head(self) -> TreeHead:
        """The newest signed tree head. Raises LogError when the log is empty or unreadable."""
        heads = sorted((self.directory / "heads").glob("*.json"))
        if not heads:
            raise LogError(f"{self.directory}: not a hashguard log (no signed tree head)")
        try:
            data = json.loads(heads[-1].read_bytes())
        except (OSError, ValueError, RecursionError):
            raise LogError(f"{heads[-1]}: unreadable tree head") from None
        return TreeHead.from_json(data, str(heads[-1]))

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(self.leaves()[:size], index)

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        leaves = self.leaves()
        if new_size > len(leaves):
            raise LogError(f"{self.directory}: the log has {len(leaves)} records, not {new_size}")
        return merkle.consistency_proof(leaves[:new_size], old_size)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def verify_record(
    log: TransparencyLog,
    record: bytes,
    index: int,
    record_head: TreeHead,
    inclusion: list[bytes],
    log_key: str | None,
    known_head: TreeHead | None,
    where: str,
) -> tuple[TreeHead, list[str]]:
    """Check that ``record`` is in ``log`` at ``index`` under ``record_head`` (by ``inclusion``),
    that both that head and the log's newest are signed by the log key (``log_key`` pinned, or
    the log's own), that the log's records give its newest head, that the log only grew since
    ``record_head`` and ``known_head`` (a head the verifier saw before: a fork shows here), and
    that the record at ``index`` is still ``record``.

    Returns the newest head and the checks passed; raises LogError naming the first that fails.
    """
    log_public = log_key or log.public_key()
    head = log.head()
    for label, tree_head in (("the release's", record_head), ("the log's newest", head)):
        if tree_head.verify(log_public):
            continue
        if log_key is not None and tree_head.verify(log.public_key()):
            # Signed by the log's own key, not the one pinned: the pin is the wrong key (or the
            # log is not the one the verifier trusts); nothing here was tampered with.
            raise LogError(
                f"the log key given ({log_key[:16]}...) is not the key this log is signed with "
                f"({log.public_key()[:16]}..., its log.pub): a wrong key file, or not the log "
                "you trust"
            )
        raise LogError(f"{label} tree head is not signed by the log key (tampered)")
    leaves = log.leaves()
    if len(leaves) < head.size or merkle.root(leaves[: head.size]) != head.root:
        raise LogError("the log's records do not give its signed tree head (rewritten log)")
    if not merkle.verify_inclusion(
        merkle.leaf_hash(record), index, record_head.size, inclusion, record_head.root
    ):
        raise LogError(
            f"{where}: not in the log at index {index} under its tree head (tampered proof)"
        )
    checks = [f"log: included as record {index} of {record_head.size}"]
    _check_consistent(log, record_head, head, "the release's tree head")
    if known_head is not None:
        if not known_head.verify(log_public):
            raise LogError("the known tree head is not signed by the log key")
        _check_consistent(log, known_head, head, "the known tree head")
        checks.append(f"log: consistent with the known tree head of size {known_head.size}")
    if log.record(index) != record:
        raise LogError(f"the log's record {index} is not this release (rewritten log)")
    checks.append(f"log: grew append-only from {record_head.size} to {head.size} records")
    return head, checks


def _check_consistent(log: TransparencyLog, old: TreeHead, new: TreeHead, label: str) -> None:
    if old.size > new.size:
        raise LogError(
            f"the log shrank: {label} has {old.size} records, its newest head {new.size} "
            "(rolled back)"
        )
    try:
        proof = log.consistency(old.size, new.size)
    except ValueError as error:
        raise LogError(f"{label}: {error}") from None
    if not merkle.verify_consistency(old.size, new.size, old.root, new.root, proof):
        raise LogError(
            f"the log is not an append-only extension of {label} (size {old.size}): "
            "it was rewritten or forked"
        )
