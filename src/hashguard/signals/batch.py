"""Hash files and directory trees, over several processes, one result per file in input order.

A file either yields all its requested hashes or one failure with the reason; never a part.
"""

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from threadpoolctl import threadpool_limits

from hashguard.media.errors import MediaError
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals import registry
from hashguard.signals.base import SignalType
from hashguard.signals.pdq import PdqSignal
from hashguard.signals.vpdq import VpdqSignal

_IN_FLIGHT_PER_JOB = 4


@dataclass(frozen=True, slots=True)
class HashRecord:
    path: str
    signal: str
    value: str
    quality: int | None = None
    dihedral: dict[str, str] | None = None  # pdq with dihedral=True: variant name -> hex
    frames: int | None = None  # vpdq: number of hashed frames


@dataclass(frozen=True, slots=True)
class FileFailure:
    path: str
    reason: str


FileResult = list[HashRecord] | FileFailure


@dataclass(frozen=True, slots=True)
class HashSettings:
    """What to compute per file. ``signals`` empty means every signal that applies."""

    signals: tuple[str, ...] = ()
    dihedral: bool = False
    limits: Limits = DEFAULT_LIMITS
    video_per_second: float = 1.0
    resolved: tuple[SignalType[Any], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chosen: dict[str, SignalType[Any]] = {}
        for name in self.signals or registry.names():  # UnknownSignal before any work
            signal = registry.get(name)
            if isinstance(signal, VpdqSignal):
                signal = VpdqSignal(self.video_per_second)
            chosen.setdefault(signal.name, signal)
        object.__setattr__(self, "resolved", tuple(chosen.values()))


def expand(paths: Iterable[str]) -> Iterator[str]:
    """Files named, and files under directories named (recursively, sorted), in order."""
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    yield os.path.join(root, name)
        else:
            yield path


def hash_file(path: str, settings: HashSettings) -> FileResult:
    """All requested hashes of one file, or the reason it could not be hashed."""
    try:
        with open(path, "rb") as stream:
            kind = sniff(stream.read(SNIFF_BYTES)).kind
            signals = [s for s in settings.resolved if s.applies_to(kind)]
            if not signals:
                wanted = ", ".join(s.name for s in settings.resolved)
                return FileFailure(path, f"no requested signal ({wanted}) applies to {kind} files")
            stream.seek(0)
            return _hash_stream(path, stream, kind, signals, settings)
    except MediaError as exc:
        return FileFailure(path, str(exc))
    except IsADirectoryError:
        return FileFailure(path, "is a directory")
    except OSError as exc:
        return FileFailure(path, f"cannot read: {exc.strerror or exc}")
    except MemoryError:
        return FileFailure(path, "out of memory while decoding")


def _hash_stream(
    path: str,
    stream: BinaryIO,
    kind: MediaKind,
    signals: list[SignalType[Any]],
    settings: HashSettings,
) -> list[HashRecord]:
    limits = settings.limits
    if kind is MediaKind.IMAGE:
        limits.check_image_bytes(os.fstat(stream.fileno()).st_size)
        data: bytes | None = stream.read()
    else:
        limits.check_video_bytes(os.fstat(stream.fileno()).st_size)
        data = None
    records = []
    for signal in signals:
        if data is None:
            stream.seek(0)
        source = stream if data is None else data
        if isinstance(signal, PdqSignal) and settings.dihedral:
            hashes = signal.hash_dihedral(source, limits)
            variants = {name: h.hex for name, h in hashes.variants.items()}
            records.append(
                HashRecord(path, signal.name, hashes.original.hex, hashes.quality, variants)
            )
        elif isinstance(signal, PdqSignal):
            value = signal.hash(source, limits)
            records.append(HashRecord(path, signal.name, value.hex, value.quality))
        elif isinstance(signal, VpdqSignal):
            video = signal.hash(source, limits)
            text = signal.format(video)
            frames = len(video.frames)
            records.append(HashRecord(path, signal.name, text, video.mean_quality, frames=frames))
        else:
            records.append(HashRecord(path, signal.name, signal.format(signal.hash(source))))
    return records


def hash_paths(paths: Iterable[str], settings: HashSettings, jobs: int = 1) -> Iterator[FileResult]:
    """Hash every file in ``paths`` over ``jobs`` processes; results come in input order.

    Each process uses one BLAS thread: files are the unit of parallelism, and BLAS threads
    competing with hashing processes only cost time. At most a few files per process are in
    flight, so memory stays bounded however many files there are. A file that crashes its
    worker process (a decoder fault) fails alone; the other files are still hashed.
    """
    files = list(paths)
    with threadpool_limits(limits=1, user_api="blas"):
        if jobs <= 1 or len(files) <= 1:
            for path in files:
                yield hash_file(path, settings)
            return
        _load_kernels()
        yield from _hash_in_pool(files, settings, jobs)


def _hash_in_pool(files: list[str], settings: HashSettings, jobs: int) -> Iterator[FileResult]:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    position = 0
    while position < len(files):
        window: deque[tuple[str, Future[FileResult]]] = deque()
        with ProcessPoolExecutor(jobs, mp_context=context, initializer=_one_blas_thread) as pool:
            try:
                while position < len(files) or window:
                    while position < len(files) and len(window) < _IN_FLIGHT_PER_JOB * jobs:
                        path = files[position]
                        window.append((path, pool.submit(hash_file, path, settings)))
                        position += 1
                    result = window[0][1].result()
                    window.popleft()
                    yield result
            except BrokenProcessPool:
                pass  # handled below, once this pool is shut down
        # A worker died. Files that finished keep their results; each unfinished one is retried
        # alone, so the file that kills its process is the only one that fails.
        for path, future in window:
            if future.done() and future.exception() is None:
                yield future.result()
            else:
                yield _hash_alone(path, settings, context)


def _hash_alone(path: str, settings: HashSettings, context: Any) -> FileResult:
    with ProcessPoolExecutor(1, mp_context=context, initializer=_one_blas_thread) as pool:
        try:
            return pool.submit(hash_file, path, settings).result()
        except BrokenProcessPool:
            return FileFailure(path, "the decoder process crashed on this file")


def _load_kernels() -> None:
    # Compile or load the numba kernels once, so forked workers inherit them ready to run.
    from hashguard.media.synthetic import encode, scene

    PdqSignal().hash(encode(scene(0, 64, 64), "PNG"))


def _one_blas_thread() -> None:
    threadpool_limits(limits=1, user_api="blas")
