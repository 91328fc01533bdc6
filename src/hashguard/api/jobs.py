"""Bulk jobs (list imports, signed releases) in a worker process of their own.

An import of 100,000 hashes is seconds of Python: in the service's process it would hold the
interpreter lock against every match request (measured: p99 several times higher, and requests
timing out). In a worker process it competes only for a core. The worker opens the same database;
the service then applies the job's changes to its Matcher from the change log, as it does for
changes made anywhere else.

A job's outcome is plain data (a dict, or the error message as a string): exceptions with their
own constructor arguments do not always survive the trip between processes.
"""

import asyncio
import multiprocessing
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hashguard.lists import keys as list_keys
from hashguard.lists import release as releases
from hashguard.lists.formats import labelled_csv, ncmec, plain, pytx, stopncii
from hashguard.lists.model import EntryStatus, Source
from hashguard.lists.records import InvalidRecord, Record, Submission
from hashguard.lists.transparency import LogError, TransparencyLog
from hashguard.store.database import open_engine
from hashguard.store.lists import ListError, ListStore

Job = TypeVar("Job")
Outcome = TypeVar("Outcome")


class BulkJobs:
    """One worker process, started on first use (jobs run one at a time, as the database
    writes them one at a time anyway)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def run(self, function: Callable[[Job], Outcome], job: Job) -> Outcome:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"))
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class ImportJob:
    database_url: str
    name: str
    path: str
    format: str
    signal: str | None
    source: str | None
    jurisdiction: str
    actor: str


def run_import(job: ImportJob) -> dict[str, Any] | str:
    """The import's counts, or the error message (nothing applied)."""
    engine = open_engine(job.database_url, migrate=False)
    skipped: Counter[str] = Counter()
    try:
        records = _records(Path(job.path), job, skipped)
        summary = ListStore(engine).apply(job.name, records, job.actor)
    except (InvalidRecord, ListError) as error:
        return str(error)
    finally:
        engine.dispose()
    return {**summary.counts(), "skipped": dict(skipped)}


def _records(path: Path, job: ImportJob, skipped: Counter[str]) -> Iterator[Record]:
    if job.format == "text":
        assert job.signal is not None
        for submission in plain.read(path, job.signal.lower()):
            if job.source:
                source = Source(job.source, job.jurisdiction)
                provenance = submission.provenance.with_sources([source])
                submission = Submission(submission.signal, submission.value,
                                        submission.labels, provenance)  # fmt: skip
            yield submission
    elif job.format == "csv":
        yield from labelled_csv.read(path)
    elif job.format == "pytx":
        yield from pytx.read(path, skipped)
    elif job.format == "ncmec":
        yield from ncmec.read(path, skipped)
    else:
        yield from stopncii.read(path, skipped)


@dataclass(frozen=True)
class ReleaseJob:
    database_url: str
    name: str
    key: str
    log: str
    directory: str


def run_release(job: ReleaseJob) -> dict[str, Any] | str:
    """The release's manifest and log position, or the error message."""
    engine = open_engine(job.database_url, migrate=False)
    try:
        owner_key = list_keys.load(Path(job.key))
        log_path = Path(job.log)
        log_key_path = log_path.with_name(log_path.name + ".key")
        if not log_key_path.exists():
            list_keys.generate(log_key_path)
        log_key = list_keys.load(log_key_path)
        log = TransparencyLog.create_or_open(log_path, log_key)
        hash_list, entries = ListStore(engine).entries(job.name, [EntryStatus.ACTIVE])
        out = Path(job.directory) / job.name / str(hash_list.version)
        manifest, index, head = releases.build(hash_list, entries, owner_key, log, log_key, out)
    except (list_keys.KeyFileError, LogError, releases.ReleaseError, ListError, OSError) as error:
        return str(error)
    finally:
        engine.dispose()
    return {"manifest": manifest, "log_index": index, "log_size": head.size,
            "directory": str(out)}  # fmt: skip
