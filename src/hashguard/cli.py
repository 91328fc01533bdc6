"""The ``hashguard`` command line: hash files, compare two files, match against a list, demo."""

import csv
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hashguard import __version__
from hashguard.cli_keys import keys_app
from hashguard.cli_lists import lists_app
from hashguard.index import HammingIndex
from hashguard.lists.formats import ListFormatError, plain
from hashguard.media.errors import MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.signals import registry
from hashguard.signals.base import Comparison, SignalType
from hashguard.signals.batch import (
    FileFailure,
    FileSkipped,
    HashRecord,
    HashSettings,
    checked_values,
    expand,
    hash_paths,
)
from hashguard.signals.pdq import MIN_QUALITY, PdqSignal
from hashguard.signals.vpdq import VpdqComparison, VpdqSignal

app = typer.Typer(
    name="hashguard",
    help="Match media against verifiable lists of known child-abuse material, privately.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, highlight=False)
app.add_typer(lists_app)
app.add_typer(keys_app)


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"
    text = "text"


def _error_line(message: str) -> str:
    return f"hashguard: {' '.join(message.split())}"


def _error(message: str) -> None:
    """One line on stderr, never wrapped, so scripts can read it."""
    sys.stderr.write(_error_line(message) + "\n")
    sys.stderr.flush()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hashguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """hashguard: hash media and match it against known-material lists."""


def _finite(low: float, high: float) -> Callable[[float | None], float | None]:
    """A typer callback accepting numbers from ``low`` to ``high`` (no nan or infinity)."""

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"expected a number from {low:g} to {high:g}, got {value}")
        return value

    return check


def _signal_names(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    for name in names:
        try:
            registry.get(name)
        except registry.UnknownSignal as exc:
            raise typer.BadParameter(str(exc)) from None
    return names


_Jobs = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Worker processes (decoders run there).")
]
_Format = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")]


@app.command("hash")
def hash_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and directories (walked recursively).")
    ],
    signal: Annotated[
        str | None,
        typer.Option(
            "--signal",
            "-s",
            help="Comma-separated signals (pdq,vpdq,md5,sha1,sha256); default all.",
        ),
    ] = None,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 8 rotation/flip PDQ hashes.")
    ] = False,
    jobs: _Jobs = 1,
    output: _Format = (OutputFormat.jsonl),
    video_rate: Annotated[
        float,
        typer.Option(
            "--video-rate",
            callback=_finite(0, 1000),
            help="vPDQ frames hashed per second; 0 = every frame.",
        ),
    ] = 1.0,
) -> None:
    """Hash files; one output line per file and signal. Exit status 1 if any file failed."""
    names = _signal_names(signal)
    settings = HashSettings(names, dihedral, video_per_second=video_rate, quiet_decoders=True)
    files = list(expand(str(p) for p in paths))
    writer = _writer(output)
    tally = _Tally()
    with _output(len(files)) as out:
        for records in _hashed(files, settings, jobs, out, tally):
            out.write("".join(writer(record) for record in records))
    tally.note_skipped(f"no requested signal ({','.join(names)}) applies")
    if tally.failed:
        raise typer.Exit(1)


@dataclass
class _Tally:
    """Files that failed, and files skipped per kind, while hashing a batch."""

    failed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def note_skipped(self, why: str) -> None:
        if self.skipped:
            counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            _error(f"note: skipped {counts} file(s): {why}")


def _hashed(
    files: list[str], settings: HashSettings, jobs: int, out: "_Output", tally: _Tally
) -> Iterator[list[HashRecord]]:
    """The records of each file hashed; failures reported on ``out`` and counted."""
    for result in hash_paths(files, settings, jobs):
        if isinstance(result, FileFailure):
            tally.failed += 1
            out.error(f"{result.path}: {result.reason}")
        elif isinstance(result, FileSkipped):
            tally.skipped[result.kind] = tally.skipped.get(result.kind, 0) + 1
        else:
            yield result
        out.advance()


