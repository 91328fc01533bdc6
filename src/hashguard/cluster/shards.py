"""ShardedIndex: one HammingIndex split over K Ray actors, for lists beyond one machine's memory.

Entries go to shard ``id mod K``. Ids are handed out in increasing order as lists grow, so a new
import spreads evenly over the shards, where ranges of ids would pile every new entry onto the
last shard. A radius search cannot be routed (a match may differ from the query in any bit), so
every query goes to every shard and the answers are merged: the result is exactly that of one
HammingIndex over all the entries, in its order.

Every change is journaled before any shard sees it: the driver numbers it and writes it whole to
``journal/change-n.hgi`` (``index.fileformat``, written aside and renamed by ``durable``), then
sends each shard its rows. A shard applies changes strictly in order: one it has already applied
is a no-op, and one that arrives after a gap (an earlier change lost to a timeout or reordered
by a restart) first has the gap filled from the journal. A shard keeps its part in its own
folder as a base (the whole part as of change ``n``, ``base-n.hgi``); a shard that dies (its
process killed, its node lost) is restarted by Ray, loads its base, replays the journal past it
in its constructor, and only then takes calls. So a change that failed on some shards is never
lost and never half-applied for good: every shard converges to the journal. A base is rewritten
(in a thread, so calls go on) when a part's changes since it reach a quarter of its entries or
``MAX_CHANGES`` changes; journal files every base has passed are deleted. The directory must be
reachable from every node a shard may be restarted on (one machine, or a shared file system).

One ShardedIndex object is the writer of its directory (an exclusive lock on ``shards.lock``);
its threads' writes are serialised. A query running while a change is being applied may see it
on some shards only.
"""

import copy
import fcntl
import itertools
import json
import math
import resource
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import ray
from ray.exceptions import RayError, RayTaskError

from hashguard import durable
from hashguard.errors import Invalid, Unavailable
from hashguard.index import fileformat
from hashguard.index.hamming import HammingIndex, merged
from hashguard.index.segments import as_ids, sample

LAYOUT_FILE: Final = "shards.json"
LAYOUT_FORMAT: Final = "hashguard-shards/2"
LOCK_FILE: Final = "shards.lock"
JOURNAL: Final = "journal"
MAX_CHANGES: Final = 4096  # changes since its base after which a shard writes a new one
MAX_STARTS: Final = 3  # a shard whose loading is cut short this often in a row stays down
CPU_SHARE: Final = 0.5  # of the cluster's CPUs the shards reserve by default
_CHANGE_KIND: Final = "hamming-change"
_STARTS_FILE: Final = "starts"


class ShardUnavailable(Unavailable):
    """A shard did not answer (it cannot be placed or restarted, or not within the timeout):
    nothing of the call's answer is returned."""


class ShardDirectoryError(Invalid):
    """The directory holds shards of another layout (count or hash width), is in use by another
    ShardedIndex, or cannot be read."""


@dataclass(frozen=True)
class ShardUsage:
    entries: int
    array_bytes: int  # the index arrays the shard holds
    resident: int  # bytes: the shard process's resident memory now (anonymous + file pages)
    peak_resident: int  # bytes: the largest resident memory of the shard's process so far


