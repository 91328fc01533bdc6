"""``hashguard scan``: every file of a directory or an object-store prefix hashed and matched
against stored lists, part by part, into Parquet rows; resumable (docs/scan.md)."""

import gc
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hashguard.cli.common import (
    DatabaseOption,
    Engine,
    ExitCode,
    RayAddressOption,
    echo_error,
    fail,
)

if TYPE_CHECKING:
    from hashguard.scan.detections import Reported, Reporter
    from hashguard.scan.results import Results


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
            "(local engine) \\[default: the machine's cores].",
            show_default=False,
        ),
    ] = None,
    address: RayAddressOption = None,
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
    check_source: Annotated[
        bool,
        typer.Option(
            "--check-source",
            help="On a resume, list the source again to say whether it changed since the "
            "scan began (the files listed then are scanned either way).",
        ),
    ] = False,
    accept_unreadable: Annotated[
        bool,
        typer.Option(
            "--accept-unreadable",
            help="Write the rows of a part none of whose many files may be read (access "
            "refused to each) as unreadable, rather than take it for the source's fault and "
            "stop.",
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
    report_patience: Annotated[
        float,
        typer.Option(
            "--report-patience",
            min=0,
            help="--report-to: seconds a report the service does not take yet (unreachable, "
            "busy, restarting) is tried again for before the scan stops (it resumes when run "
            "again).",
        ),
    ] = 600.0,
    min_quality: Annotated[
        int | None,
        typer.Option(
            "--min-quality",
            min=0,
            max=100,
            help="Media of lower quality is not matched \\[default: each signal's own].",
            show_default=False,
        ),
    ] = None,
    min_stability: Annotated[
        int | None,
        typer.Option(
            "--min-stability",
            min=0,
            max=100,
            help="Hashes less stable than this are not matched, as the service's "
            "min_stability \\[default: each signal's own].",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    database_url: DatabaseOption = None,
) -> None:
    """Scan a directory or an object-store prefix: one Parquet row per file (its hashes, its
    matches with list, entry and distance, or why it could not be hashed) under OUT/parts,
    and OUT/summary.json. A scan killed or stopped resumes where it was when run again.

    Exit status: 0 when the scan is complete, 1 when it could not be done, 2 for a usage
    error (an option missing or out of range).
    """
    if report_to is not None and not key:
        fail("--report-to needs --key (or HASHGUARD_API_KEY): the service's API key")
    if address is not None and engine is not Engine.ray:
        fail("--address is for --engine ray")
    if engine is Engine.ray and workers == 0:
        fail("--workers 0 (in this process) is for --engine local")
    if address is not None and workers is not None:
        fail("--workers is for a local Ray instance: with --address the cluster's CPUs are used")
    from hashguard.cli.matching import stored_matcher
    from hashguard.errors import HashguardError
    from hashguard.scan.results import Plan, Results, ScannedList, policy_digest
    from hashguard.scan.source import StoreReader, open_source
    from hashguard.scan.work import ScanSettings

    began = time.monotonic()
    try:
        place = open_source(source, endpoint_url)
    except HashguardError as error:
        fail(str(error))
    matcher = stored_matcher(names, min_quality, database_url, min_stability, ExitCode.FAILED)
    versions, variants = matcher.versions(), matcher.variant_families()
    reporter = _reporter(report_to, key, names, place.locate, report_patience)
    settings = ScanSettings(variants, versions, accept_unreadable=accept_unreadable)
    results = Results(out)
    lists = {h.name: ScannedList(h.id, versions[h.name], policy_digest(h.policy))
             for h in matcher.lists}  # fmt: skip
    endpoint = (
        place.reader.options.get("endpoint_url") if isinstance(place.reader, StoreReader) else None
    )
    target = report_to.rstrip("/") if report_to is not None else None
    plan = Plan(place.location, lists, part_size, min_quality, min_stability,
                tuple(sorted(variants)), endpoint, target)  # fmt: skip
    try:
        begun = results.begin(plan, place.files, restart, check_source)
    except HashguardError as error:
        fail(str(error))
    _notes(place.location, begun)
    done = results.done()
    todo = [(n, results.part_files(n, size)) for n, size in enumerate(begun.sizes) if n not in done]
    if done:
        echo_error(f"note: resuming: {len(done)} of {len(begun.sizes)} parts done before")
    count = workers if workers is not None else (os.cpu_count() or 1)
    gc.freeze()  # the Matcher's objects, untouched by the collector: forked workers share them
    run = _engine(engine, todo, place.reader, matcher, settings, count, address)
    try:
        scanned, reported = _drive(run, results, todo, sum(begun.sizes), reporter, quiet,
                                   begun.report_to is not None)  # fmt: skip
        summary = _summary(results, versions, engine, time.monotonic() - began, scanned)
        if reporter is not None:
            summary["reported"] = asdict(reported)
        results.write_summary(summary)
    except HashguardError as error:
        fail(str(error))
    finally:
        if reporter is not None:
            reporter.close()
    waiting = set(results.done()) - results.reported()
    if begun.report_to is not None and reporter is None and waiting:
        echo_error(f"note: {len(waiting)} parts' matches are not reported to {begun.report_to} "
                   "yet: run again with --report-to to report them")  # fmt: skip
    sent = "" if reporter is None else (
        f"; reported {reported.files} files now, the service matched {reported.matched}"
        + (f", {reported.too_large} too large to send" if reported.too_large else "")
    )  # fmt: skip
    echo_error(
        f"scanned {summary['files']} files: {summary['files_matched']} matched, "
        f"{summary['files_not_media']} not media, {sum(summary['errors'].values())} "
        f"errors{sent}; {out / 'summary.json'}"
    )
    raise typer.Exit(ExitCode.OK)


def _notes(location: str, begun: Any) -> None:
    """What a resume should know: the source or the lists changed since."""
    if begun.changed:
        echo_error(f"note: {location} has changed since this scan began: the files "
                   "listed then are scanned")  # fmt: skip
    if begun.moved:
        moved = ", ".join(f"{name}: {what}" for name, what in begun.moved.items())
        echo_error(f"note: lists changed since this scan's last run ({moved}): the parts left "
                   "are matched as they are now, the parts done keep what they were matched "
                   "with (--restart scans everything again)")  # fmt: skip


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
    report_to: str | None, key: str | None, names: list[str], locate: Any, patience: float
) -> "Reporter | None":
    """The reporter of ``--report-to``, its service, key and lists checked before any work."""
    if report_to is None:
        return None
    from hashguard.errors import HashguardError
    from hashguard.scan.detections import Reporter

    try:
        reporter = Reporter(report_to, key or "", names, locate, patience=patience,
                            waiting=lambda why: echo_error(f"note: {why}; trying again for up "
                                                           f"to {patience:g} s"))  # fmt: skip
        reporter.preflight()
    except HashguardError as error:
        fail(str(error))
    return reporter


def _drive(
    run: Any,
    results: "Results",
    todo: list[tuple[int, Any]],
    total: int,
    reporter: "Reporter | None",
    quiet: bool,
    reporting: bool,
) -> tuple[int, "Reported"]:
    """Write each part as it finishes, then report its matches with ``reporter`` (first the
    parts written before and not reported yet); without one, when the scan's matches are
    ``reporting`` somewhere, mark the parts without a match reported (nothing of them is
    waiting). The number of files scanned, and what was reported. Raises HashguardError."""
    from hashguard.cli import progress
    from hashguard.scan.detections import Reported
    from hashguard.scan.work import NOT_MEDIA_KIND

    reported = Reported()
    if reporter is not None:
        for number in sorted(results.done() - results.reported()):
            reported += _report(
                reporter, results, number, results.part_rows(number, ["key", "matches"])
            )
    before = total - sum(len(part) for _, part in todo)
    scanned = 0
    with progress.scanning(total, before, quiet) as shown:
        for number, rows in run:
            results.write_part(number, rows)  # a crash before it is reported: reported next run
            matched = sum(1 for m in rows["matches"].to_pylist() if m)
            if reporter is not None:
                reported += _report(reporter, results, number, rows)
            elif reporting and not matched:
                results.mark_reported(number)
            scanned += rows.num_rows
            kinds = rows["error_kind"].to_pylist()
            shown.errors += sum(1 for kind in kinds if kind not in (None, NOT_MEDIA_KIND))
            shown.matched += matched
            shown.advance(rows.num_rows)
    return scanned, reported


def _report(reporter: "Reporter", results: "Results", number: int, rows: Any) -> "Reported":
    """Report the matches of part ``number`` (``rows``), then mark it reported."""
    from hashguard.scan.detections import Reported

    sent = reporter.report(rows) if any(rows["matches"].to_pylist()) else Reported()
    results.mark_reported(number)
    return sent


def _summary(
    results: "Results", versions: dict[str, int], engine: Engine, seconds: float, scanned: int
) -> dict[str, Any]:
    from hashguard import __version__
    from hashguard.scan.results import error_counts
    from hashguard.scan.work import NOT_MEDIA_KIND

    counts = results.counts()
    return {
        "files": counts["files"],
        "bytes": counts["bytes"],
        "files_matched": counts["matched"],
        "matches_by_list": counts["by_list"],
        "files_not_media": counts["kinds"].get(NOT_MEDIA_KIND, 0),
        "errors": error_counts(counts["kinds"]),
        "lists": dict(sorted(versions.items())),
        # A resumed scan's earlier parts keep the versions they were matched against.
        "versions_used": counts["versions_used"],
        "hashguard": __version__,
        # This run's alone: a resumed scan's earlier runs are not counted.
        "this_run": {
            "engine": engine.value,
            "files": scanned,
            "seconds": round(seconds, 3),
            "files_per_second": round(scanned / seconds, 1) if seconds > 0 else None,
        },
    }
