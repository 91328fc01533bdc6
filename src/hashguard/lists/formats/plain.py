"""Plain lists: one hash per line, in its usual text form (PDQ: 64 hex digits; vPDQ: one
video per line in ThreatExchange's JSON form), the signal given by the caller.

Blank lines and lines starting with ``#`` are ignored; spaces around a hash are allowed; hex
digits may be upper or lower case. Anything else stops the read with the file and line.
"""

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO

from hashguard.lists.formats import ListFormatError
from hashguard.lists.model import Entry, Provenance
from hashguard.lists.records import (
    InvalidRecord,
    Submission,
    all_canonical,
    canonical_line,
)
from hashguard.signals import registry

_BOM: Final = b"\xef\xbb\xbf"  # some editors start UTF-8 files with it


def lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, stripped line) of every line that is not blank or a comment.

    Raises ListFormatError when the file cannot be read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            for number, raw in enumerate(file, start=1):
                text = raw.removeprefix(_BOM).strip() if number == 1 else raw.strip()
                if text and not text.startswith(b"#"):
                    yield number, text
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None


def read(path: Path, signal: str, provenance: Provenance | None = None) -> Iterator[Submission]:
    """Each hash of a plain list of ``signal`` values, as a submission (streamed), each with
    ``provenance`` (plain lists carry none of their own: the file's source, if known).

    Raises ListFormatError naming the line of the first malformed value.
    """
    given = _NO_PROVENANCE if provenance is None else provenance
    batch: list[tuple[int, bytes]] = []
    for item in lines(path):
        batch.append(item)
        if len(batch) == _BATCH:
            yield from _submissions(path, signal, batch, given)
            batch = []
    yield from _submissions(path, signal, batch, given)


_BATCH: Final = 4096
_NO_PROVENANCE: Final = Provenance()


def _submissions(
    path: Path, signal: str, batch: list[tuple[int, bytes]], provenance: Provenance
) -> Iterator[Submission]:
    """The batch's values, checked all at once when they are plain hex, else line by line."""
    try:
        values = [text.decode("ascii").lower() for _, text in batch]
    except UnicodeDecodeError:
        values = []
    if values and all_canonical(signal, values):
        for value in values:
            yield Submission(signal, value, frozenset(), provenance)
        return
    for number, text in batch:
        try:
            value = canonical_line(signal, text.decode("ascii"))
        except UnicodeDecodeError:
            raise ListFormatError(
                path, number, f"expected a {signal} value, got {_shown(text)}"
            ) from None
        except InvalidRecord as error:
            # A hash of hex digits needs no more words; another form says what it expects.
            detail = "" if registry.get(signal).hex_digits else f" ({error})"
            raise ListFormatError(
                path, number, f"expected a {signal} value, got {_shown(text)}{detail}"
            ) from None
        yield Submission(signal, value, frozenset(), provenance)


def write(entries: Iterable[Entry], out: TextIO) -> int:
    """One value per line; the number written."""
    count = 0
    for entry in entries:
        out.write(entry.value + "\n")
        count += 1
    return count


def _shown(text: bytes, limit: int = 40) -> str:
    shown = text[:limit].decode("utf-8", "backslashreplace")
    return f"'{shown}{'...' if len(text) > limit else ''}'"
