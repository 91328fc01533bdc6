"""``hashguard scan``: every file of a directory or an object-store prefix hashed and matched
against stored lists, part by part, into Parquet rows; resumable (docs/scan.md)."""

import gc
import os
import time
from collections import Counter
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashguard.cli.common import DatabaseOption, ExitCode, echo_error, fail

if TYPE_CHECKING:
    from hashguard.scan.detections import Reported, Reporter
    from hashguard.scan.results import Results


class Engine(StrEnum):
    local = "local"
    ray = "ray"


def scan(
    source: Annotated[
        str,
        typer.Argument(
            help="A directory, or an object-store prefix: s3://BUCKET/PREFIX (credentials "
            "from the standard AWS variables).",
            show_default=False,
        ),
    ],
    names: Annotated[
        list[str],
        typer.Option("--list", "-l", help="A hash list in the database (repeat for several)."),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The output directory: parts/*.parquet, summary.json.",
            file_okay=False,
        ),
    ],
    engine: Annotated[
        Engine,
        typer.Option(help="local: a process pool on this machine; ray: a Ray cluster."),
    ] = Engine.local,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=0,
            help="Worker processes (ray: CPUs of the local cluster); 0: in this process "
            "(local engine) [default: the machine's cores].",
            show_default=False,
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(help="ray: the address of a running cluster (else one starts locally)."),
    ] = None,
    part_size: Annotated[
        int, typer.Option("--part-size", min=1, help="Files per part (the unit of work).")
    ] = 1000,
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            envvar="AWS_ENDPOINT_URL",
            help="s3://: the endpoint of an S3-compatible store.",
        ),
    ] = None,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart",
            help="Remove the output directory's results and start again (it "
            "otherwise resumes the scan it holds, and refuses another).",
        ),
    ] = False,
    report_to: Annotated[
        str | None,
        typer.Option(
            "--report-to",
            help="A hashguard service's URL: each matched file is reported as an upload "
            "check would be (with a service's key: a detection for review, once per file).",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", envvar="HASHGUARD_API_KEY", help="--report-to: the API key."),
    ] = None,
    min_quality: Annotated[
        int | None,
        typer.Option(
            "--min-quality",
            min=0,
            max=100,
            help="Media of lower quality is not matched [default: each signal's own].",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Scan a directory or an object-store prefix: one Parquet row per file (its hashes, its
    matches with list, entry and distance, or why it could not be hashed) under OUT/parts,
    and OUT/summary.json. A scan killed or stopped resumes where it was when run again.

    Exit status: 0 when the scan is complete, 1 when it could not be done.
    """
    if report_to is not None and not key:
        fail("--report-to needs --key (or HASHGUARD_API_KEY): the service's API key")
    if address is not None and engine is not Engine.ray:
        fail("--address is for --engine ray")
    if engine is Engine.ray and workers == 0:
        fail("--workers 0 (in this process) is for --engine local")
    from hashguard.cli.matching import stored_matcher
    from hashguard.errors import HashguardError
    from hashguard.scan.results import Plan, Results, ScannedList
    from hashguard.scan.source import open_source
    from hashguard.scan.work import ScanSettings

    began = time.monotonic()
    try:
        place = open_source(source, endpoint_url)
    except HashguardError as error:
        fail(str(error))
    matcher = stored_matcher(names, min_quality, database_url)
    versions = matcher.versions()
    reporter = _reporter(report_to, key, names, place.locate)
    settings = ScanSettings(matcher.variant_families(), versions)
    results = Results(out)
    try:
        files = place.files()
        lists = {h.name: ScannedList(h.id, versions[h.name]) for h in matcher.lists}
        plan = Plan(place.location, lists, part_size, min_quality)
        begun = results.begin(plan, files, restart)
    except HashguardError as error:
        fail(str(error))
    if begun.changed:
        echo_error(f"note: {place.location} has changed since this scan began: the files "
                   "listed then are scanned")  # fmt: skip
    if begun.moved:
        moved = ", ".join(f"{name}: {then} -> {now}" for name, (then, now) in begun.moved.items())
        echo_error(f"note: lists changed since this scan's last run ({moved}): the parts left "
                   "are matched against their versions now, the parts done keep theirs "
                   "(--restart scans everything again)")  # fmt: skip
    done = results.done()
    todo = [(n, part) for n, part in enumerate(begun.parts) if n not in done]
    if done:
        echo_error(f"note: resuming: {len(done)} of {len(begun.parts)} parts done before")
    count = workers if workers is not None else (os.cpu_count() or 1)
    gc.freeze()  # the Matcher's objects, untouched by the collector: forked workers share them
    run = _engine(engine, todo, place.reader, matcher, settings, count, address)
    scanned, reported = _drive(run, results, todo, begun.parts, reporter, quiet)
    seconds = time.monotonic() - began
    summary = _summary(results, versions, engine, seconds, scanned)
    if reporter is not None:
        summary["reported"] = asdict(reported)
    results.write_summary(summary)
    sent = "" if reporter is None else (
        f"; reported {reported.files} files now, the service matched {reported.matched}"
        + (f", {reported.too_large} too large to send" if reported.too_large else "")
    )  # fmt: skip
    echo_error(
        f"scanned {summary['files']} files: {summary['files_matched']} matched, "
        f"{sum(summary['errors'].values())} errors{sent}; {out / 'summary.json'}"
    )
    raise typer.Exit(ExitCode.OK)


def _engine(
    engine: Engine,
    todo: list[tuple[int, Any]],
    reader: Any,
    matcher: Any,
    settings: Any,
    workers: int,
    address: str | None,
) -> Any:
    if engine is Engine.ray:
        from hashguard.cluster.scan import scan_on_ray

        return scan_on_ray(todo, reader, matcher, settings, workers, address)
    from hashguard.scan.pool import scan_locally

    return scan_locally(todo, reader, matcher, settings, workers)


def _reporter(
    report_to: str | None, key: str | None, names: list[str], locate: Any
) -> "Reporter | None":
    """The reporter of ``--report-to``, its service, key and lists checked before any work."""
    if report_to is None:
        return None
    from hashguard.errors import HashguardError
    from hashguard.scan.detections import Reporter

    try:
        reporter = Reporter(report_to, key or "", names, locate)
        reporter.preflight()
    except HashguardError as error:
        fail(str(error))
    return reporter


def _drive(
    run: Any,
    results: "Results",
    todo: list[tuple[int, Any]],
    parts: list[Any],
    reporter: "Reporter | None",
    quiet: bool,
) -> tuple[int, "Reported"]:
    """Write each part as it finishes (reported first, with a ``reporter``); the number of
    files scanned, and what was reported."""
    from hashguard.cli import progress
    from hashguard.errors import HashguardError
    from hashguard.scan.detections import Reported

    total = sum(len(part) for part in parts)
    before = total - sum(len(part) for _, part in todo)
    scanned, reported = 0, Reported()
    try:
        with progress.scanning(total, before, quiet) as shown:
            for number, rows in run:
                if reporter is not None:  # before the part is written: a crash reports again
                    reported += reporter.report(rows)
                results.write_part(number, rows)
                scanned += rows.num_rows
                shown.errors += rows.num_rows - rows["error"].null_count
                shown.matched += sum(1 for m in rows["matches"].to_pylist() if m)
                shown.advance(rows.num_rows)
    except HashguardError as error:
        fail(str(error))
    finally:
        if reporter is not None:
            reporter.close()
    return scanned, reported


def _summary(
    results: "Results", versions: dict[str, int], engine: Engine, seconds: float, scanned: int
) -> dict[str, Any]:
    from hashguard import __version__

    rows = results.rows()
    errors = Counter(kind for kind in rows["error_kind"].to_pylist() if kind is not None)
    matches = rows["matches"].to_pylist()
    by_list = Counter(name for found in matches for name in {m["list"] for m in found})
    return {
        "files": rows.num_rows,
        "bytes": sum(rows["size"].to_pylist()),
        "files_matched": sum(1 for found in matches if found),
        "matches_by_list": dict(sorted(by_list.items())),
        "errors": dict(sorted(errors.items())),
        "lists": dict(sorted(versions.items())),
        # A resumed scan's earlier parts keep the versions they were matched against.
        "versions_used": results.versions_used(),
        "hashguard": __version__,
        "engine": engine.value,
        "scanned_now": scanned,
        "seconds": round(seconds, 3),
        "files_per_second": round(scanned / seconds, 1) if seconds > 0 else None,
    }
