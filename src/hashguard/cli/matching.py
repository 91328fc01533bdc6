"""``hashguard match``: media files or hashes matched against hash lists in the database."""

import csv
import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:  # the matching code and the store load when the command runs
    from hashguard.matching import Hashed, Match, Matcher, Query

_MATCH_BATCH = 256


@dataclass(frozen=True)
class _Labelled:
    label: str  # the file's path, or the hash as given
    query: "Query"


def match(
    queries: Annotated[
        list[str],
        typer.Argument(
            help="Files (media, or any file for its digests), directories (walked recursively), "
            "or hashes: SIGNAL:HEX, or bare hex read by its length ({hex_lengths}).",  # SignalHelp
        ),
    ],
    names: Annotated[
        list[str],
        typer.Option("--list", "-l", help="A hash list in the database (repeat for several)."),
    ],
    dihedral: Annotated[
        bool,
        typer.Option(
            "--dihedral",
            help="Also hash images rotated or flipped (they are whenever a list's policy lets "
            "those variants match it; the policy decides where they match).",
        ),
    ] = False,
    min_quality: Annotated[
        int | None,
        typer.Option(
            "--min-quality",
            min=0,
            max=100,
            help="Media of lower quality (little detail, e.g. flat images) is not matched "
            "\\[default: each signal's own; PDQ: 50].",
            show_default=False,
        ),
    ] = None,
    jobs: JobsOption = 1,
    output: FormatOption = (OutputFormat.text),
    database_url: DatabaseOption = None,
) -> None:
    """Match files or hashes against hash lists, each with its own thresholds; a file is hashed
    with every signal the lists hold, an image also turned, flipped, trimmed of flat borders
    and (640 px or less) enlarged where a list's policy lets those variants match it. One line
    per match (jsonl: {"query", "list", "entry", "signal", "distance", "labels"}, and
    "variant" when a variant matched); text also says which queries did not match.

    Exit status: 0 if anything matched, 1 if nothing did, 2 on any error.
    """
    from hashguard.matching import Query
    from hashguard.matching.query import parse_given
    from hashguard.signals import registry
    from hashguard.signals.base import InvalidSignalValue
    from hashguard.signals.batch import HashSettings, expand

    matcher = stored_matcher(names, min_quality, database_url)
    signals = matcher.signals()
    batch: list[_Labelled] = []
    files = []
    for text in queries:
        try:
            given = None if os.path.lexists(text) else parse_given(text)
        except (InvalidSignalValue, registry.UnknownSignal) as exc:
            fail(str(exc), ExitCode.ERROR)
        if given is None:
            files.append(text)
        else:
            batch.append(_Labelled(text, given.only(signals)))
    files = list(expand(files))
    show = _match_writer(output)
    matched = 0
    low: list[Hashed] = []
    tally = progress.Tally()
    with progress.output(len(files)) as out:

        def flush() -> None:
            nonlocal matched
            found_all = matcher.match_all([item.query for item in batch])
            for item, found in zip(batch, found_all, strict=True):
                matched += bool(found)
                below = item.query.too_low(min_quality)
                if below is not None:
                    low.append(below)
                out.write(show(item.label, found, below))
            batch.clear()

        flush()
        if signals and files:
            variants = matcher.variant_families()
            settings = HashSettings(signals, dihedral, quiet_decoders=True, variants=variants)
            for hashed in progress.hashed(files, settings, jobs, out, tally):
                batch.append(_Labelled(hashed.path, Query.of(hashed.values)))
                if len(batch) >= _MATCH_BATCH:
                    flush()
            flush()
    if files and not signals:
        echo_error(f"note: {', '.join(names)} hold no entries that can match: no file was hashed")
    if low:
        signal = low[0].signal
        floor = signal.min_quality if min_quality is None else min_quality
        echo_error(
            f"note: {len(low)} image(s) of {signal.name.upper()} quality below {floor} not matched"
        )
    tally.note_skipped(f"the lists hold only {', '.join(signals)} entries")
    if tally.failed:
        raise typer.Exit(ExitCode.ERROR)
    raise typer.Exit(ExitCode.OK if matched else ExitCode.NO_MATCH)


def stored_matcher(
    names: list[str],
    min_quality: int | None,
    url: str | None,
    min_stability: int | None = None,
    failed: ExitCode = ExitCode.ERROR,
) -> "Matcher":
    """A Matcher of the stored lists ``names``; fails the command (with ``failed``) for a
    database or a list that cannot be read."""
    from hashguard.matching import Matcher
    from hashguard.store.database import DatabaseError, open_engine
    from hashguard.store.list_errors import ListError
    from hashguard.store.lists import ListStore

    try:
        engine = open_engine(url)
    except DatabaseError as exc:
        fail(str(exc), failed)
    try:
        return Matcher(ListStore(engine), names, min_quality, min_stability)
    except ListError as exc:
        fail(str(exc), failed)
    finally:
        engine.dispose()


def _closeness(match: "Match") -> str:
    if match.shares is None:
        seen = "" if match.variant == "original" else f" as {match.variant}"
        return f"{match.signal} distance {match.distance:g}{seen}"
    query, listed = match.shares
    return (
        f"{match.signal}: {query:.0f} % of its frames in the listed video, "
        f"{listed:.0f} % of the listed video's in it"
    )


def _shares_json(match: "Match") -> dict[str, float | str]:
    if match.shares is None:
        return {} if match.variant == "original" else {"variant": match.variant}
    return {"query_percent": match.shares[0], "listed_percent": match.shares[1]}


def _match_writer(
    output: OutputFormat,
) -> Callable[[str, list["Match"], "Hashed | None"], str]:
    if output is OutputFormat.csv:
        sys.stdout.write("query,list,entry,signal,distance,labels\n")

    def write(label: str, found: list["Match"], low: "Hashed | None") -> str:
        if output is OutputFormat.jsonl:
            return "".join(
                json.dumps(
                    {
                        "query": label,
                        "list": m.list,
                        "entry": m.entry,
                        "signal": m.signal,
                        "distance": m.distance,
                        "labels": sorted(m.labels),
                        **_shares_json(m),
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
                rows.writerow([label, m.list, m.entry, m.signal, m.distance,
                               ";".join(sorted(m.labels))])  # fmt: skip
            return buffer.getvalue()
        lines = [
            f"{label}: match, list {m.list} entry {m.entry}, {_closeness(m)}"
            + (f" [{', '.join(sorted(m.labels))}]" if m.labels else "")
            + "\n"
            for m in found
        ]
        if low is not None:
            lines.append(f"{label}: {low.name.upper()} quality {low.quality} too low to match\n")
        elif not found:
            lines.append(f"{label}: no match\n")
        return "".join(lines)

    return write
