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


@dataclass
class ScanProgress:
    """What a scan has done so far, shown on the bar."""

    files: int = 0
    errors: int = 0
    matched: int = 0
    advance: Callable[[int], None] = lambda files: None


@contextmanager
def scanning(total: int, done: int = 0, quiet: bool = False) -> Iterator[ScanProgress]:
    """A bar on stderr for a scan of ``total`` files, ``done`` of them before (a resumed scan):
    files, files/s, errors, files matched, time left. None when ``quiet`` or when stderr is
    not a terminal."""
    shown = ScanProgress(files=done)
    if quiet or not sys.stderr.isatty():
        yield shown
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    counts = TextColumn(
        "{task.fields[rate]} files/s, {task.fields[errors]} errors, {task.fields[matched]} matched"
    )
    bar = Progress(
        TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), counts, TimeRemainingColumn(),
        console=Console(stderr=True, highlight=False), transient=True,
    )  # fmt: skip
    with bar as progress:
        task = progress.add_task("scan", total=total, completed=done, rate="-", errors=0,
                                 matched=0)  # fmt: skip

        def advance(files: int) -> None:
            progress.advance(task, files)
            speed = progress.tasks[task].speed
            rate = "-" if speed is None else f"{speed:.0f}"
            progress.update(task, rate=rate, errors=shown.errors, matched=shown.matched)

        shown.advance = advance
        yield shown
