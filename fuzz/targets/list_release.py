"""A list's release as ``hashguard lists verify`` reads it, downloaded from whoever publishes
it: the signed manifest, its signature, its log location and its entries (one input, split at
NUL bytes), verified against a real log that holds one release of three made-up hashes (built
when the target loads, with fixed keys: ``files()`` gives that release, the seed)."""

import hashlib
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hashguard.lists.model import Category, EntryStatus, HashList, Provenance, new_entry
from hashguard.lists.release import ENTRIES, build, verify
from hashguard.transparency import manifest
from hashguard.transparency.log import TransparencyLog

FILES = (*manifest.FILES, ENTRIES)
_OWNER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz owner").digest())
_LOG_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fuzz log").digest())
_ROOT = Path(tempfile.mkdtemp(prefix="hashguard-fuzz-release-"))
LOG = TransparencyLog.create_or_open(_ROOT / "log", _LOG_KEY)


def _release() -> Path:
    hash_list = HashList(1, "fuzz", "Fuzz", Category.TEST)
    values = sorted(hashlib.sha256(bytes([n])).hexdigest() for n in range(3))
    entries = [new_entry(n + 1, 1, "sha256", value, frozenset({"test"}), Provenance(),
                         EntryStatus.ACTIVE, n + 1) for n, value in enumerate(values)]  # fmt: skip
    build(hash_list, entries, _OWNER, LOG, _LOG_KEY, _ROOT / "release")
    return _ROOT / "release"


_RELEASE = _release()


def files() -> bytes:
    """The real release's files as one input."""
    return b"\0".join((_RELEASE / name).read_bytes() for name in FILES)


def one(data: bytes, scratch: Path) -> None:
    parts = [*data.split(b"\0", len(FILES) - 1), *[b""] * len(FILES)][: len(FILES)]
    for name, part in zip(FILES, parts, strict=True):
        (scratch / name).write_bytes(part)
    verify(scratch, LOG)
