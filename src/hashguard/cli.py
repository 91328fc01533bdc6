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

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hashguard import __version__
from hashguard.cli_audit import audit_app
from hashguard.cli_device import device_app
from hashguard.cli_follow import follow
from hashguard.cli_keys import keys_app
from hashguard.cli_lists import DatabaseOption, lists_app
from hashguard.cli_safeguards import purge, services_app, stats_app
from hashguard.cli_serve import serve
from hashguard.matching import Match, Matcher
from hashguard.media.errors import MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.signals import registry
from hashguard.signals.base import Comparison, InvalidSignalValue, SignalType
from hashguard.signals.batch import (
    FileFailure,
    FileSkipped,
    HashRecord,
    HashSettings,
    checked_values,
    expand,
    hash_paths,
)
from hashguard.signals.pdq import MIN_QUALITY, DihedralHashes, PdqHash, PdqSignal
from hashguard.signals.vpdq import VpdqComparison, VpdqSignal
from hashguard.store.database import DatabaseError, open_engine
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore

app = typer.Typer(
    name="hashguard",
    help="Match media against verifiable lists of known child-abuse material, privately.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stderr = Console(stderr=True, highlight=False)
lists_app.command()(follow)
app.add_typer(lists_app)
app.add_typer(keys_app)
app.add_typer(audit_app)
app.add_typer(services_app)
app.add_typer(stats_app)
app.add_typer(device_app)
app.command()(purge)
app.command()(serve)


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
            help="Comma-separated signals (pdq,vpdq,md5,sha1,sha256,canonical_sha256); "
            "default all but canonical_sha256 (it decodes the full image).",
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


_MATCH_BATCH = 256
# Hashes given on the command line: SIGNAL:HEX, or bare hex whose length says the signals.
_BY_LENGTH = {32: ("md5",), 40: ("sha1",), 64: ("pdq", "sha256", "canonical_sha256")}
_HEX = re.compile(r"(?:(pdq|md5|sha1|sha256|canonical_sha256):)?([0-9a-fA-F]+)")


@dataclass(frozen=True)
class _Query:
    label: str  # the file's path, or the hash as given
    values: dict[str, Any]  # signal -> what Matcher.match takes
    quality: int | None = None  # PDQ quality of a file's image


@app.command()
def match(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="Media files, directories (walked recursively), or hashes: hex (32 digits "
            "md5, 40 sha1, 64 pdq or sha256) or SIGNAL:HEX."
        ),
    ],
    names: Annotated[
        list[str],
        typer.Option("--list", "-l", help="A hash list in the database (repeat for several)."),
    ],
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also match images rotated or flipped.")
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
    database_url: DatabaseOption = None,
) -> None:
    """Match media or hashes against hash lists, each with its own thresholds; a file is hashed
    with every signal the lists hold. One line per match (jsonl: {"query", "list", "entry",
    "signal", "distance", "labels"}); text also says which queries did not match.

    Exit status: 0 if anything matched, 1 if nothing did, 2 on any error.
    """
    matcher = _matcher(names, min_quality, database_url)
    signals = matcher.signals()
    given = [q for q in queries if _HEX.fullmatch(q) and not os.path.lexists(q)]
    try:
        batch = [_hash_query(q, signals) for q in given]
    except InvalidSignalValue as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    files = list(expand(q for q in queries if q not in given))
    show = _match_writer(output)
    matched = low = 0
    tally = _Tally()
    with _output(len(files)) as out:

        def flush() -> None:
            nonlocal matched, low
            for query, found in zip(
                batch, matcher.match_all([q.values for q in batch]), strict=True
            ):
                matched += bool(found)
                below = query.quality is not None and query.quality < min_quality
                low += below
                out.write(show(query, found, below))
            batch.clear()

        flush()
        if signals and files:
            settings = HashSettings(signals, dihedral, quiet_decoders=True)
            for records in _hashed(files, settings, jobs, out, tally):
                batch.append(_file_query(records))
                if len(batch) >= _MATCH_BATCH:
                    flush()
            flush()
    if files and not signals:
        _error(f"note: {', '.join(names)} hold no entries that can match: no file was hashed")
    if low:
        _error(f"note: {low} image(s) of PDQ quality below {min_quality} not matched")
    tally.note_skipped(f"the lists hold only {', '.join(signals)} entries")
    raise typer.Exit(2 if tally.failed else 0 if matched else 1)


