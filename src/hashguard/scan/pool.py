"""The local engine, the reference: parts scanned by a pool of worker processes on this machine,
or in this process (``workers=0``: a file that runs out of memory is hashed around it there,
so that it alone is an error row). Forked workers inherit the Matcher instead of each loading
the lists; elsewhere (spawn) they get a copy of it.

A worker that dies (a decoder fault) does not end the scan: as ``hash_paths`` does for files,
the parts it may have taken down run again in a fresh pool (in halves while a worker dies
again), and only a part that kills its worker again on its own, or runs out of memory, runs
alone; that part has its files hashed in worker processes again, the same way, so that only the
file that crashes its decoder becomes an error row (``crashed``, naming the signals whose
decoding crashes), with the hashes of every signal that does not."""

from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any, Final

import pyarrow as pa
from threadpoolctl import threadpool_limits

from hashguard.matching import Matcher
from hashguard.scan.source import Reader, StoredFile
from hashguard.scan.work import (
    Hashed,
    ScanSettings,
    hash_stored,
    hashed_around_crash,
    part_rows,
    scan_part,
)
from hashguard.signals.batch import (
    OutOfMemory,
    WorkerCrashed,
    init_worker,
    isolated_map,
    load_kernels,
    run_alone,
)

Part = tuple[int, Sequence[StoredFile]]
_IN_FLIGHT_PER_WORKER: Final = 2
# What a worker scans with, set once when it starts.
_WORK: dict[str, Any] = {}


def scan_locally(
    parts: Sequence[Part], reader: Reader, matcher: Matcher, settings: ScanSettings, workers: int
) -> Iterator[tuple[int, pa.Table]]:
    """Each part (number, files) scanned, as (number, rows), in the order given."""
    with threadpool_limits(limits=1, user_api="blas"):  # files are the unit of parallelism
        if workers <= 0:
            for number, files in parts:
                hashed = [_hashed_here(file, reader, settings) for file in files]
                yield number, part_rows(files, hashed, matcher, settings)
            return
        load_kernels()
        start = (reader, matcher, settings)
        alone = partial(_part_alone, start=start, workers=workers)
        yield from isolated_map(_scan, parts, workers, alone, _IN_FLIGHT_PER_WORKER, _start, start)


def _hashed_here(file: StoredFile, reader: Reader, settings: ScanSettings) -> Hashed:
    """``file`` hashed in this process; when that runs out of memory, hashed around it
    (``hashed_around_crash``), so that only it is an error row, not its part for good."""
    alone = partial(hash_stored, file, reader, settings)
    try:
        return alone()
    except OutOfMemory:
        return hashed_around_crash(settings, alone)


def _part_alone(
    part: Part, start: tuple[Reader, Matcher, ScanSettings], workers: int
) -> tuple[int, pa.Table]:
    try:
        return run_alone(_scan, part, _start, start)
    except WorkerCrashed:
        pass
    number, files = part
    _, matcher, settings = start
    file_alone = partial(_file_alone, start=start)
    jobs = ((file, ()) for file in files)
    hashed = list(isolated_map(_hash, list(jobs), workers, file_alone, 1, _start, start))
    return number, part_rows(files, hashed, matcher, settings)


def _file_alone(
    job: tuple[StoredFile, tuple[str, ...]], start: tuple[Reader, Matcher, ScanSettings]
) -> Hashed:
    """A file whose hashing killed a worker, hashed alone; when that kills it again, hashed
    around the crash (``hashed_around_crash``)."""
    file, _ = job

    def alone(signals: tuple[str, ...]) -> Hashed:
        return run_alone(_hash, (file, signals), _start, start)

    try:
        return alone(())
    except WorkerCrashed:
        return hashed_around_crash(start[2], alone)


def _start(reader: Reader, matcher: Matcher, settings: ScanSettings) -> None:
    init_worker()
    _WORK.update(reader=reader, matcher=matcher, settings=settings)


def _scan(part: Part) -> tuple[int, pa.Table]:
    number, files = part
    return number, scan_part(files, _WORK["reader"], _WORK["matcher"], _WORK["settings"])


def _hash(job: tuple[StoredFile, tuple[str, ...]]) -> Hashed:
    """A file's hashes: of every signal, or of the signals named."""
    file, signals = job
    return hash_stored(file, _WORK["reader"], _WORK["settings"], signals)
