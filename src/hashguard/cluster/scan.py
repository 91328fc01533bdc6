"""The scan's Ray engine: one Ray task per part, each running ``scan_part``. The Matcher is put
once into the object store, and each worker process gets it once, for its first part, then
keeps it for the parts that follow (a task is given the reference inside a list, so Ray does
not resolve it for every task). Its index and entries are numpy arrays
(``Matcher.__getstate__``) that Ray maps from the node's object store into the worker, not
copies: a node holds them once. A task whose worker dies, or whose node is lost, or that found
the source unavailable, runs again (``max_retries``); the driver takes each part's rows as it
finishes (``ray.wait``), to write them.

A part whose worker died every time (a decoder fault, the kernel's OOM killer, or Ray's memory
monitor, which fails the task with OutOfMemoryError) does not end the scan, as on the local
engine: its files are hashed again in a task each, and a file whose task dies
again is hashed around the crash (``hashed_around_crash``: an error row, ``crashed``, with the
hashes of the signals that do not crash); the part's matches are then found by the driver."""

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast

import pyarrow as pa

from hashguard.errors import Unavailable
from hashguard.matching import Matcher
from hashguard.scan.source import Reader, SourceUnavailable, StoredFile
from hashguard.scan.work import (
    Hashed,
    ScanSettings,
    hash_stored,
    hashed_around_crash,
    part_rows,
    scan_part,
)
from hashguard.signals.batch import WorkerCrashed

# Each part's task runs again when its worker process or node dies, or the source was
# unavailable, up to this many times; a file's task, once its part's worker died every time.
RETRIES: Final = 5
FILE_RETRIES: Final = 1
_IN_FLIGHT_PER_CPU = 2
# In a worker process: the Matcher of the scan under way, by its object reference's id.
_MATCHER: dict[str, Matcher] = {}


class RayMissing(Unavailable):
    """``--engine ray`` without Ray installed."""


class RayUnavailable(Unavailable):
    """No Ray cluster at the address given, or a part failed on every attempt."""


def _ray() -> Any:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reporting home from a scan
    try:
        import ray
    except ImportError:
        raise RayMissing("--engine ray needs Ray: pip install 'hashguard[ray]'") from None
    return ray


def scan_on_ray(
    parts: Sequence[tuple[int, Sequence[StoredFile]]],
    reader: Reader,
    matcher: Matcher,
    settings: ScanSettings,
    workers: int,
    address: str | None = None,
    loads: Counter[int] | None = None,
) -> Iterator[tuple[int, pa.Table]]:
    """Each part (number, files) scanned on Ray, as (number, rows), in the order they finish.
    Connects to the cluster at ``address``, else starts a local one of ``workers`` CPUs (a
    connection this process has already is used as it is). ``loads`` counts, per worker
    process id, the times it loaded the Matcher (once each). With no part, Ray is not started.
    Raises RayMissing, RayUnavailable, SourceUnavailable."""
    if not parts:
        return
    ray = _ray()
    started = _connect(ray, address, workers)
    running: dict[Any, tuple[int, Sequence[StoredFile]]] = {}
    try:
        retried = [SourceUnavailable]
        remote = ray.remote(num_cpus=1, max_retries=RETRIES, retry_exceptions=retried)(_scan_part)
        shared = [ray.put(matcher)]  # in a list: each task gets the reference, not a copy
        waiting = list(reversed(parts))
        window = _IN_FLIGHT_PER_CPU * max(1, int(ray.cluster_resources().get("CPU", 1)))
        while waiting or running:
            while waiting and len(running) < window:
                number, files = waiting.pop()
                running[remote.remote(list(files), reader, shared, settings)] = number, files
            [finished], _ = ray.wait(list(running), num_returns=1)
            number, files = running.pop(finished)
            try:
                rows, worker, loaded = _taken(ray, finished, f"part {number}")
            except WorkerCrashed:  # its worker died every time: a file of it that kills it?
                yield number, _by_file(ray, files, reader, matcher, settings)
                continue
            if loads is not None and loaded:
                loads[worker] += 1
            yield number, rows
    finally:
        if started:
            ray.shutdown()
        else:  # a cluster that goes on: stop what this scan left running on it
            for ref in running:
                ray.cancel(ref, force=False)


