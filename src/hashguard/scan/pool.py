"""The local engine, the reference: parts scanned by a pool of worker processes on this machine,
or in this process (``workers=0``). Forked workers inherit the Matcher instead of each loading
the lists; elsewhere (spawn) they get a copy of it."""

import multiprocessing
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pyarrow as pa
from threadpoolctl import threadpool_limits

from hashguard.errors import Unavailable
from hashguard.matching import Matcher
from hashguard.scan.source import Reader, StoredFile
from hashguard.scan.work import ScanSettings, scan_part
from hashguard.signals.batch import load_kernels

_IN_FLIGHT_PER_WORKER = 2
# What a worker scans with, set once when it starts.
_WORK: dict[str, Any] = {}


class WorkerLost(Unavailable):
    """A worker process died (a decoder crash, the kernel's OOM killer): the parts it had are
    not written; running the scan again resumes with them."""


def scan_locally(
    parts: Sequence[tuple[int, Sequence[StoredFile]]],
    reader: Reader,
    matcher: Matcher,
    settings: ScanSettings,
    workers: int,
) -> Iterator[tuple[int, pa.Table]]:
    """Each part (number, files) scanned, as (number, rows), in the order they finish.
    Raises WorkerLost when a worker process dies."""
    with threadpool_limits(limits=1, user_api="blas"):  # files are the unit of parallelism
        if workers <= 0:
            for number, files in parts:
                yield number, scan_part(files, reader, matcher, settings)
            return
        load_kernels()
        yield from _in_pool(parts, reader, matcher, settings, workers)


def _in_pool(
    parts: Sequence[tuple[int, Sequence[StoredFile]]],
    reader: Reader,
    matcher: Matcher,
    settings: ScanSettings,
    workers: int,
) -> Iterator[tuple[int, pa.Table]]:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start, initargs=(reader, matcher, settings)
    )
    waiting = list(reversed(parts))
    running: dict[Future[pa.Table], int] = {}
    try:
        while waiting or running:
            while waiting and len(running) < _IN_FLIGHT_PER_WORKER * workers:
                number, files = waiting.pop()
                running[pool.submit(_scan, files)] = number
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                number = running.pop(future)
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    raise WorkerLost(
                        f"a worker process died while scanning part {number}: "
                        "run the scan again to resume"
                    ) from None
                yield number, rows
    except BaseException:  # interrupted, or the caller stopped: end the workers now
        workers_left = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers_left:
            process.terminate()
        raise
    pool.shutdown()


def _start(reader: Reader, matcher: Matcher, settings: ScanSettings) -> None:
    # Ctrl-C is the driver's to handle: it stops the workers, which print no tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(limits=1, user_api="blas")
    _WORK.update(reader=reader, matcher=matcher, settings=settings)


def _scan(files: Sequence[StoredFile]) -> pa.Table:
    return scan_part(files, _WORK["reader"], _WORK["matcher"], _WORK["settings"])
