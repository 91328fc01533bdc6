"""Plain lists: one hash per line, in its usual text form (PDQ: 64 hex digits).

Blank lines and lines starting with ``#`` are ignored; spaces around a hash are allowed; hex
digits may be upper or lower case. Anything else stops the read with the file and line.
"""

import re
from pathlib import Path
from typing import Final

import numpy as np

from hashguard.lists.formats import ListFormatError

_PDQ: Final = re.compile(rb"[0-9a-fA-F]{64}")
_BOM: Final = b"\xef\xbb\xbf"  # some editors start UTF-8 files with it


def read_pdq(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The hashes of a plain PDQ list: (line numbers int64 (n,), hashes uint8 (n, 32)).

    Raises ListFormatError naming the line of the first malformed hash, or the read error.
    """
    path = Path(path)
    lines: list[int] = []
    hashes = bytearray()
    try:
        with open(path, "rb") as file:
            for number, raw in enumerate(file, start=1):
                text = raw.removeprefix(_BOM).strip() if number == 1 else raw.strip()
                if not text or text.startswith(b"#"):
                    continue
                if not _PDQ.fullmatch(text):
                    raise ListFormatError(
                        path, number, f"expected a PDQ hash (64 hex digits), got {_shown(text)}"
                    )
                hashes += bytes.fromhex(text.decode("ascii"))
                lines.append(number)
    except OSError as error:
        raise ListFormatError(path, None, f"cannot read: {error.strerror or error}") from None
    values = np.frombuffer(bytes(hashes), np.uint8).reshape(len(lines), 32)
    return np.array(lines, np.int64), values


def _shown(text: bytes, limit: int = 40) -> str:
    shown = text[:limit].decode("utf-8", "backslashreplace")
    return f"'{shown}{'...' if len(text) > limit else ''}'"