def _connect(ray: Any, address: str | None, workers: int) -> bool:
    """Whether this started the connection (and so ends it)."""
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            # "local": a new instance of this scan's own, never another cluster of this machine
            # (Ray would otherwise join the last one started here, or RAY_ADDRESS's).
            ray.init(address="local", num_cpus=max(1, workers), **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"at {address}" if address else "locally"
        raise RayUnavailable(f"cannot start Ray {where}: {' '.join(str(error).split())}") from None
    return True


def _taken(ray: Any, task: Any, what: str) -> Any:
    """What ``task`` (``what``: its part or file) returned. Raises WorkerCrashed when its
    worker process died every time it ran (or Ray's memory monitor killed it: the task may
    be a file too large for a worker's memory), SourceUnavailable, RayUnavailable."""
    try:
        return ray.get(task)
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError):
        raise WorkerCrashed(what) from None
    except ray.exceptions.RayTaskError as error:  # the task's own, after its retries
        if isinstance(error.cause, SourceUnavailable):
            raise error.cause from None
        if isinstance(error.cause, WorkerCrashed):  # out of memory: as if its worker had died
            raise WorkerCrashed(what) from None
        raise RayUnavailable(
            f"{what} failed on Ray: {type(error.cause).__name__}: "
            f"{' '.join(str(error.cause).split())[:300]}"
        ) from None
    except ray.exceptions.RayError as error:  # its node lost every time
        raise RayUnavailable(
            f"{what} failed on Ray: its worker or node was lost every time it ran "
            f"({type(error).__name__}); run the scan again to resume"
        ) from None


def _by_file(
    ray: Any,
    files: Sequence[StoredFile],
    reader: Reader,
    matcher: Matcher,
    settings: ScanSettings,
) -> pa.Table:
    """The rows of a part whose task's worker died every time: each file hashed in a task
    of its own, a file whose task dies again hashed around the crash (the error
    ``crashed``), and the part's matches found here."""
    retried = [SourceUnavailable]
    remote = ray.remote(num_cpus=1, max_retries=FILE_RETRIES, retry_exceptions=retried)(_hash)
    tasks = [remote.remote(file, reader, settings, ()) for file in files]
    hashed = []
    try:
        for file, task in zip(files, tasks, strict=True):

            def alone(signals: tuple[str, ...], file: StoredFile = file) -> Hashed:
                task = remote.remote(file, reader, settings, signals)
                return cast(Hashed, _taken(ray, task, f"file {file.key}"))

            try:
                hashed.append(_taken(ray, task, f"file {file.key}"))
            except WorkerCrashed:
                hashed.append(hashed_around_crash(settings, alone))
    finally:
        for task in tasks:  # after a failure: none left running (no-op for those done)
            ray.cancel(task, force=False)
    return part_rows(files, hashed, matcher, settings)


def _hash(
    file: StoredFile, reader: Reader, settings: ScanSettings, signals: tuple[str, ...]
) -> Hashed:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return hash_stored(file, reader, settings, signals)


def _scan_part(
    files: list[StoredFile], reader: Reader, shared: list[Any], settings: ScanSettings
) -> tuple[pa.Table, int, bool]:
    """A part's rows, this worker's process id, and whether it loaded the Matcher for it."""
    import ray
    from threadpoolctl import threadpool_limits

    [ref] = shared
    loaded = ref.hex() not in _MATCHER
    if loaded:
        _MATCHER.clear()  # a worker kept from an earlier scan holds no other lists
        _MATCHER[ref.hex()] = ray.get(ref)
    with threadpool_limits(limits=1, user_api="blas"):
        rows = scan_part(files, reader, _MATCHER[ref.hex()], settings)
    return rows, os.getpid(), loaded