def _writer(output: OutputFormat) -> Any:
    if output is OutputFormat.jsonl:
        return _jsonl
    if output is OutputFormat.csv:
        sys.stdout.write("path,signal,value,quality\n")
        return _csv
    return _text


def _rows(record: HashRecord) -> Iterator[tuple[str, str, int | None]]:
    yield record.signal, record.value, record.quality
    for name, value in (record.dihedral or {}).items():
        if name != "original":
            yield f"{record.signal}:{name}", value, record.quality


def _jsonl(record: HashRecord) -> str:
    line: dict[str, Any] = {"path": record.path, "signal": record.signal, "value": record.value}
    if record.quality is not None:
        line["quality"] = record.quality
    if record.frames is not None:
        line["frames"] = record.frames
    if record.dihedral is not None:
        line["dihedral"] = record.dihedral
    return json.dumps(line, ensure_ascii=False) + "\n"


def _csv(record: HashRecord) -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    for signal, value, quality in _rows(record):
        out.writerow([record.path, signal, value, "" if quality is None else quality])
    return buffer.getvalue()


def _text(record: HashRecord) -> str:
    lines = []
    for signal, value, quality in _rows(record):
        shown = "-" if quality is None else str(quality)
        for part in value.splitlines():  # vpdq: one line per frame
            lines.append(f"{signal}\t{part}\t{shown}\t{record.path}\n")
    return "".join(lines)


@dataclass
class _Output:
    """Result lines to stdout and error lines to stderr, with a progress bar kept below them
    while stderr is a terminal."""

    write: Callable[[str], None]
    error: Callable[[str], None]
    advance: Callable[[], None]


