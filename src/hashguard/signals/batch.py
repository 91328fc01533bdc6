"""Hash files and directory trees, over several processes, one result per file in input order.

A file yields all its requested hashes, or one failure with the reason; except that media that
cannot be decoded (corrupt, truncated, over a limit) still yields the hashes of its bytes (MD5,
SHA-1, SHA-256), with the reason its other hashes are missing: an exact copy of a listed broken
file is still found.
"""

import multiprocessing
import os
import signal
import stat
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.context import BaseContext
from typing import Any, BinaryIO, Final, TypeVar

from threadpoolctl import threadpool_limits

from hashguard.errors import Unavailable, Unsupported
from hashguard.media.errors import (
    CorruptMedia,
    EmptyMedia,
    LimitExceeded,
    MediaError,
    UnsupportedMedia,
)
from hashguard.media.formats import NOT_MEDIA, SNIFF_BYTES, MediaKind, file_kind
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals import registry
from hashguard.signals.base import SignalType, read_image
from hashguard.signals.digests import DigestSignal, digests_of
from hashguard.signals.pdq import REDUCED_MIN_SIDE, DihedralHashes, PdqHash, PdqSignal
from hashguard.signals.pdq_variants import DIHEDRAL, PdqVariants, hash_variants
from hashguard.signals.vpdq import VpdqHash, VpdqSignal

_IN_FLIGHT_PER_JOB = 4
_PR_SET_PDEATHSIG = 1  # prctl(2)
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class HashRecord:
    path: str
    signal: str
    value: str
    quality: int | None = None
    dihedral: dict[str, str] | None = None  # pdq with variants: variant name -> hex
    frames: int | None = None  # vpdq: number of hashed frames
    stability: int | None = None  # pdq: how little the hash moves under a 1 % resize, 0-100


@dataclass(frozen=True, slots=True)
class HashedFile:
    """A file's value for each requested signal that applies to it, as computed (for pdq with
    variants: ``PdqVariants``); ``records()`` gives them in their string forms."""

    path: str
    values: tuple[tuple[str, Any], ...]
    # Why the media could not be decoded, when only the signals of its bytes were computed.
    failed: str = ""

    def records(self) -> list[HashRecord]:
        return [_record(self.path, registry.get(name), value) for name, value in self.values]


@dataclass(frozen=True, slots=True)
class FileFailure:
    path: str
    reason: str
    # What sort of failure (``failure_kind``): "empty", "corrupt", "too large", ...
    kind: str = field(default="internal", compare=False)


@dataclass(frozen=True, slots=True)
class FileSkipped:
    """Readable media that none of the requested signals applies to (a video for ``pdq``)."""

    path: str
    kind: MediaKind


FileResult = HashedFile | FileFailure | FileSkipped


class NotApplicable(Unsupported):
    """None of the requested signals applies to this kind of media (an image or a video)."""

    def __init__(self, kind: MediaKind) -> None:
        super().__init__(f"no requested signal applies to {kind} files")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class HashSettings:
    """What to compute per file. ``signals`` empty means every signal that applies."""

    signals: tuple[str, ...] = ()
    dihedral: bool = False  # the same as "dihedral" in ``variants``
    limits: Limits = DEFAULT_LIMITS
    video_per_second: float = 1.0
    # Send what native decoders (libtiff, libjpeg) print on stderr to /dev/null while hashing;
    # for a command line that reports each file's failure in one line of its own.
    quiet_decoders: bool = False
    # The PDQ query variant families wanted (pdq_variants.FAMILIES); none: the plain hash.
    variants: frozenset[str] = frozenset()
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
    """Files named, and files under directories named, in order: a directory's files in key
    order, the code-point order of their paths under it (``/`` between names). A directory is
    walked as it is listed, one directory's entries held at a time: each sorted by name, a
    subdirectory's as if followed by ``/``, which makes the walk's order the paths' own.

    Pipes, sockets, devices and links to directories found in a directory are passed over
    (reading one could block, or loop); broken links and unreadable directories are yielded,
    so that they are reported (such a directory where its files would be).
    """
    for path in paths:
        if os.path.isdir(path):
            yield from _walk(path)
        else:
            yield path


