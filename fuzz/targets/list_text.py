"""Plain lists (one value a line) of each signal a list holds: the first byte picks it."""

from pathlib import Path

from hashguard.lists.formats import reader
from hashguard.signals import registry

_SIGNALS = registry.listable_names()


def one(data: bytes, scratch: Path) -> None:
    if not data:
        return
    signal = _SIGNALS[data[0] % len(_SIGNALS)]
    path = scratch / "list"
    path.write_bytes(data[1:])
    for _ in reader.read(path, "text", signal=signal, source="fuzz", jurisdiction="GB"):
        pass
