"""``hashguard match``: media files or hashes matched against hash lists in the database."""

import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from hashguard.cli import progress
from hashguard.cli.common import (
    DatabaseOption,
    ExitCode,
    FormatOption,
    JobsOption,
    OutputFormat,
    echo_error,
    fail,
)
from hashguard.matching import Match, Matcher
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue
from hashguard.signals.batch import HashRecord, HashSettings, expand
from hashguard.signals.pdq import MIN_QUALITY, DihedralHashes, PdqHash
from hashguard.store.database import DatabaseError, open_engine
from hashguard.store.lists import ListError, ListStore

_MATCH_BATCH = 256
# Hashes given on the command line: SIGNAL:HEX, or bare hex whose length says the signals.
_BY_LENGTH = {32: ("md5",), 40: ("sha1",), 64: ("pdq", "sha256", "canonical_sha256")}
_HEX = re.compile(r"(?:(pdq|md5|sha1|sha256|canonical_sha256):)?([0-9a-fA-F]+)")


@dataclass(frozen=True)
class _Query:
    label: str  # the file's path, or the hash as given
    values: dict[str, Any]  # signal -> what Matcher.match takes
    quality: int | None = None  # PDQ quality of a file's image


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
    jobs: JobsOption = 1,
    output: FormatOption = (OutputFormat.text),
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
        fail(str(exc), ExitCode.ERROR)
    files = list(expand(q for q in queries if q not in given))
    show = _match_writer(output)
    matched = low = 0
    tally = progress.Tally()
    with progress.output(len(files)) as out:

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
            for records in progress.hashed(files, settings, jobs, out, tally):
                batch.append(_file_query(records))
                if len(batch) >= _MATCH_BATCH:
                    flush()
            flush()
    if files and not signals:
        echo_error(f"note: {', '.join(names)} hold no entries that can match: no file was hashed")
    if low:
        echo_error(f"note: {low} image(s) of PDQ quality below {min_quality} not matched")
    tally.note_skipped(f"the lists hold only {', '.join(signals)} entries")
    if tally.failed:
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.OK if matched else ExitCode.NO_MATCH)


def _matcher(names: list[str], min_quality: int, url: str | None) -> Matcher:
    try:
        engine = open_engine(url)
    except DatabaseError as exc:
        fail(str(exc), ExitCode.ERROR)
    try:
        return Matcher(ListStore(engine), names, min_quality)
    except ListError as exc:
        fail(str(exc), ExitCode.ERROR)
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
