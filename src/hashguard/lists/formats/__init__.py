"""Hash-list file formats, each read as a stream with errors that name the file and line."""

import csv
from pathlib import Path
from typing import Any, Final, TextIO

from hashguard.lists import limits
from hashguard.lists.records import InvalidRecord


class ListFormatError(InvalidRecord):
    """A list file that cannot be read; the message names the file, the line and what was
    expected."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line


# A CSV field may hold a long video's vPDQ (about 80 characters a second): Python's default
# limit (131,072 characters, 27 minutes) is raised to the longest value an import may hold.
FIELD_LIMIT: Final = limits.VALUE


def csv_rows(file: TextIO) -> Any:  # a csv reader (its type is private to _csv)
    """``csv.reader`` over ``file`` (strict), taking fields up to ``FIELD_LIMIT``."""
    if csv.field_size_limit() != FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
    return csv.reader(file, strict=True)