def _walk(top: str) -> Iterator[str]:
    try:
        levels = [(top, iter(_entries(top)))]
    except OSError:
        yield top
        return
    while levels:
        directory, entries = levels[-1]
        name = next(entries, None)
        if name is None:
            levels.pop()
            continue
        path = os.path.join(directory, name.rstrip("/"))
        if not name.endswith("/"):
            yield path
            continue
        try:
            levels.append((path, iter(_entries(path))))
        except OSError:
            yield path


def _entries(directory: str) -> list[str]:
    """The names in ``directory`` to walk, sorted: a subdirectory's with ``/`` after it.
    Raises OSError when it cannot be listed."""
    names = []
    with os.scandir(directory) as found:
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                names.append(f"{entry.name}/")
            elif entry.is_file(follow_symlinks=False) or (
                entry.is_symlink() and not entry.is_dir()
            ):
                names.append(entry.name)
    names.sort()
    return names


@dataclass(frozen=True, slots=True)
class StreamHashes:
    """Each requested signal that applies to a file, with its value; ``undecodable``: the media
    could not be decoded, and only the signals of its bytes are here."""

    values: list[tuple[SignalType[Any], Any]]
    undecodable: MediaError | None = None


def hash_file(path: str, settings: HashSettings) -> FileResult:
    """All requested hashes of one file, or the reason it could not be hashed."""
    families = settings.variants | ({DIHEDRAL} if settings.dihedral else set())
    hashed = checked_values(
        path, settings.resolved, settings.limits, frozenset(families), settings.quiet_decoders
    )
    if isinstance(hashed, FileFailure | FileSkipped):
        return hashed
    failed = "" if hashed.undecodable is None else str(hashed.undecodable)
    return HashedFile(path, tuple((signal.name, value) for signal, value in hashed.values), failed)


def checked_values(
    path: str,
    signals: Iterable[SignalType[Any]],
    limits: Limits = DEFAULT_LIMITS,
    variants: frozenset[str] = frozenset(),
    quiet_decoders: bool = False,
) -> StreamHashes | FileFailure | FileSkipped:
    """``hash_values``, with every way it can fail turned into a one-line reason."""
    try:
        with _quiet_native_stderr(quiet_decoders):
            return hash_values(path, signals, limits, variants)
    except IsADirectoryError:
        try:
            os.listdir(path)
        except OSError as exc:
            return FileFailure(
                path, f"cannot read the directory: {exc.strerror or exc}", UNREADABLE
            )
        return FileFailure(path, "is a directory", UNREADABLE)
    except Exception as exc:
        return _failure(path, exc)


def checked_stream(
    label: str,
    stream: BinaryIO,
    size: int,
    signals: Iterable[SignalType[Any]],
    limits: Limits = DEFAULT_LIMITS,
    variants: frozenset[str] = frozenset(),
    quiet_decoders: bool = False,
) -> StreamHashes | FileFailure | FileSkipped:
    """``hash_stream`` (of a file read into memory, say), with every way it can fail turned
    into a one-line reason, as ``checked_values``; ``label`` names the file in a failure."""
    try:
        with _quiet_native_stderr(quiet_decoders):
            return hash_stream(stream, size, signals, limits, variants)
    except Exception as exc:
        return _failure(label, exc)


UNREADABLE: Final = "unreadable"
# A file whose decoding kills its process, again when alone.
CRASHED: Final = "crashed"
# A file whose hashing ran out of memory: maybe for want of its own, maybe of its neighbours'.
OUT_OF_MEMORY: Final = "out of memory"
_KINDS: Final = ((EmptyMedia, "empty"), (UnsupportedMedia, "not media"),
                 (CorruptMedia, "corrupt"), (LimitExceeded, "too large"))  # fmt: skip


