"""Media sniffing: the format (and kind) of an upload from its first bytes."""

from pathlib import Path

from hashguard.media.formats import SNIFF_BYTES, file_kind, sniff


def one(data: bytes, scratch: Path) -> None:
    head = data[:SNIFF_BYTES]
    file_kind(head)
    sniff(head)
