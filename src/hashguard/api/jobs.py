"""Bulk jobs (list imports, signed releases) in a process of their own.

An import of 100,000 hashes is seconds of Python: in the service's process it would hold the
interpreter lock against every match request (measured: p99 several times higher, and requests
timing out). In a process of its own, below the service's priority, it competes only for a core,
and yields it to the service's threads. The job opens the same database; once an import is done,
the service applies its changes to its Matcher from the change log (``imported``), before the
request that asked for it is answered.

The job goes to ``python -m hashguard.api.jobs`` as JSON on its stdin, and its outcome (a JSON
object, or the error message as a string) comes back on its stdout: no pickle, not even between
hashguard's own processes.
"""

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from hashguard.lists import release as releases
from hashguard.lists.formats import reader
from hashguard.lists.model import EntryStatus
from hashguard.lists.records import InvalidRecord
from hashguard.store.database import open_engine
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore
from hashguard.transparency import keys as list_keys
from hashguard.transparency.log import LogError, TransparencyLog

# How far below the service a job runs (nice): its seconds of CPU yield to the requests being
# answered (an import takes longer while the service is busy).
JOB_NICENESS: Final = 10
_LOWEST: Final = 19


class BulkJobs:
    """Runs jobs one at a time (the database writes them one at a time anyway); after an
    import, ``imported`` (on a worker thread) brings the service's Matcher up to the store."""

    def __init__(self, imported: Callable[[], None]) -> None:
        self._one = asyncio.Lock()
        self._imported = imported

    @property
    def running(self) -> bool:
        return self._one.locked()

    async def run(self, job: "ImportJob | ReleaseJob") -> dict[str, Any] | str:
        """The job's outcome: its result, or the message of the error that stopped it."""
        request = json.dumps({"kind": type(job).__name__, "job": asdict(job)}).encode()
        async with self._one:
            launch = _Launch()
            spawned = asyncio.ensure_future(asyncio.to_thread(_spawned, request, launch.started))
            try:
                process = await asyncio.shield(spawned)
            except asyncio.CancelledError:  # the request, or the service, stops: so does the job
                launch.cancel()  # (nothing applied: an import commits at once)
                while not spawned.done():  # the next job waits until it has ended
                    with contextlib.suppress(asyncio.CancelledError):  # (cancelled again)
                        await asyncio.wait([spawned])
                spawned.exception()  # retrieved: it is the cancel that is told
                raise
        if process.returncode != 0:
            lines = process.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"the {type(job).__name__} process failed: "
                               f"{(lines[-1:] or ['no output'])[0]}")  # fmt: skip
        outcome: dict[str, Any] | str = json.loads(process.stdout)
        if isinstance(job, ImportJob) and not isinstance(outcome, str):  # a str: nothing applied
            await asyncio.to_thread(self._imported)
        return outcome


class _Launch:
    """One job's process, and whether its request was cancelled: from the cancel on, the
    process is killed, whether it had started then or starts later (it waits for its request
    on stdin, so nothing runs before ``started``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._cancelled = False

    def started(self, process: "subprocess.Popen[bytes]") -> None:
        with self._lock:
            self._process = process
            if self._cancelled:
                process.kill()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._process is not None:
                self._process.kill()


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
        records = reader.read(Path(job.path), job.format, job.signal, job.source,
                              job.jurisdiction, skipped)  # fmt: skip
        summary = ListStore(engine).apply(job.name, records, job.actor)
    except (InvalidRecord, ListError) as error:
        return str(error)
    finally:
        engine.dispose()
    return {**summary.counts(), "skipped": dict(skipped)}


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


def _spawned(
    request: bytes, started: Callable[["subprocess.Popen[bytes]"], None]
) -> "subprocess.CompletedProcess[bytes]":
    """``python -m hashguard.api.jobs`` given ``request``, run to its end JOB_NICENESS below
    the service (``started`` is given the process). Called on a worker thread: CPython's
    ``subprocess`` starts the process with vfork, where the event loop's own (uvloop's,
    libuv's) forks the whole service, page tables and all, and held every request up
    meanwhile (measured: 0.1 s at 1M hashes)."""
    with subprocess.Popen(
        [sys.executable, "-m", "hashguard.api.jobs"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:  # fmt: skip
        started(process)
        lower = min(_LOWEST, os.getpriority(os.PRIO_PROCESS, 0) + JOB_NICENESS)
        with contextlib.suppress(OSError):  # ended already
            os.setpriority(os.PRIO_PROCESS, process.pid, lower)
        out, err = process.communicate(request)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def main() -> None:
    """Run the job given on stdin; write its outcome to stdout."""
    request = json.load(sys.stdin)
    if request["kind"] == "ImportJob":
        outcome = run_import(ImportJob(**request["job"]))
    else:
        outcome = run_release(ReleaseJob(**request["job"]))
    json.dump(outcome, sys.stdout)


if __name__ == "__main__":
    main()