def failure_kind(error: BaseException) -> str:
    """A short name for what sort of failure ``error`` is: "empty", "not media", "corrupt",
    "too large" (media errors), "unreadable" (the file), "out of memory", else "internal"."""
    if isinstance(error, OSError):
        return UNREADABLE
    if isinstance(error, MemoryError):
        return OUT_OF_MEMORY
    return next((kind for cls, kind in _KINDS if isinstance(error, cls)), "internal")


def _failure(path: str, exc: Exception) -> FileFailure | FileSkipped:
    kind = failure_kind(exc)
    if isinstance(exc, NotApplicable):
        return FileSkipped(path, exc.kind)
    if isinstance(exc, MediaError):
        return FileFailure(path, str(exc), kind)
    if isinstance(exc, OSError):
        return FileFailure(path, f"cannot read: {exc.strerror or exc}", kind)
    if isinstance(exc, MemoryError):
        return FileFailure(path, "out of memory while decoding", kind)
    # A bug, not bad input: still one line, and the next file goes on.
    return FileFailure(path, f"internal error ({type(exc).__name__}: {exc})", kind)


def hash_values(
    path: str,
    signals: Iterable[SignalType[Any]],
    limits: Limits = DEFAULT_LIMITS,
    variants: frozenset[str] = frozenset(),
) -> StreamHashes:
    """``hash_stream`` of the file at ``path``; raises ``UnsupportedMedia`` for a device or
    a pipe (a stream without end), besides what ``hash_stream`` raises."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening a pipe waits
        raise UnsupportedMedia("not a regular file (a device or a pipe): nothing to hash")
    with open(path, "rb") as stream:
        found = os.fstat(stream.fileno())
        if not stat.S_ISREG(found.st_mode):  # replaced since
            raise UnsupportedMedia("not a regular file (a device or a pipe): nothing to hash")
        return hash_stream(stream, found.st_size, signals, limits, variants)


def hash_stream(
    stream: BinaryIO,
    size: int,
    signals: Iterable[SignalType[Any]],
    limits: Limits = DEFAULT_LIMITS,
    variants: frozenset[str] = frozenset(),
) -> StreamHashes:
    """Each signal that applies to the file in ``stream`` (a seekable binary stream of
    ``size`` bytes: an open file, or an upload held in memory), with its value (for pdq with
    ``variants``, the query variant families wanted: ``PdqVariants``). Images are read into
    memory within the size limit; videos are read from the stream, and so are other files
    (only signals of their bytes apply to them: no decoder sees them, so no media limit
    either). Media that cannot be decoded
    gets the signals of its bytes alone, with the reason (``undecodable``). Raises
    ``NotApplicable`` for media none of ``signals`` applies to, ``UnsupportedMedia`` for a file
    that is not media when none applies to it either (as it was asked for media only),
    ``MediaError`` for media that cannot be decoded when no signal of its bytes was asked for,
    else ``OSError``.
    """
    kind = file_kind(stream.read(SNIFF_BYTES))
    chosen = [s for s in signals if s.applies_to(kind)]
    if not chosen:
        raise UnsupportedMedia(NOT_MEDIA) if kind is MediaKind.OTHER else NotApplicable(kind)
    of_bytes = [s for s in chosen if s.applies_to(MediaKind.OTHER)]  # they read bytes only
    decoding = [s for s in chosen if not s.applies_to(MediaKind.OTHER)]
    try:
        data = _decodable(stream, size, kind, limits) if decoding else None
    except MediaError as error:  # over a limit before any decoding
        if not of_bytes:
            raise
        return StreamHashes(_of_bytes(stream, of_bytes, limits), error)
    found = _of_bytes(stream if data is None else data, of_bytes, limits)
    try:
        for decoder in decoding:
            if data is None:
                stream.seek(0)
            found.append((decoder, _decoded(decoder, stream if data is None else data, limits,
                                            variants)))  # fmt: skip
    except MediaError as error:
        if not of_bytes:
            raise
        return StreamHashes(found[: len(of_bytes)], error)
    return StreamHashes(sorted(found, key=lambda pair: chosen.index(pair[0])))


def decode_bytes(
    data: bytes, signals: Iterable[SignalType[Any]], limits: Limits = DEFAULT_LIMITS
) -> int:
    """The memory ``hash_stream`` of ``data`` with ``signals`` holds decoding it, at its peak,
    estimated from the file's header (an image's pixels, fewer for a JPEG that PDQ alone
    decodes at a reduced scale; a video's frame); 0 when none of ``signals`` decodes it.
    Raises ``MediaError`` for media a decoder would refuse (over a limit, a bad header)."""
    kind = file_kind(data[:SNIFF_BYTES])
    decoding = [s for s in signals if s.applies_to(kind) and not s.applies_to(MediaKind.OTHER)]
    if not decoding:
        return 0
    if kind is MediaKind.VIDEO:
        from hashguard.media import video  # PyAV loads when a video is measured

        return video.decoded_bytes(data, limits)
    from hashguard.media import image  # Pillow loads when an image is measured

    reduced = all(isinstance(s, PdqSignal) for s in decoding)
    return image.decoded_bytes(data, limits, min_side=REDUCED_MIN_SIDE if reduced else None)


def _decodable(stream: BinaryIO, size: int, kind: MediaKind, limits: Limits) -> bytes | None:
    """An image's bytes, read into memory within the limits; None for a video (decoded from
    the stream, within its size limit). Raises LimitExceeded."""
    stream.seek(0)
    if kind is MediaKind.IMAGE:
        limits.check_image_bytes(size)
        return read_image(stream, limits)
    if kind is MediaKind.VIDEO:
        limits.check_video_bytes(size)
    return None


def _of_bytes(
    source: BinaryIO | bytes, signals: list[SignalType[Any]], limits: Limits
) -> list[tuple[SignalType[Any], Any]]:
    """Each of ``signals`` (signals of the bytes alone) of ``source``: the digests all from
    one pass over the bytes (an 8 GiB video is read once for MD5, SHA-1 and SHA-256)."""
    together = [s for s in signals if isinstance(s, DigestSignal) and s.of_the_bytes]
    read = digests_of(_rewound(source), together) if together else []
    digests = dict(zip(map(id, together), read, strict=True))
    found = []
    for each in signals:
        value = digests.get(id(each))
        found.append((each, each.hash(_rewound(source), limits) if value is None else value))
    return found


def _rewound(source: BinaryIO | bytes) -> BinaryIO | bytes:
    if not isinstance(source, bytes):
        source.seek(0)
    return source


def _decoded(
    signal: SignalType[Any], source: BinaryIO | bytes, limits: Limits, variants: frozenset[str]
) -> Any:
    if variants and isinstance(signal, PdqSignal):
        return hash_variants(source, variants, limits)
    return signal.hash(source, limits)


def _record(path: str, signal: SignalType[Any], value: Any) -> HashRecord:
    if isinstance(value, DihedralHashes | PdqVariants):
        variants = {name: h.hex for name, h in value.variants.items()}
        return HashRecord(
            path, signal.name, value.original.hex, value.quality, variants,
            stability=value.stability,
        )  # fmt: skip
    if isinstance(value, PdqHash):
        return HashRecord(path, signal.name, value.hex, value.quality, stability=value.stability)
    if isinstance(value, VpdqHash):
        frames = len(value.frames)
        return HashRecord(path, signal.name, signal.format(value), value.mean_quality, None, frames)
    return HashRecord(path, signal.name, signal.format(value))


@contextmanager
def _quiet_native_stderr(enabled: bool) -> Iterator[None]:
    try:
        saved = os.dup(2) if enabled else None
    except OSError:  # no stderr at all: nothing to quieten
        saved = None
    if saved is None:
        yield
        return
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def hash_paths(paths: Iterable[str], settings: HashSettings, jobs: int = 1) -> Iterator[FileResult]:
    """Hash every file in ``paths`` in ``jobs`` worker processes; results come in input order.

    Workers keep a decoder fault away from the caller: a file that crashes its worker fails
    alone and the other files are still hashed. ``jobs=0`` hashes in this process instead.
    Each process uses one BLAS thread (files are the unit of parallelism), and at most a few
    files per worker are in flight, so memory stays bounded however many files there are.
    """
    files = list(paths)
    with threadpool_limits(limits=1, user_api="blas"):
        if jobs <= 0:
            for path in files:
                yield hash_file(path, settings)
            return
        load_kernels()
        yield from _hash_in_pool(files, settings, jobs)


def _hash_in_pool(files: list[str], settings: HashSettings, jobs: int) -> Iterator[FileResult]:
    hashed = partial(hash_file, settings=settings)
    yield from isolated_map(
        hashed, files, jobs, partial(_hash_alone, settings=settings), _IN_FLIGHT_PER_JOB
    )


def _hash_alone(path: str, settings: HashSettings) -> FileResult:
    try:
        return run_alone(partial(hash_file, settings=settings), path)
    except WorkerCrashed:
        return FileFailure(path, "the decoder process crashed on this file", CRASHED)


class WorkerCrashed(Unavailable):
    """The process running a call died (a decoder fault, the kernel's OOM killer)."""


class OutOfMemory(WorkerCrashed):
    """A call ran out of memory (``MemoryError``): as if its process had died, it is run again
    alone, where it may well fit."""


def _worker_context() -> BaseContext:
    """Fork where there is fork: workers inherit what the parent loaded (kernels, indexes)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def isolated_map(
    function: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    alone: Callable[[T], R],
    in_flight: int = _IN_FLIGHT_PER_JOB,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[R]:
    """``function(item)`` for each item in ``jobs`` worker processes (started with
    ``initializer(*initargs)``, else ``init_worker``), in input order, ``in_flight`` items per
    worker at most. A worker that dies (a decoder fault) takes none of the others' results
    with it: the items that finished keep theirs, the unfinished ones run again in a fresh
    pool, and those a death there leaves unfinished again run in halves, so that only an
    item that kills its worker again on its own (or raises WorkerCrashed) is given to
    ``alone(item)`` (which runs it in a process of its own, say: ``run_alone``); a fresh
    pool goes on with the rest."""
    pooled = partial(_pool, jobs, initializer or init_worker, initargs)
    position = 0
    while position < len(items):
        window: deque[tuple[T, Future[R]]] = deque()
        pool = pooled(jobs)
        try:
            try:
                while position < len(items) or window:
                    while position < len(items) and len(window) < in_flight * jobs:
                        item = items[position]
                        window.append((item, pool.submit(function, item)))
                        position += 1
                    if _killed(window[0][1]):
                        break  # the rest of the window, once this pool is shut down
                    yield window.popleft()[1].result()
            except BrokenProcessPool:
                pass  # died while an item was submitted: that item goes to the next pool
        except BaseException:  # interrupted, or the caller stopped reading: stop at once
            _stop(pool)
            raise
        pool.shutdown()
        for outcome in _settled(function, list(window), pooled, alone):
            yield outcome.result()


def _pool(
    jobs: int, initializer: Callable[..., None], initargs: tuple[Any, ...], size: int
) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(min(jobs, size), _worker_context(), initializer, initargs)


def _killed(future: "Future[Any]") -> bool:
    """Whether ``future``'s item did not finish because a worker died (its own, or another's
    that broke the pool), or ran out of memory (``WorkerCrashed``). Waits for it."""
    return isinstance(future.exception(), BrokenProcessPool | WorkerCrashed)


def _settled(
    function: Callable[[T], R],
    window: list[tuple[T, "Future[R]"]],
    pooled: Callable[[int], ProcessPoolExecutor],
    alone: Callable[[T], R],
) -> list["Future[R]"]:
    """The outcomes of ``window``'s items, after a worker died. The finished items keep
    theirs; an item that raised WorkerCrashed itself goes to ``alone``; the others (one of
    them killed the worker, or none: the OOM killer) run again together in a fresh pool, and
    while a worker dies there too, the ones left unfinished run again in halves, down to one
    item, which goes to ``alone``. So a crash costs a few pool runs, not a run alone per
    item."""
    outcomes = [future for _, future in window]
    unfinished = []
    for number, (item, future) in enumerate(window):
        if isinstance(future.exception(), WorkerCrashed):
            outcomes[number] = _done(alone, item)
        elif _killed(future):
            unfinished.append(number)
    groups = [unfinished] if unfinished else []
    while groups:
        group = groups.pop()
        if len(group) == 1:
            outcomes[group[0]] = _done(alone, window[group[0]][0])
            continue
        left = []
        for number, future in zip(group, _run_together(function, [window[n][0] for n in group],
                                                         pooled), strict=True):  # fmt: skip
            if isinstance(future.exception(), BrokenProcessPool):
                left.append(number)
            elif isinstance(future.exception(), WorkerCrashed):
                outcomes[number] = _done(alone, window[number][0])
            else:
                outcomes[number] = future
        half = (len(left) + 1) // 2
        groups.extend(g for g in (left[half:], left[:half]) if g)  # the first half first
    return outcomes


def _run_together(
    function: Callable[[T], R], items: list[T], pooled: Callable[[int], ProcessPoolExecutor]
) -> list["Future[R]"]:
    """``function(item)`` of each item in a fresh pool, all at once; each one's outcome."""
    pool = pooled(len(items))
    try:
        futures = []
        for item in items:
            try:
                futures.append(pool.submit(function, item))
            except BrokenProcessPool as error:  # died before all were given: as unfinished
                futures.append(_failed(error))
        for future in futures:
            future.exception()  # wait for it
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()
    return futures