@contextmanager
def _output(total: int) -> Iterator[_Output]:
    def plain(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if not sys.stderr.isatty() or total < 2:
        yield _Output(plain, _error, lambda: None)
        return
    # The bar is drawn on stderr's terminal and lines for that terminal go above it, never
    # wrapped; with stdout on the same terminal, the result lines go above it too.
    on_terminal = sys.stdout.isatty()
    console = Console(highlight=False) if on_terminal else stderr
    columns = (TextColumn("hashing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    bar = Progress(
        *columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
    )
    with bar as progress:
        task = progress.add_task("hash", total=total)

        def above(text: str) -> None:
            console.print(text, end="", soft_wrap=True, markup=False, emoji=False, highlight=False)

        def error(message: str) -> None:
            line = _error_line(message)
            console.print(line, soft_wrap=True, markup=False, emoji=False, highlight=False)

        yield _Output(above if on_terminal else plain, error, lambda: progress.advance(task))


@app.command()
def compare(
    first: Annotated[Path, typer.Argument(help="An image or video file.")],
    second: Annotated[Path, typer.Argument(help="Another file of the same kind.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            callback=_finite(0, 256),
            help="PDQ distance threshold, 0-256 (vPDQ: between frames); default 31.",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", "-f", help="jsonl or text.")] = (
        OutputFormat.text
    ),
) -> None:
    """Compare two files: per signal, the distance and whether it is a match."""
    try:
        kinds = {path: _kind(path) for path in (first, second)}
        if kinds[first] is not kinds[second]:
            _error(f"{first} is {kinds[first]} and {second} is {kinds[second]}: nothing to compare")
            raise typer.Exit(1)
        signals = [
            VpdqSignal(frame_threshold=threshold)
            if isinstance(s, VpdqSignal) and threshold is not None
            else s
            for s in registry.for_media(kinds[first])
        ]
        values = {path: dict(_values(path, signals)) for path in (first, second)}
    except _FileError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    for label, comparison in _compare(signals, values[first], values[second], threshold):
        if output is OutputFormat.text:
            verdict = "MATCH" if comparison.match else "no match"
            typer.echo(f"{label:<16} {verdict:<9} {comparison.reason}")
        else:
            typer.echo(json.dumps(_comparison_json(label, comparison)))


class _FileError(Exception):
    """A file could not be read or hashed; the message names it."""


def _kind(path: Path) -> MediaKind:
    try:
        with open(path, "rb") as stream:
            return sniff(stream.read(SNIFF_BYTES)).kind
    except MediaError as exc:
        raise _FileError(f"{path}: {exc}") from None
    except OSError as exc:
        raise _FileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _values(path: Path, signals: list[SignalType[Any]]) -> list[tuple[str, Any]]:
    pairs = checked_values(str(path), signals, dihedral=True, quiet_decoders=True)
    if isinstance(pairs, FileFailure):
        raise _FileError(f"{path}: {pairs.reason}")
    if isinstance(pairs, FileSkipped):  # cannot happen: every kind has signals
        raise _FileError(f"{path}: no signal applies to {pairs.kind} files")
    return [(signal.name, value) for signal, value in pairs]


def _compare(
    signals: list[SignalType[Any]],
    first: dict[str, Any],
    second: dict[str, Any],
    threshold: float | None,
) -> Iterator[tuple[str, Comparison]]:
    for signal in signals:
        a, b = first[signal.name], second[signal.name]
        if isinstance(signal, PdqSignal):
            yield signal.name, signal.compare(a.original, b.original, threshold)
            name, best = min(b.variants.items(), key=lambda item: item[1].distance(a.original))
            yield f"pdq ({name})", signal.compare(a.original, best, threshold)
        else:
            yield signal.name, signal.compare(a, b)


def _comparison_json(label: str, comparison: Comparison) -> dict[str, Any]:
    line = {
        "signal": label,
        "match": comparison.match,
        "distance": comparison.distance,
        "threshold": comparison.threshold,
        "reason": comparison.reason,
    }
    if isinstance(comparison, VpdqComparison):
        line["query_percent"] = comparison.query_percent
        line["target_percent"] = comparison.target_percent
        line["frame_threshold"] = comparison.frame_threshold
    return line


_PDQ_HEX = re.compile(r"[0-9a-fA-F]{64}")
_MATCH_BATCH = 256


@dataclass(frozen=True)
class _Query:
    label: str  # the file's path, or the hash as given
    variants: list[tuple[str, bytes]]  # (variant name, 32 bytes); "original" first
    quality: int | None


@app.command()
def match(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="Media files, directories (walked recursively), or PDQ hashes (64 hex digits)."
        ),
    ],
    list_file: Annotated[
        Path,
        typer.Option(
            "--list",
            "-l",
            help="The list: one PDQ hash per line (blank lines and # comments allowed).",
        ),
    ],
    radius: Annotated[
        int, typer.Option("--radius", "-r", min=0, max=256, help="Largest distance that matches.")
    ] = 31,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also match media rotated or flipped.")
    ] = False,
    min_quality: Annotated[
        int,
        typer.Option(
            "--min-quality",
            min=0,
            max=100,
            help="Media of lower PDQ quality (little detail, e.g. flat images) is not matched.",
        ),
    ] = MIN_QUALITY,
    jobs: _Jobs = 1,
    output: _Format = (OutputFormat.text),
) -> None:
    """Match media or PDQ hashes against a list of PDQ hashes, through the Hamming index.

    Exit status: 0 if anything matched, 1 if nothing did, 2 on any error.
    """
    try:
        lines, hashes = plain.read_pdq(list_file)
    except ListFormatError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    index = HammingIndex()
    index.add(lines, hashes)
    given = [q for q in queries if _PDQ_HEX.fullmatch(q) and not os.path.lexists(q)]
    files = list(expand(q for q in queries if q not in given))
    show = _match_writer(output)
    matched = 0
    tally = _Tally()
    batch: list[_Query] = [_Query(q, [("original", bytes.fromhex(q))], None) for q in given]
    with _output(len(files)) as out:

        def flush() -> None:
            nonlocal matched
            for query, found in _match_batch(index, lines, hashes, batch, radius, min_quality):
                matched += bool(found)
                out.write(show(query, found, min_quality))
            batch.clear()

        flush()
        settings = HashSettings(("pdq",), dihedral, quiet_decoders=True)
        for (record,) in _hashed(files, settings, jobs, out, tally):
            variants = record.dihedral or {"original": record.value}
            batch.append(
                _Query(
                    record.path,
                    [(name, bytes.fromhex(value)) for name, value in variants.items()],
                    record.quality,
                )
            )
            if len(batch) >= _MATCH_BATCH:
                flush()
        flush()
    tally.note_skipped("lists of PDQ hashes match images only")
    raise typer.Exit(2 if tally.failed else 0 if matched else 1)


