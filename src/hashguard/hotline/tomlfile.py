"""A TOML file the hotline is configured by (its vocabulary, routing rules, partners, hosters),
read with the lines its tables and keys are on, so an error names the file and the line:
tomllib gives lines for syntax errors only, so the rest are found in the text."""

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hashguard.errors import Invalid

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A TOML document and where, in its text, each table and key is."""

    path: Path
    document: dict[str, Any]
    lines: tuple[str, ...]

    def where(self, table: str = "", index: int | None = None, key: str | None = None) -> str:
        """``FILE, line N`` of ``key`` in ``table`` (its ``index``-th entry for an array of
        tables ``[[table]]``; "" the top of the file, where a key may also be a table's
        header), of the table's header without a key, or ``FILE`` when neither is written on
        a line of its own (an inline table)."""
        line = self.line(table, index, key)
        return f"{self.path}, line {line}" if line is not None else str(self.path)

    def line(self, table: str = "", index: int | None = None, key: str | None = None) -> int | None:
        start, seen = (0 if not table else None), -1
        for number, text in enumerate(self.lines, 1):
            header = _HEADER.match(text)
            if header is None:
                if start is not None and key is not None and _assigns(text, key):
                    return number
                continue
            if start is not None:
                break  # the next table: the key is not in this one
            if _name(header.group(2)) == table:
                seen += 1
                if index is None or seen == index:
                    start = number
                    if key is None:
                        return number
        if not table and key is not None:  # a table at the top: [key], [[key]], [key.sub]
            for number, text in enumerate(self.lines, 1):
                header = _HEADER.match(text)
                if header and _name(header.group(2)).split(".")[0] == key:
                    return number
        return start or None


def read(path: Path, error: type[Invalid]) -> TomlFile:
    """The TOML file at ``path``. Raises ``error`` naming the file (and the line of a syntax
    error) when it cannot be read or is not TOML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as problem:
        raise error(f"{path}: cannot read: {problem.strerror or problem}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a TOML file (not UTF-8 text)") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:  # its message ends "(at line N, column M)"
        raise error(f"{path}: not valid TOML: {problem}") from None
    return TomlFile(Path(path), document, tuple(text.splitlines()))


def _name(header: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in header.split("."))


def _assigns(text: str, key: str) -> bool:
    quoted = re.escape(key)
    return re.match(rf"\s*(\"{quoted}\"|'{quoted}'|{quoted})\s*(=|\.)", text) is not None