def _done(call: Callable[[T], R], item: T) -> "Future[R]":
    """``call(item)``'s outcome (its result, or what it raised), as a finished future."""
    future: Future[R] = Future()
    try:
        future.set_result(call(item))
    except Exception as error:
        future.set_exception(error)
    return future


def _failed(error: BaseException) -> "Future[Any]":
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


def run_alone(
    function: Callable[[T], R],
    item: T,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
) -> R:
    """``function(item)`` in a worker process of its own (as ``isolated_map`` starts them).
    Raises WorkerCrashed when that process dies."""
    pool = ProcessPoolExecutor(1, _worker_context(), initializer or init_worker, initargs)
    try:
        return pool.submit(function, item).result()
    except BrokenProcessPool:
        raise WorkerCrashed("the worker process died") from None
    except BaseException:
        _stop(pool)
        raise
    finally:
        pool.shutdown()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Drop queued items and end the workers now, rather than after the items they are on."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.join(timeout=5)


def load_kernels() -> None:
    # Compile or load the numba kernels once, so forked workers inherit them ready to run.
    from hashguard.media.synthetic import encode, scene

    PdqSignal().hash(encode(scene(0, 64, 64), "PNG"))


def init_worker() -> None:
    # Ctrl-C is the parent's to handle: it stops the workers; they must not print tracebacks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    _own_std_streams()
    threadpool_limits(limits=1, user_api="blas")


def _own_std_streams() -> None:
    """A forked worker's own stdout and stderr objects: the parent's may have been forked
    while another of its threads (a progress bar's) held their buffer's lock, which no thread
    of this process would ever release, and the first flush would wait forever."""
    for name, fd in (("stdout", 1), ("stderr", 2)):
        inherited = getattr(sys, name)
        if inherited is None:
            continue
        encoding, errors = inherited.encoding, inherited.errors
        fresh = open(fd, "w", 1, encoding, errors, closefd=False)  # noqa: SIM115 - for good
        setattr(sys, name, fresh)


def _die_with_parent() -> None:
    """Linux: this worker is killed when the process that started it dies, even by SIGKILL, so
    no orphan goes on working or holds what its parent held (a scan's directory lock)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
