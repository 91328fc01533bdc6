"""A device release's delta file (keys added to and removed from its filters since the base),
as a device reads it. The input is given its trailing SHA-256, as in device_filter."""

import hashlib
from pathlib import Path

from hashguard.device import delta


def one(data: bytes, scratch: Path) -> None:
    path = scratch / "delta.bin"
    path.write_bytes(data + hashlib.sha256(data).digest())
    roles = {"exact", "near"} if len(data) % 2 else {"exact"}
    delta.read(path, roles)