def record(directory: Path, version: int, change: str, ids: np.ndarray, hashes: Any) -> None:
    """Journal change ``version`` (``"add"`` with ``hashes``, or ``"remove"``) in
    ``directory``, durably, before any shard applies it."""
    arrays = {"ids": ids} if hashes is None else {"ids": ids, "hashes": hashes}
    path = _journaled(directory, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    fileformat.write(path, _CHANGE_KIND, {"change": change}, arrays)


class Shard:
    """One part of a ShardedIndex (run as a Ray actor): the entries whose id mod ``shards`` is
    ``shard``, kept in ``directory/shard-<shard>``."""

    def __init__(self, directory: str, shard: int, shards: int, bits: int) -> None:
        self._directory = Path(directory)
        self._folder = self._directory / f"shard-{shard}"
        self._shard = shard
        self._shards = shards
        self._guard = threading.Lock()  # the base's number, shared with the compacting thread
        self._compacting: threading.Thread | None = None
        self._changes = 0  # changes applied since the base
        self._changed_rows = 0
        self._bits = bits
        self._counted = False  # whether this process's start is counted (``_count_start``)
        self._loaded = False
        self._broken: str | None = None  # why the part cannot be loaded
        try:
            self._try_load()
        except ShardUnavailable as error:  # raised here, it would end the actor for good
            print(f"shard {shard}: {error}; tried again at the next call", file=sys.stderr)

    def _try_load(self) -> None:
        """Load the part. A fault of its files' contents (a checksum, a format, a layout) is
        kept: the actor stays up (a restart would not mend the files) and each call raises
        ShardDirectoryError, which reaches the driver as itself. An I/O fault (EIO, ESTALE or
        ENOSPC on a shared file system) or a journal file gone meanwhile (pruned after a newer
        base, which a new try finds) is not: the call raises ShardUnavailable, and the next
        call tries to load again."""
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            if not self._counted:
                self._count_start()
                self._counted = True
            self._load(self._bits)
            durable.write(self._folder / _STARTS_FILE, b"0")
            self._loaded = True
        except (OSError, ShardDirectoryError, KeyError, ValueError) as error:
            if _io_fault(error):
                raise ShardUnavailable(f"cannot load its part now: {error}") from None
            self._broken = f"cannot load its part: {error}"

    def _usable(self) -> None:
        if self._broken is None and not self._loaded:
            self._try_load()
        if self._broken is not None:
            raise ShardDirectoryError(self._broken)

    def _count_start(self) -> None:
        """Refuse to start again when the last MAX_STARTS loads were cut short (a change that
        kills the process, say by running it out of memory, would otherwise loop forever)."""
        path = self._folder / _STARTS_FILE
        starts = int(path.read_bytes() or b"0") if path.exists() else 0
        if starts >= MAX_STARTS:
            raise ValueError(
                f"{self._folder} did not finish loading {starts} times in a row (the process "
                f"died); see the shard's log, then delete {path} to try again"
            )
        durable.write(path, str(starts + 1).encode())

    def _load(self, bits: int) -> None:
        for left in [*self._folder.glob(".*.tmp"), *self._directory.glob(f"{JOURNAL}/.*.tmp")]:
            left.unlink(missing_ok=True)  # written aside by a process killed meanwhile
        bases = sorted(self._folder.glob("base-*.hgi"))
        self._base = _number(bases[-1]) if bases else 0
        self._version = self._base
        self._index = HammingIndex.load(bases[-1]) if bases else HammingIndex(bits)
        if self._index.bits != bits:
            raise ValueError(f"{bases[-1]}: {self._index.bits}-bit hashes, not {bits}")
        for stale in bases[:-1]:
            stale.unlink(missing_ok=True)  # left by a crash before the older bases went
        journaled = sorted(self._directory.glob(f"{JOURNAL}/change-*.hgi"))
        self._catch_up(max((_number(path) for path in journaled), default=0))

    def version(self) -> int:
        """The number of the last change this shard has applied (0: none)."""
        self._usable()
        return self._version

    def base(self) -> int:
        """The change the shard's base file holds its part as of: the journal up to it is no
        longer needed by this shard."""
        self._usable()
        with self._guard:
            return self._base

    def usage(self) -> ShardUsage:
        self._usable()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return ShardUsage(len(self._index), self._index.array_bytes(), _resident(), peak)

    def held(self, version: int, ids: np.ndarray, present: bool) -> np.ndarray:
        """Of this shard's ``ids``: those it holds (``present``) or those it lacks, once it has
        applied the changes up to ``version``."""
        self._usable()
        self._catch_up(version)
        mine = ids[self._mine(ids)]
        wanted: np.ndarray = mine[self._index.present(mine) == present]
        return wanted

    def add(self, version: int, ids: np.ndarray, hashes: np.ndarray) -> int:
        """Apply change ``version`` (this shard's rows of it), after any before it; returns the
        base's change number."""
        self._usable()
        self._catch_up(version - 1)
        if version > self._version:
            mine = self._mine(ids)
            self._apply(version, "add", ids[mine], hashes[mine])
        return self.base()

    def remove(self, version: int, ids: np.ndarray) -> int:
        """Apply change ``version``: remove this shard's ``ids``; returns the base's number."""
        self._usable()
        self._catch_up(version - 1)
        if version > self._version:
            self._apply(version, "remove", ids[self._mine(ids)], None)
        return self.base()

    def query(
        self, version: int, hashes: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._usable()
        self._catch_up(version)
        return self._index.query(hashes, radius)

    def compacted(self) -> int:
        """Waits for a base being written; returns the base's change number."""
        self._usable()
        if self._compacting is not None:
            self._compacting.join()
        return self.base()

    def _mine(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids % self._shards == self._shard)

    def _catch_up(self, version: int) -> None:
        """Apply the journaled changes after this shard's last, up to ``version``."""
        while self._version < version:
            number = self._version + 1
            path = _journaled(self._directory, number)
            try:
                meta, arrays = fileformat.read(path, _CHANGE_KIND, memory_map=False)
            except fileformat.IndexFileError as error:  # the cause tells an I/O fault
                raise ShardDirectoryError(
                    f"shard {self._shard}: change {number} is not in the journal ({error})"
                ) from error
            ids = arrays["ids"]
            mine = self._mine(ids)
            hashes = arrays.get("hashes")
            self._apply(number, meta["change"], ids[mine], None if hashes is None else hashes[mine])

    def _apply(self, version: int, change: str, ids: np.ndarray, hashes: np.ndarray | None) -> None:
        if change == "add" and hashes is not None:
            self._index.add(ids, hashes)
        elif change == "remove":
            self._index.remove(ids)
        else:
            raise ValueError(f"shard {self._shard}: unknown change {change!r}")
        self._version = version
        with self._guard:
            self._changes += 1
            self._changed_rows += len(ids)
        self._compact()

    def _compact(self) -> None:
        """A new base when enough has changed since the last, written by a thread (calls go on
        meanwhile); when none of the part's rows changed, the base is only renamed."""
        if self._compacting is not None and self._compacting.is_alive():
            return
        with self._guard:
            changes, rows, old = self._changes, self._changed_rows, self._base
        if not rows and old:  # the same part: the base holds it as of this change too
            (self._folder / _based(old)).rename(self._folder / _based(self._version))
            durable.sync_directory(self._folder)  # before the driver prunes the journal to it
            with self._guard:
                self._base, self._changes = self._version, 0
        elif not rows or 4 * rows >= len(self._index) or changes >= MAX_CHANGES:
            index = copy.copy(self._index)  # its snapshot: later changes leave it as it is
            self._compacting = threading.Thread(
                target=self._write_base, args=(index, self._version, changes, rows), daemon=True
            )
            self._compacting.start()

    def _write_base(self, index: HammingIndex, version: int, changes: int, rows: int) -> None:
        base = self._folder / _based(version)
        try:
            index.save(base)
            with self._guard:
                self._base = version
                self._changes -= changes
                self._changed_rows -= rows
            for path in self._folder.glob("base-*.hgi"):
                if _number(path) < version:
                    path.unlink(missing_ok=True)
            durable.sync_directory(self._folder)
        except OSError as error:  # the changes stay journaled: the next change tries again
            print(f"shard {self._shard}: cannot write {base}: {error}", file=sys.stderr)


class ShardedIndex:
    """Exact Hamming-radius search over ``shards`` Ray actors, each a HammingIndex of the entries
    whose id mod ``shards`` is its number: ``add``, ``remove``, ``query`` and ``len`` as a
    HammingIndex answers them.

    Ray must be initialised. ``directory`` keeps the parts and the journal (an existing one is
    loaded; it must have been made with the same ``shards`` and ``bits``, and no other
    ShardedIndex may have it open). Each shard reserves ``num_cpus`` (default: at most one,
    and at most ``CPU_SHARE`` of the cluster's CPUs shared out, so that other work still
    schedules). A call waits up to ``timeout`` seconds for every shard, restarts included (so it
    must exceed the time a shard takes to add the largest batch), else raises ShardUnavailable.
    A change that raises ShardUnavailable is journaled: the shards that did not apply it will
    before they answer again.
    """

    def __init__(
        self,
        directory: Path | str,
        shards: int,
        bits: int = 256,
        *,
        num_cpus: float | None = None,
        timeout: float = 120.0,
    ) -> None:
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ValueError(f"shards must be a positive integer, got {shards!r}")
        if not isinstance(timeout, int | float) or not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._checker = HammingIndex(bits)  # empty: checks arguments as the shards would
        self.directory = Path(directory)
        self.bits = bits
        self._timeout = timeout
        self._lock = threading.Lock()
        self._cpus = _cpus_each(shards) if num_cpus is None else num_cpus
        _check_placement(shards, self._cpus)
        self._held = self._claim(shards, bits)
        actor = ray.remote(Shard).options(
            num_cpus=self._cpus,
            max_restarts=-1,
            max_task_retries=-1,
            scheduling_strategy="SPREAD",
        )
        self.shards: tuple[Any, ...] = tuple(
            actor.remote(str(self.directory), i, shards, bits) for i in range(shards)
        )
        try:
            self._version = max(self._gather(shard.version.remote() for shard in self.shards))
            self._prune(self._gather(shard.base.remote() for shard in self.shards))
        except (ShardUnavailable, ShardDirectoryError):
            self.close()
            raise

    def __len__(self) -> int:
        return sum(usage.entries for usage in self.usage())

    def usage(self) -> list[ShardUsage]:
        """Per shard, its entries, index array bytes and its process's resident memory."""
        return self._gather(shard.usage.remote() for shard in self.shards)

    def add(self, ids: object, hashes: object) -> None:
        """Add entries. Raises ValueError (adding nothing) on bad arrays or ids already present;
        ShardUnavailable, adding nothing, if a shard cannot be reached before the change is
        journaled or the journal cannot be written (a full disk); ShardUnavailable saying the
        change is journaled if it failed after that: it is then applied by every shard when it
        answers again, or at the next open if this process dies, so a caller that adds the same
        ids again is told they are already in the index. Each shard is sent only its rows;
        large lists are best added in batches, as the driver holds a batch twice (the caller's
        arrays and their journal file)."""
        checked = as_ids(ids)
        array = np.ascontiguousarray(hashes)
        self._checker.check_hashes(array)
        if len(array) != len(checked):
            raise ValueError(f"{len(checked)} ids but {len(array)} hashes")
        if not len(checked):
            return
        with self._lock:
            parts = self._split(checked)
            ids_refs = [ray.put(checked[part]) for part in parts]
            held = self._held_ids(ids_refs, present=True)
            if held.size:
                raise ValueError(f"ids already in the index: {sample(np.sort(held))}")
            version = self._journal(self._version + 1, "add", checked, array)
            try:
                calls = [
                    shard.add.remote(version, ids_ref, ray.put(array[part]))
                    for shard, ids_ref, part in zip(self.shards, ids_refs, parts, strict=True)
                ]
            except RayError as error:
                raise ShardUnavailable(f"{_reason(error)}{_applied_later(version)}") from None
            self._prune(self._gather(calls, version))

    def remove(self, ids: object) -> None:
        """Remove entries by id. Raises ValueError (changing nothing) if any id is not in the
        index, ShardUnavailable as ``add`` does (a change journaled is applied)."""
        checked = as_ids(ids)
        if not len(checked):
            return
        with self._lock:
            ids_refs = [ray.put(checked[part]) for part in self._split(checked)]
            missing = self._held_ids(ids_refs, present=False)
            if missing.size:
                raise ValueError(f"ids not in the index: {sample(np.sort(missing))}")
            version = self._journal(self._version + 1, "remove", checked, None)
            calls = [
                shard.remove.remote(version, ids_ref)
                for shard, ids_ref in zip(self.shards, ids_refs, strict=True)
            ]
            self._prune(self._gather(calls, version))

    def query(self, hashes: object, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry within ``radius`` bits of each query hash, from all shards: (query row,
        id, distance) ordered by query, distance, id, as ``HammingIndex.query`` answers.
        Raises ValueError on a malformed array or radius; ShardUnavailable when a shard does not
        answer (never a partial answer)."""
        array = np.ascontiguousarray(hashes)
        self._checker.query(array[:0], radius)
        queries = ray.put(array)  # one copy in the object store, read in place by every shard
        version = self._version
        return merged(
            self._gather(shard.query.remote(version, queries, radius) for shard in self.shards)
        )

    def close(self) -> None:
        """End the shard actors and wait until they are gone (their files stay: a new
        ShardedIndex loads them), then give up the directory. A base being written is finished
        first."""
        waits = [shard.compacted.remote() for shard in self.shards]
        answered, _ = ray.wait(waits, num_returns=len(waits), timeout=self._timeout)
        for shard in self.shards:
            ray.kill(shard, no_restart=True)
        deadline = time.monotonic() + self._timeout
        for shard in self.shards:
            while time.monotonic() < deadline:
                try:
                    ray.get(shard.version.remote(), timeout=max(deadline - time.monotonic(), 0))
                except RayError:
                    break  # ended (a timeout is a RayError too: then it is not answering)
        for number, wait in enumerate(waits):
            if wait not in answered:  # ended while it loaded: a close, not a start that died
                starts = self.directory / f"shard-{number}" / _STARTS_FILE
                if starts.exists():
                    durable.write(starts, b"0")
        self._held.close()  # releases the lock

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _journal(self, version: int, change: str, ids: np.ndarray, hashes: Any) -> int:
        """Journal change ``version`` and take its number; ShardUnavailable, with nothing
        journaled, when it cannot be written."""
        try:
            record(self.directory, version, change, ids, hashes)
        except OSError as error:
            raise ShardUnavailable(
                f"cannot journal change {version} in {self.directory / JOURNAL}: "
                f"{error.strerror or error}; nothing was changed"
            ) from None
        self._version = version
        return version

    def _split(self, ids: np.ndarray) -> list[np.ndarray]:
        """Positions in ``ids`` of each shard's rows, shard by shard."""
        owner = ids % len(self.shards)
        order = np.argsort(owner, kind="stable")
        bounds = np.searchsorted(owner[order], np.arange(len(self.shards) + 1))
        return [order[start:end] for start, end in itertools.pairwise(bounds)]

    def _held_ids(self, ids_refs: list[Any], present: bool) -> np.ndarray:
        calls = [
            shard.held.remote(self._version, ref, present)
            for shard, ref in zip(self.shards, ids_refs, strict=True)
        ]
        return np.concatenate(self._gather(calls))

    def _prune(self, bases: list[int]) -> None:
        """Delete the journal files every shard's base has passed."""
        passed = min(bases)
        for path in self.directory.glob(f"{JOURNAL}/change-*.hgi"):
            if _number(path) <= passed:
                path.unlink(missing_ok=True)

    def _gather(self, calls: Any, change: int = 0) -> list[Any]:
        """Every shard's answer, in shard order, or ShardUnavailable naming the first that
        failed or did not answer in time (ShardDirectoryError if its part cannot be read)."""
        refs = list(calls)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self._timeout)
        answers = []
        journaled = _applied_later(change) if change else ""
        for number, ref in enumerate(refs):
            where = f"shard {number} of {len(refs)}"
            if ref not in ready:
                free = ray.available_resources().get("CPU", 0.0)  # type: ignore[no-untyped-call]
                raise ShardUnavailable(
                    f"{where}: no answer within {self._timeout:g} s (each shard asks for "
                    f"{self._cpus:g} CPUs; {free:g} are free in the cluster){journaled}"
                )
            try:
                answers.append(ray.get(ref))
            except ShardDirectoryError as error:  # Ray's copy, also a RayTaskError
                raise ShardDirectoryError(f"{where}: {_reason(error)}") from None
            except RayError as error:
                raise ShardUnavailable(f"{where}: {_reason(error)}{journaled}") from None
        return answers

    def _claim(self, shards: int, bits: int) -> IO[bytes]:
        """Lock the directory for this object, and record this layout in it or check it against
        the one recorded there. Returns the locked file (closing it releases the lock)."""
        (self.directory / JOURNAL).mkdir(parents=True, exist_ok=True)
        held = open(self.directory / LOCK_FILE, "ab")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            held.close()
            raise ShardDirectoryError(
                f"{self.directory} is open in another ShardedIndex (one writer at a time)"
            ) from None
        try:
            self._check_layout(shards, bits)
        except ShardDirectoryError:
            held.close()
            raise
        return held

    def _check_layout(self, shards: int, bits: int) -> None:
        path = self.directory / LAYOUT_FILE
        wanted = {"format": LAYOUT_FORMAT, "shards": shards, "bits": bits}
        try:
            durable.create(path, json.dumps(wanted).encode())
            return
        except FileExistsError:
            pass
        try:
            recorded = json.loads(path.read_bytes())
            if not isinstance(recorded, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            raise ShardDirectoryError(f"{path}: unreadable ({error})") from None
        if recorded != wanted:
            raise ShardDirectoryError(
                f"{self.directory} holds {recorded.get('shards')} shards of "
                f"{recorded.get('bits')}-bit hashes ({recorded.get('format')}), not {shards} of "
                f"{bits}-bit ({LAYOUT_FORMAT})"
            )


def _node_cpus() -> list[float]:
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    return [float(node["Resources"].get("CPU", 0.0)) for node in nodes if node.get("Alive")]


def _cpus_each(shards: int) -> float:
    """At most one CPU (a shard's kernels use one) and at most CPU_SHARE of the cluster's CPUs
    shared out, within the largest node (an actor runs on one node)."""
    cpus = _node_cpus()
    share = min(1.0, max(cpus, default=0.0), CPU_SHARE * sum(cpus) / shards)
    return math.floor(share * 10_000) / 10_000


def placeable(shards: int, cpus: float, nodes: list[float]) -> bool:
    """Whether ``shards`` actors of ``cpus`` CPUs each fit on nodes of ``nodes`` CPUs (an
    actor runs on one node): first fit, the largest node first."""
    free = sorted(nodes, reverse=True)
    for _ in range(shards):
        node = next((i for i, left in enumerate(free) if left + 1e-9 >= cpus), None)
        if cpus <= 0 or node is None:
            return False
        free[node] -= cpus
    return True


def _check_placement(shards: int, cpus: float) -> None:
    """Raises ShardUnavailable when ``shards`` actors of ``cpus`` CPUs cannot all be placed
    on the cluster's nodes (their CPUs in all: others' reservations are not counted)."""
    nodes = _node_cpus()
    largest, total = max(nodes, default=0.0), sum(nodes)
    if not placeable(shards, cpus, nodes):
        raise ShardUnavailable(
            f"cannot place {shards} shards of {cpus:g} CPUs each: the cluster has {total:g} "
            f"CPUs, {largest:g} on its largest node (pass a smaller num_cpus, or add nodes)"
        )


def _resident() -> int:
    """This process's resident memory of its own (anonymous and file pages, not the object
    store's shared memory), in bytes."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value
    return sum(int(fields.get(name, "0 kB").split()[0]) * 1024 for name in ("RssAnon", "RssFile"))


def _io_fault(error: BaseException | None) -> bool:
    """Whether ``error`` comes of an I/O fault (an OSError in its chain of causes)."""
    while error is not None:
        if isinstance(error, OSError):
            return True
        error = error.__cause__
    return False


def _reason(error: BaseException) -> str:
    """One line for a shard's failure: the shard's own error when it raised one (the last line
    of the traceback Ray passes on), else the first line of Ray's account."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    raised = isinstance(error, RayTaskError) or getattr(error, "actor_init_failed", False)
    return lines[-1] if raised else lines[0]


def _applied_later(change: int) -> str:
    return f"; change {change} is journaled and applied when it answers"


def _journaled(directory: Path, version: int) -> Path:
    return directory / JOURNAL / f"change-{version:012d}.hgi"


def _based(version: int) -> str:
    return f"base-{version:012d}.hgi"


def _number(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])
