"""ShardedIndex: one HammingIndex split over K Ray actors, for lists beyond one machine's memory.

Entries go to shard ``id mod K``. Ids are handed out in increasing order as lists grow, so a new
import spreads evenly over the shards, where ranges of ids would pile every new entry onto the
last shard. A radius search cannot be routed (a match may differ from the query in any bit), so
every query goes to every shard and the answers are merged: the result is exactly that of one
HammingIndex over all the entries, in its order.

Each shard keeps its part in its own folder of the directory the index is given, as index files
(``index.fileformat``, written aside and renamed by ``durable``): a base (the whole part as of
change ``n``, ``base-n.hgi``) and one file per change since (``change-n.hgi``). The driver
numbers the changes; a shard writes a change's file before applying it and answering. A shard
that dies (its process killed, its node lost) is restarted by Ray (``max_restarts=-1``), loads
its base and changes in its constructor, and only then takes calls again; calls sent meanwhile
wait and are retried on the new process (``max_task_retries=-1``), and a change already on file
is not applied twice. When a part's changes reach a quarter of its entries (or ``MAX_CHANGES``
files), the shard writes a new base and drops the older files. The directory must be reachable
from every node a shard may be restarted on (one machine, or a shared file system).

One ShardedIndex object is the writer of its directory; its threads' writes are serialised. A
query running while an add or remove is being applied may see it on some shards only.
"""

import json
import math
import resource
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import ray
from ray.exceptions import RayError, RayTaskError

from hashguard import durable
from hashguard.errors import Invalid, Unavailable
from hashguard.index import fileformat
from hashguard.index.hamming import HammingIndex, merged
from hashguard.index.segments import as_ids, sample

LAYOUT_FILE: Final = "shards.json"
LAYOUT_FORMAT: Final = "hashguard-shards/1"
MAX_CHANGES: Final = 64  # change files a shard keeps before it writes a new base
_CHANGE_KIND: Final = "hamming-change"


class ShardUnavailable(Unavailable):
    """A shard did not answer (it cannot be restarted, or not within the timeout): nothing of
    the call's answer is returned."""


class ShardDirectoryError(Invalid):
    """The directory holds shards of another layout (count or hash width) or cannot be read."""


@dataclass(frozen=True)
class ShardUsage:
    entries: int
    peak_resident: int  # bytes: the largest resident memory of the shard's process so far


