"""The csv list format as ``hashguard lists import`` and the import route read it."""

from collections import Counter
from pathlib import Path

from hashguard.lists.formats import reader


def one(data: bytes, scratch: Path) -> None:
    path = scratch / "list"
    path.write_bytes(data)
    for _ in reader.read(path, "csv", skipped=Counter()):
        pass