def _match_batch(
    index: HammingIndex,
    lines: np.ndarray,
    hashes: np.ndarray,
    batch: list[_Query],
    radius: int,
    min_quality: int,
) -> Iterator[tuple[_Query, list[tuple[int, int, str]]]]:
    """Each query with its matches (list line, distance, best variant), closest first."""
    usable = [q for q in batch if q.quality is None or q.quality >= min_quality]
    found: dict[int, list[tuple[int, int, str]]] = {}
    for width in sorted({len(q.variants) for q in usable}):
        group = [q for q in usable if len(q.variants) == width]
        variants = np.array(
            [[np.frombuffer(bits, np.uint8) for _, bits in q.variants] for q in group], np.uint8
        )
        items, ids, distances = index.query_dihedral(variants, radius)
        rows = np.searchsorted(lines, ids)
        for item, line, distance, row in zip(items, ids, distances, rows, strict=True):
            query = group[item]
            per_variant = np.bitwise_count(variants[item] ^ hashes[row]).sum(axis=1)
            name = query.variants[int(np.argmin(per_variant))][0]
            found.setdefault(id(query), []).append((int(line), int(distance), name))
    for query in batch:
        yield query, found.get(id(query), [])


def _match_writer(output: OutputFormat) -> Callable[[_Query, list[tuple[int, int, str]], int], str]:
    if output is OutputFormat.csv:
        sys.stdout.write("query,line,distance,variant\n")

    def write(query: _Query, found: list[tuple[int, int, str]], min_quality: int) -> str:
        low = query.quality is not None and query.quality < min_quality
        if output is OutputFormat.jsonl:
            line: dict[str, Any] = {"query": query.label, "quality": query.quality}
            if low:
                line["not_matched"] = f"PDQ quality {query.quality} is below {min_quality}"
            line["matches"] = [{"line": n, "distance": d, "variant": v} for n, d, v in found]
            return json.dumps(line, ensure_ascii=False) + "\n"
        if output is OutputFormat.csv:
            buffer = io.StringIO()
            rows = csv.writer(buffer, lineterminator="\n")
            for n, d, v in found:
                rows.writerow([query.label, n, d, v])
            return buffer.getvalue()
        if low:
            return (
                f"{query.label}: not matched: PDQ quality {query.quality} is below {min_quality}\n"
            )
        if not found:
            return f"{query.label}: no match\n"
        return "".join(
            f"{query.label}: match, list line {n}, distance {d}"
            + ("" if v == "original" else f" ({v})")
            + "\n"
            for n, d, v in found
        )

    return write


@app.command()
def demo(
    save: Annotated[
        Path | None, typer.Option(help="Also write the sample images to this directory.")
    ] = None,
) -> None:
    """Hash benign sample images, build a small list, and show which edited copies match."""
    from hashguard.demo import run

    run(Console(highlight=False, width=None if sys.stdout.isatty() else 100), save)


def main() -> None:
    # Started with stdout or stderr closed: write to nowhere rather than fail on every file.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    # File names that are not valid UTF-8 are written back as the bytes they are, as ls does.
    for stream, errors in ((sys.stdout, "surrogateescape"), (sys.stderr, "backslashreplace")):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=errors)
    try:
        app()
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
