"""The device's own state file (what it installed and the log head it saw), read by every
``device update`` and ``device check``: a corrupt one must be refused, never crash."""

from pathlib import Path

from hashguard.device import install


def one(data: bytes, scratch: Path) -> None:
    (scratch / install._STATE).write_bytes(data)
    state = install._read_state(scratch)
    install._head(state, scratch)