class Shard:
    """One part of a ShardedIndex (run as a Ray actor): the entries whose id mod ``shards`` is
    ``shard``, kept in ``folder``."""

    def __init__(self, folder: str, shard: int, shards: int, bits: int) -> None:
        self._folder = Path(folder)
        self._shard = shard
        self._shards = shards
        self._folder.mkdir(parents=True, exist_ok=True)
        self._changes: list[Path] = []
        self._changed_rows = 0
        try:
            self._load(bits)
        except (OSError, KeyError, ValueError) as error:  # IndexFileError names the file
            # Re-raised as a plain message: Ray hands it to the driver, which cannot rebuild
            # exceptions whose constructors take other arguments.
            raise ShardDirectoryError(f"cannot load its part: {error}") from None

    def _load(self, bits: int) -> None:
        bases = sorted(self._folder.glob("base-*.hgi"))
        self._version = _number(bases[-1]) if bases else 0
        self._index = HammingIndex.load(bases[-1]) if bases else HammingIndex(bits)
        if self._index.bits != bits:
            raise ValueError(f"{bases[-1]}: {self._index.bits}-bit hashes, not {bits}")
        for path in sorted(self._folder.glob("change-*.hgi")):
            if _number(path) <= self._version:
                path.unlink()  # already in the base: left by a crash while the base was written
                continue
            meta, arrays = fileformat.read(path, _CHANGE_KIND, memory_map=False)
            self._apply(meta["change"], arrays["ids"], arrays.get("hashes"))
            self._changes.append(path)
            self._changed_rows += len(arrays["ids"])
            self._version = _number(path)
        for stale in bases[:-1]:
            stale.unlink()

    def version(self) -> int:
        """The number of the last change this shard has applied (0: none)."""
        return self._version

    def usage(self) -> ShardUsage:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return ShardUsage(len(self._index), peak)

    def lookup(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of the ``ids`` that belong to this shard: those it holds, and those it does not."""
        mine = ids[self._mine(ids)]
        held = self._index.present(mine)
        return mine[held], mine[~held]

    def add(self, version: int, ids: np.ndarray, hashes: np.ndarray) -> None:
        """Apply change ``version``: add this shard's rows of ``ids``/``hashes``."""
        if version > self._version:
            mine = self._mine(ids)
            self._change(version, "add", ids[mine], hashes[mine])

    def remove(self, version: int, ids: np.ndarray) -> None:
        """Apply change ``version``: remove this shard's ``ids``."""
        if version > self._version:
            self._change(version, "remove", ids[self._mine(ids)], None)

    def query(self, hashes: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self._index.query(hashes, radius)

    def _mine(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids % self._shards == self._shard)

    def _change(
        self, version: int, change: str, ids: np.ndarray, hashes: np.ndarray | None
    ) -> None:
        if len(ids):
            held = self._index.present(ids)
            wrong = ids[held] if change == "add" else ids[~held]
            if wrong.size:  # the driver checked; never let a file hold a change that fails
                raise ValueError(f"shard {self._shard}: cannot {change} ids {sample(wrong)}")
            path = self._folder / f"change-{version:012d}.hgi"
            arrays = {"ids": ids} if hashes is None else {"ids": ids, "hashes": hashes}
            fileformat.write(path, _CHANGE_KIND, {"change": change}, arrays)
            self._apply(change, ids, hashes)
            self._changes.append(path)
            self._changed_rows += len(ids)
        self._version = version
        if self._changes and (
            4 * self._changed_rows >= len(self._index) or len(self._changes) >= MAX_CHANGES
        ):
            self._write_base()

    def _apply(self, change: str, ids: np.ndarray, hashes: np.ndarray | None) -> None:
        if change == "add" and hashes is not None:
            self._index.add(ids, hashes)
        elif change == "remove":
            self._index.remove(ids)
        else:
            raise ValueError(f"shard {self._shard}: unknown change {change!r}")

    def _write_base(self) -> None:
        base = self._folder / f"base-{self._version:012d}.hgi"
        old = [path for path in self._folder.glob("base-*.hgi") if path != base]
        self._index.save(base)
        for path in [*old, *self._changes]:
            path.unlink()
        durable.sync_directory(self._folder)
        self._changes = []
        self._changed_rows = 0


class ShardedIndex:
    """Exact Hamming-radius search over ``shards`` Ray actors, each a HammingIndex of the entries
    whose id mod ``shards`` is its number; the same calls and answers as a HammingIndex.

    Ray must be initialised. ``directory`` keeps the parts (an existing one is loaded; it must
    have been made with the same ``shards`` and ``bits``). Each shard reserves ``num_cpus``
    (default: the cluster's CPUs shared out, so that all shards fit). A call waits up to
    ``timeout`` seconds for every shard, restarts included (so it must exceed the time a shard
    takes to add the largest batch), else raises ShardUnavailable. An add or remove that raises
    ShardUnavailable may have been applied by the shards that answered.
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
        self._checker = HammingIndex(bits)  # empty: checks arguments as the shards would
        self.directory = Path(directory)
        self.bits = bits
        self._timeout = timeout
        self._lock = threading.Lock()
        self._claim(shards, bits)
        cpus = _cpus_each(shards) if num_cpus is None else num_cpus
        actor = ray.remote(Shard).options(
            num_cpus=cpus, max_restarts=-1, max_task_retries=-1, scheduling_strategy="SPREAD"
        )
        self.shards: tuple[Any, ...] = tuple(
            actor.remote(str(self.directory / f"shard-{i}"), i, shards, bits) for i in range(shards)
        )
        try:
            self._version = max(self._gather(shard.version.remote() for shard in self.shards))
        except ShardUnavailable:
            self.close()
            raise

    def __len__(self) -> int:
        return sum(usage.entries for usage in self.usage())

    def usage(self) -> list[ShardUsage]:
        """Per shard, its entries and its process's peak resident memory."""
        return self._gather(shard.usage.remote() for shard in self.shards)

    def add(self, ids: object, hashes: object) -> None:
        """Add entries. Raises ValueError (adding nothing) on bad arrays or ids already present,
        ShardUnavailable if a shard cannot be reached."""
        checked = as_ids(ids)
        array = np.ascontiguousarray(hashes)
        self._checker.query(array[:0], 0)  # its dtype and shape, without copying the rows
        if len(array) != len(checked):
            raise ValueError(f"{len(checked)} ids but {len(array)} hashes")
        if not len(checked):
            return
        with self._lock:
            ids_ref = ray.put(checked)
            held = self._lookup(ids_ref)[0]
            if held.size:
                raise ValueError(f"ids already in the index: {sample(np.sort(held))}")
            self._version += 1
            hashes_ref = ray.put(array)
            self._gather(
                shard.add.remote(self._version, ids_ref, hashes_ref) for shard in self.shards
            )

    def remove(self, ids: object) -> None:
        """Remove entries by id. Raises ValueError (changing nothing) if any id is not in the
        index, ShardUnavailable if a shard cannot be reached."""
        checked = as_ids(ids)
        if not len(checked):
            return
        with self._lock:
            ids_ref = ray.put(checked)
            missing = self._lookup(ids_ref)[1]
            if missing.size:
                raise ValueError(f"ids not in the index: {sample(np.sort(missing))}")
            self._version += 1
            self._gather(shard.remove.remote(self._version, ids_ref) for shard in self.shards)

    def query(self, hashes: object, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry within ``radius`` bits of each query hash, from all shards: (query row,
        id, distance) ordered by query, distance, id, as ``HammingIndex.query`` answers.
        Raises ValueError on a malformed array or radius; ShardUnavailable when a shard does not
        answer (never a partial answer)."""
        array = np.ascontiguousarray(hashes)
        self._checker.query(array[:0], radius)
        queries = ray.put(array)  # one copy in the object store, read in place by every shard
        return merged(self._gather(shard.query.remote(queries, radius) for shard in self.shards))

    def close(self) -> None:
        """End the shard actors (their files stay: a new ShardedIndex loads them)."""
        for shard in self.shards:
            ray.kill(shard, no_restart=True)

    def __enter__(self) -> "ShardedIndex":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _lookup(self, ids_ref: Any) -> tuple[np.ndarray, np.ndarray]:
        found = self._gather(shard.lookup.remote(ids_ref) for shard in self.shards)
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    def _gather(self, calls: Any) -> list[Any]:
        """Every shard's answer, in shard order, or ShardUnavailable naming the first that
        failed or did not answer in time."""
        refs = list(calls)
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self._timeout)
        answers = []
        for number, ref in enumerate(refs):
            if ref not in ready:
                waited = f"no answer within {self._timeout:g} s"
                raise ShardUnavailable(f"shard {number} of {len(refs)}: {waited}")
            try:
                answers.append(ray.get(ref))
            except RayError as error:
                reason = _reason(error)
                raise ShardUnavailable(f"shard {number} of {len(refs)}: {reason}") from None
        return answers

    def _claim(self, shards: int, bits: int) -> None:
        """Record this layout in the directory, or check it against the one recorded there."""
        self.directory.mkdir(parents=True, exist_ok=True)
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
                f"{recorded.get('bits')}-bit hashes, not {shards} of {bits}-bit"
            )


def _cpus_each(shards: int) -> float:
    """The cluster's CPUs shared out so that ``shards`` actors fit (Ray takes fractions below
    one, whole numbers above)."""
    share = float(ray.cluster_resources().get("CPU", 1.0)) / shards  # type: ignore[no-untyped-call]
    return float(math.floor(share)) if share >= 1 else math.floor(share * 10_000) / 10_000


def _reason(error: RayError) -> str:
    """One line for a shard's failure: the shard's own error when it raised one (the last line
    of the traceback Ray passes on), else the first line of Ray's account."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    raised = isinstance(error, RayTaskError) or getattr(error, "actor_init_failed", False)
    return lines[-1] if raised else lines[0]


def _number(path: Path) -> int:
    return int(path.stem.split("-", 1)[1])
