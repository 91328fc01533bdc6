"""A device filter file (a binary fuse filter in hashguard's index file format), as a device
loads it once its digest matched the manifest. The input is given its trailing SHA-256 so the
fuzzer explores the format rather than the checksum."""

import hashlib
from pathlib import Path

from hashguard.index.fuse import FuseFilter


def one(data: bytes, scratch: Path) -> None:
    path = scratch / "exact.bin"
    path.write_bytes(data + hashlib.sha256(data).digest())
    loaded = FuseFilter.load(path)
    _ = int.from_bytes(hashlib.sha256(data).digest()[:8], "little") in loaded
