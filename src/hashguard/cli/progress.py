"""Files hashed as a batch on the command line: result lines on stdout, one error line per failed
file on stderr, a progress bar kept below them while stderr is a terminal, and a tally."""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hashguard.cli.common import echo_error, error_line

if TYPE_CHECKING:
    from hashguard.signals.batch import HashedFile, HashSettings


@dataclass
class Tally:
    """Files that failed, and files skipped per kind, while hashing a batch."""

    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def note_skipped(self, why: str) -> None:
        if self.skipped:
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            echo_error(f"note: skipped {counts} file(s): {why}")


def hashed(
    files: list[str], settings: "HashSettings", jobs: int, out: "Output", tally: Tally
) -> Iterator["HashedFile"]:
    """Each file hashed; failures reported on ``out`` and counted."""
    from hashguard.signals.batch import FileFailure, FileSkipped, hash_paths

    for result in hash_paths(files, settings, jobs):
        if isinstance(result, FileFailure):
            tally.failed += 1
            out.error(f"{result.path}: {result.reason}")
        elif isinstance(result, FileSkipped):
            tally.skipped[result.kind] = tally.skipped.get(result.kind, 0) + 1
        else:
            if result.failed:  # media that cannot be decoded: its digests alone
                tally.failed += 1
                out.error(f"{result.path}: {result.failed} (only the hashes of its bytes given)")
            yield result
        out.advance()


@dataclass
class Output:
    """Result lines to stdout and error lines to stderr, with a progress bar kept below them
    while stderr is a terminal."""

    write: Callable[[str], None]
    error: Callable[[str], None]
    advance: Callable[[], None]


@contextmanager
def output(total: int) -> Iterator[Output]:
    def plain(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if not sys.stderr.isatty() or total < 2:
        yield Output(plain, echo_error, lambda: None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    # The bar is drawn on stderr's terminal and lines for that terminal go above it, never
    # wrapped; with stdout on the same terminal, the result lines go above it too.
    on_terminal = sys.stdout.isatty()
    console = Console(highlight=False) if on_terminal else Console(stderr=True, highlight=False)
    columns = (TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(
        *columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
    )
    with bar as progress:
        task = progress.add_task("hash", total=total)

        def above(text: str) -> None:
            console.print(text, end="", soft_wrap=True, markup=False, emoji=False, highlight=False)

        def error(message: str) -> None:
            line = error_line(message)
            console.print(line, soft_wrap=True, markup=False, emoji=False, highlight=False)

        yield Output(above if on_terminal else plain, error, lambda: progress.advance(task))
