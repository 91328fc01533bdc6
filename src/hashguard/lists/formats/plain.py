"""Plain lists: one hash per line, in its usual text form (PDQ: 64 hex digits), the signal
given by the caller.

Blank lines and lines starting with ``#`` are ignored; spaces around a hash are allowed; hex
digits may be upper or lower case. Anything else stops the read with the file and line.
"""

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final, TextIO

import numpy as np

from hashguard.lists.formats import ListFormatError
from hashguard.lists.model import Entry
from hashguard.lists.records import InvalidRecord, Submission, canonical

_PDQ: Final = re.compile(rb"[0-9a-fA-F]{64}")
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


def read(path: Path, signal: str) -> Iterator[Submission]:
    """Each hash of a plain list of ``signal`` values, as a submission (streamed).

    Raises ListFormatError naming the line of the first malformed value.
    """
    for number, text in lines(path):
        try:
            value = canonical(signal, text.decode("ascii"))
        except (UnicodeDecodeError, InvalidRecord):
            raise ListFormatError(
                path, number, f"expected a {signal} value, got {_shown(text)}"
            ) from None
        yield Submission(signal, value)


def write(entries: Iterable[Entry], out: TextIO) -> int:
    """One value per line; the number written."""
    count = 0
    for entry in entries:
        out.write(entry.value + "\n")
        count += 1
    return count


def read_pdq(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of a plain PDQ list: (line numbers int64 (n,), hashes uint8 (n, 32)).

    Raises ListFormatError naming the line of the first malformed hash, or the read error.
    """
    numbers: list[int] = []
    hashes = bytearray()
    for number, text in lines(path):
        if not _PDQ.fullmatch(text):
            raise ListFormatError(
                path, number, f"expected a PDQ hash (64 hex digits), got {_shown(text)}"
            )
        hashes += bytes.fromhex(text.decode("ascii"))
        numbers.append(number)
    values = np.frombuffer(bytes(hashes), np.uint8).reshape(len(numbers), 32)
    return np.array(numbers, np.int64), values


def _shown(text: bytes, limit: int = 40) -> str:
    shown = text[:limit].decode("utf-8", "backslashreplace")
    return f"'{shown}{'...' if len(text) > limit else ''}'"
