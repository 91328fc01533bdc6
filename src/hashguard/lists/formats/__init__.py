"""Hash-list file formats, each read as a stream with errors that name the file and line."""

from pathlib import Path

from hashguard.lists.records import InvalidRecord


class ListFormatError(InvalidRecord):
    """A list file that cannot be read; the message names the file, the line and what was
    expected."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = path
        self.line = line