def _matcher(names: list[str], min_quality: int, url: str | None) -> Matcher:
    try:
        engine = open_engine(url)
    except DatabaseError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    try:
        return Matcher(ListStore(engine), names, min_quality)
    except ListError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None
    finally:
        engine.dispose()


def _hash_query(text: str, signals: tuple[str, ...]) -> _Query:
    """A hash given on the command line, as the values of every signal it can be."""
    found = _HEX.fullmatch(text)
    assert found is not None
    named, digits = found.groups()
    candidates = (named,) if named else _BY_LENGTH.get(len(digits), ())
    if not candidates:
        raise InvalidSignalValue(
            f"{text}: a hash has 32 (md5), 40 (sha1) or 64 (pdq, sha256) hex digits; "
            f"got {len(digits)}"
        )
    values: dict[str, Any] = {}
    for signal in candidates:
        value = registry.get(signal).parse(digits)
        if signal in signals:
            values[signal] = value
    return _Query(text, values)


def _file_query(records: list[HashRecord]) -> _Query:
    values: dict[str, Any] = {}
    quality = None
    for record in records:
        if record.signal == "pdq":
            quality = record.quality
            variants = record.dihedral or {"original": record.value}
            hashes = {name: PdqHash(bytes.fromhex(v), quality) for name, v in variants.items()}
            values["pdq"] = DihedralHashes(quality or 0, hashes)
        else:
            values[record.signal] = bytes.fromhex(record.value)
    return _Query(records[0].path, values, quality)


def _match_writer(output: OutputFormat) -> Callable[[_Query, list[Match], bool], str]:
    if output is OutputFormat.csv:
        sys.stdout.write("query,list,entry,signal,distance,labels\n")

    def write(query: _Query, found: list[Match], low: bool) -> str:
        if output is OutputFormat.jsonl:
            return "".join(
                json.dumps(
                    {
                        "query": query.label,
                        "list": m.list,
                        "entry": m.entry,
                        "signal": m.signal,
                        "distance": m.distance,
                        "labels": sorted(m.labels),
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for m in found
            )
        if output is OutputFormat.csv:
            buffer = io.StringIO()
            rows = csv.writer(buffer, lineterminator="\n")
            for m in found:
                rows.writerow([query.label, m.list, m.entry, m.signal, m.distance,
                               ";".join(sorted(m.labels))])  # fmt: skip
            return buffer.getvalue()
        lines = [
            f"{query.label}: match, list {m.list} entry {m.entry}, {m.signal} distance "
            f"{m.distance:g}" + (f" [{', '.join(sorted(m.labels))}]" if m.labels else "") + "\n"
            for m in found
        ]
        if low:
            lines.append(f"{query.label}: PDQ quality {query.quality} too low to match\n")
        elif not found:
            lines.append(f"{query.label}: no match\n")
        return "".join(lines)

    return write


@app.command()
def demo(
    save: Annotated[
        Path | None, typer.Option(help="Also write the sample images to this directory.")
    ] = None,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="Then start the service with the demo list (in ./hashguard-demo)."
        ),
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The service's port.")] = 8000,
) -> None:
    """Hash benign sample images, build a small list, and show which edited copies match; with
    --serve, then run the detection service on them and print what to try."""
    from hashguard.demo import explain_service, prepare_service, run

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 100)
    run(console, save)
    if serve:
        from hashguard.api import ServiceSettings
        from hashguard.cli_serve import run as run_service

        directory = Path("hashguard-demo").resolve()
        tokens = prepare_service(directory)
        explain_service(console, directory, f"http://127.0.0.1:{port}", tokens)
        url = f"sqlite:///{directory / 'hashguard.db'}"
        settings = ServiceSettings(database_url=url, secret_file=directory / "secret.key",
                                   public_url=f"http://127.0.0.1:{port}",
                                   oprf_key=directory / "device" / "oprf.key")  # fmt: skip
        run_service(settings, "127.0.0.1", port)


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
