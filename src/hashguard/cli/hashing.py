"""``hashguard hash`` and ``hashguard compare``: hash files, or compare two files per signal."""

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashguard.cli import progress
from hashguard.cli.common import ExitCode, FormatOption, JobsOption, OutputFormat, fail

if TYPE_CHECKING:  # the hashing code loads when a command runs
    from hashguard.media.formats import MediaKind
    from hashguard.signals.base import Comparison, SignalType
    from hashguard.signals.batch import HashRecord


def _finite(low: float, high: float) -> Callable[[float | None], float | None]:
    """A typer callback accepting numbers from ``low`` to ``high`` (no nan or infinity)."""

    def check(value: float | None) -> float | None:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"expected a number from {low:g} to {high:g}, got {value}")
        return value

    return check


def _signal_names(value: str | None) -> tuple[str, ...]:
    from hashguard.signals import registry

    if not value:
        return ()
    names = tuple(n.strip().lower() for n in value.split(",") if n.strip())
    for name in names:
        try:
            registry.get(name)
        except registry.UnknownSignal as exc:
            raise typer.BadParameter(str(exc)) from None
    return names


def hash_command(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and directories (walked recursively).")
    ],
    signal: Annotated[
        str | None,
        typer.Option(
            "--signal",
            "-s",
            help="Comma-separated signals ({signals}); default all but those computed on "
            "request ({on_request}: a full decode).",  # filled in by SignalHelp
        ),
    ] = None,
    dihedral: Annotated[
        bool, typer.Option("--dihedral", help="Also print the 8 rotation/flip PDQ hashes.")
    ] = False,
    jobs: JobsOption = 1,
    output: FormatOption = (OutputFormat.jsonl),
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
    from hashguard.signals.batch import HashSettings, expand

    names = _signal_names(signal)
    settings = HashSettings(names, dihedral, video_per_second=video_rate, quiet_decoders=True)
    files = list(expand(str(p) for p in paths))
    writer = _writer(output)
    tally = progress.Tally()
    with progress.output(len(files)) as out:
        for hashed in progress.hashed(files, settings, jobs, out, tally):
            out.write("".join(writer(record) for record in hashed.records()))
    tally.note_skipped(f"no requested signal ({','.join(names)}) applies")
    if tally.failed:
        raise typer.Exit(ExitCode.FAILED)


def _writer(output: OutputFormat) -> Any:
    if output is OutputFormat.jsonl:
        return _jsonl
    if output is OutputFormat.csv:
        sys.stdout.write("path,signal,value,quality\n")
        return _csv
    return _text


def _rows(record: "HashRecord") -> Iterator[tuple[str, str, int | None]]:
    yield record.signal, record.value, record.quality
    for name, value in (record.dihedral or {}).items():
        if name != "original":
            yield f"{record.signal}:{name}", value, record.quality


def _jsonl(record: "HashRecord") -> str:
    line: dict[str, Any] = {"path": record.path, "signal": record.signal, "value": record.value}
    if record.quality is not None:
        line["quality"] = record.quality
    if record.frames is not None:
        line["frames"] = record.frames
    if record.dihedral is not None:
        line["dihedral"] = record.dihedral
    return json.dumps(line, ensure_ascii=False) + "\n"


def _csv(record: "HashRecord") -> str:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    for signal, value, quality in _rows(record):
        out.writerow([record.path, signal, value, "" if quality is None else quality])
    return buffer.getvalue()


def _text(record: "HashRecord") -> str:
    lines = []
    for signal, value, quality in _rows(record):
        shown = "-" if quality is None else str(quality)
        for part in value.splitlines():  # vpdq: one line per frame
            lines.append(f"{signal}\t{part}\t{shown}\t{record.path}\n")
    return "".join(lines)


def compare(
    first: Annotated[
        Path, typer.Argument(help="A file: images and videos also compare perceptually.")
    ],
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
    """Compare two files: per signal, the distance and whether it is a match.

    Exit status: 0 if any signal matched, 1 if none did, 2 if they could not be compared.
    """
    from hashguard.signals import registry
    from hashguard.signals.vpdq import VpdqSignal

    try:
        kinds = {path: _kind(path) for path in (first, second)}
        if kinds[first] is not kinds[second]:
            message = f"{first} is {kinds[first]} and {second} is {kinds[second]}"
            fail(f"{message}: nothing to compare", ExitCode.ERROR)
        signals = [
            VpdqSignal(frame_threshold=threshold)
            if isinstance(s, VpdqSignal) and threshold is not None
            else s
            for s in registry.for_media(kinds[first])
        ]
        values = {path: dict(_values(path, signals)) for path in (first, second)}
    except _FileError as exc:
        fail(str(exc), ExitCode.ERROR)
    matched = False
    for label, comparison in _compare(signals, values[first], values[second], threshold):
        matched |= comparison.match
        if output is OutputFormat.text:
            verdict = "MATCH" if comparison.match else "no match"
            typer.echo(f"{label:<16} {verdict:<9} {comparison.reason}")
        else:
            typer.echo(json.dumps(_comparison_json(label, comparison)))
    raise typer.Exit(ExitCode.OK if matched else ExitCode.NO_MATCH)


class _FileError(Exception):
    """A file could not be read or hashed; the message names it."""


def _kind(path: Path) -> "MediaKind":
    from hashguard.media.errors import MediaError
    from hashguard.media.formats import SNIFF_BYTES, file_kind

    try:
        with open(path, "rb") as stream:
            return file_kind(stream.read(SNIFF_BYTES))  # any file: its digests compare
    except MediaError as exc:
        raise _FileError(f"{path}: {exc}") from None
    except OSError as exc:
        raise _FileError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _values(path: Path, signals: list["SignalType[Any]"]) -> list[tuple[str, Any]]:
    from hashguard.signals.batch import FileFailure, FileSkipped, checked_values

    pairs = checked_values(
        str(path), signals, variants=frozenset({"dihedral"}), quiet_decoders=True
    )
    if isinstance(pairs, FileFailure):
        raise _FileError(f"{path}: {pairs.reason}")
    if isinstance(pairs, FileSkipped):  # cannot happen: every kind has signals
        raise _FileError(f"{path}: no signal applies to {pairs.kind} files")
    if pairs.undecodable is not None:  # its digests alone would compare it as another kind
        raise _FileError(f"{path}: {pairs.undecodable}")
    return [(signal.name, value) for signal, value in pairs.values]


def _compare(
    signals: list["SignalType[Any]"],
    first: dict[str, Any],
    second: dict[str, Any],
    threshold: float | None,
) -> Iterator[tuple[str, "Comparison"]]:
    from hashguard.signals.pdq import PdqSignal

    for signal in signals:
        a, b = first[signal.name], second[signal.name]
        if isinstance(signal, PdqSignal):
            yield signal.name, signal.compare(a.original, b.original, threshold)
            name, best = min(b.variants.items(), key=lambda item: item[1].distance(a.original))
            yield f"pdq ({name})", signal.compare(a.original, best, threshold)
        else:
            yield signal.name, signal.compare(a, b)


def _comparison_json(label: str, comparison: "Comparison") -> dict[str, Any]:
    from hashguard.signals.vpdq import VpdqComparison

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
