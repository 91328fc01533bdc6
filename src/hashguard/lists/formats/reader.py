"""Any of the import formats by name: what ``hashguard lists import`` and the service's import
route both read."""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from hashguard.lists.formats import labelled_csv, ncmec, plain, pytx, stopncii
from hashguard.lists.model import Provenance, Source
from hashguard.lists.records import Record

FORMATS: Final = ("text", "csv", "pytx", "ncmec", "stopncii")


def read(
    path: Path,
    format: str,
    signal: str | None = None,
    source: str | None = None,
    jurisdiction: str = "",
    skipped: Counter[str] | None = None,
) -> Iterator[Record]:
    """The records of the file at ``path`` in ``format`` (one of FORMATS). Plain text needs the
    values' ``signal``, and may name the ``source`` organisation and its ``jurisdiction``.
    What a format holds that hashguard cannot match is counted in ``skipped``."""
    skipped = Counter() if skipped is None else skipped
    if format == "text":
        if signal is None:
            raise ValueError("text lists need the values' signal")
        yield from plain.read(path, signal.lower(), _source(source, jurisdiction))
    elif format == "csv":
        yield from labelled_csv.read(path)
    elif format == "pytx":
        yield from pytx.read(path, skipped)
    elif format == "ncmec":
        yield from ncmec.read(path, skipped)
    elif format == "stopncii":
        yield from stopncii.read(path, skipped)
    else:
        raise ValueError(f"format {format!r}: expected one of {', '.join(FORMATS)}")


def _source(organisation: str | None, jurisdiction: str) -> Provenance | None:
    """A plain list's provenance: the organisation the file comes from, when named."""
    if not organisation:
        return None
    return Provenance(organisation, "", (Source(organisation, jurisdiction.strip().upper()),))
