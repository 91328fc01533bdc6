"""A list's release as ``hashguard lists verify`` reads it, downloaded from whoever publishes it:
the signed manifest, its signature, its log location and its entries (one input, split at NUL
bytes), verified against a real log (``fuzz/logs/list_release``, kept in the repository) that
holds one release of three made-up hashes, the seed; ``fuzz/seeds.py`` writes both with
``make``."""

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.lists.model import Category, EntryStatus, HashList, Provenance, new_entry
from hashguard.lists.release import ENTRIES, build, verify
from hashguard.transparency import manifest
from hashguard.transparency.log import TransparencyLog

FILES = (*manifest.FILES, ENTRIES)
LOG_DIRECTORY = Path(__file__).resolve().parent.parent / "logs" / "list_release"
LOG = TransparencyLog(LOG_DIRECTORY)


def make(root: Path) -> bytes:
    """A log at ``root/log`` holding one release of three made-up hashes (fixed keys), and
    that release's files as one input."""
    owner = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz owner").digest())
    log_key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz log").digest())
    log = TransparencyLog.create_or_open(root / "log", log_key)
    hash_list = HashList(1, "fuzz", "Fuzz", Category.TEST)
    values = sorted(hashlib.sha256(bytes([n])).hexdigest() for n in range(3))
    entries = [new_entry(n + 1, 1, "sha256", value, frozenset({"test"}), Provenance(),
                         EntryStatus.ACTIVE, n + 1) for n, value in enumerate(values)]  # fmt: skip
    build(hash_list, entries, owner, log, log_key, root / "release")
    return b"\0".join((root / "release" / name).read_bytes() for name in FILES)


def one(data: bytes, scratch: Path) -> None:
    parts = [*data.split(b"\0", len(FILES) - 1), *[b""] * len(FILES)][: len(FILES)]
    for name, part in zip(FILES, parts, strict=True):
        (scratch / name).write_bytes(part)
    verify(scratch, LOG)
