"""Segments and snapshots: how both indexes add and remove while readers keep querying.

An index is an immutable *snapshot*: a tuple of parts, each an immutable segment (its rows sorted
by id, plus whatever search structure the index kind builds) and a packed bitmap of the rows
removed since the segment was built. A writer builds the next snapshot under a lock and
publishes it with one assignment; a reader takes the current snapshot once per call, so it never
sees a half-applied change, and needs no lock.

``add`` builds a segment of just the new rows, then parts are merged so that each holds more
than 4 times the rows of all the smaller parts together (a size-ratio merge policy, as in a
log-structured merge tree; above EAGER_ROWS, 4 parts of a size are merged into one), and the
parts under ``small_rows`` are kept as one: a query meets few parts (a part costs a query tens
of microseconds whatever its size), and a run of small adds costs O(log n) rebuild work per
entry.
``remove`` marks rows in a copy of their part's bitmap; a part more than half removed is rebuilt
without them.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

# A part is merged into the smaller ones once they hold a quarter of its rows, as long as the
# merge builds at most EAGER_ROWS (about a second's work); beyond, once they hold 3 times its
# rows (4 parts of a size: a log-structured merge tree's fanout), so that a run of imports into
# a large list never rebuilds it each time it grows by a quarter.
MERGE_RATIO = 4
EAGER_ROWS = 1 << 20
MERGE_FANOUT = 4


class Segment(Protocol):
    @property
    def ids(self) -> np.ndarray:
        """(n,) int64, strictly increasing."""

    @property
    def values(self) -> np.ndarray:
        """(n, ...) the indexed values, row i belonging to ids[i]."""


S = TypeVar("S", bound=Segment)


@dataclass(frozen=True, eq=False)
class Part(Generic[S]):
    """A segment and the bitmap (little bit order) of its rows removed since it was built."""

    segment: S
    deleted: np.ndarray
    removed: int

    @property
    def rows(self) -> int:
        return len(self.segment.ids)

    @property
    def live(self) -> int:
        return self.rows - self.removed

    def live_mask(self) -> np.ndarray:
        return ~np.unpackbits(self.deleted, count=self.rows, bitorder="little").astype(bool)


@dataclass(frozen=True, eq=False)
class Snapshot(Generic[S]):
    parts: tuple[Part[S], ...] = ()

    @property
    def size(self) -> int:
        return sum(part.live for part in self.parts)


def no_deletions(rows: int) -> np.ndarray:
    return frozen(np.zeros((rows + 7) // 8, np.uint8))


def frozen(array: np.ndarray) -> np.ndarray:
    """``array``, made read-only: snapshots are shared with readers and never change."""
    array.flags.writeable = False
    return array


def checked_rows(arrays: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Part ``i``'s ids and deletion bitmap read from a file, checked, and its removed count.

    Raises ValueError naming what is inconsistent.
    """
    ids, deleted = arrays[f"{i}.ids"], arrays[f"{i}.deleted"]
    rows = len(ids)
    if ids.dtype != np.int64 or ids.ndim != 1 or not (ids[1:] > ids[:-1]).all():
        raise ValueError(f"part {i}: ids must be strictly increasing int64")
    if deleted.dtype != np.uint8 or deleted.shape != ((rows + 7) // 8,):
        raise ValueError(f"part {i}: deletion bitmap must be {(rows + 7) // 8} bytes")
    bits = np.unpackbits(deleted, bitorder="little")
    if bits[rows:].any():
        raise ValueError(f"part {i}: deletion bitmap marks rows past the end")
    return ids, deleted, int(bits.sum())


def as_ids(ids: object, what: str = "ids") -> np.ndarray:
    """``ids`` as a 1-D int64 array without repeats; ValueError naming what is wrong."""
    array = np.asarray(ids)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of integers, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{what} must be integers (int64), got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{what} must fit in int64; {int(array.max())} does not")
    array = array.astype(np.int64, copy=False)
    ordered = np.sort(array)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if repeated.size:
        raise ValueError(f"{what} repeat within one call: {sample(np.unique(repeated))}")
    return array


def sample(values: np.ndarray, limit: int = 5) -> str:
    """The first few of ``values`` for an error message, and how many more there are."""
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


class SegmentedIndex(Generic[S]):
    """The add / remove / snapshot machinery; subclasses say how a segment is built."""

    max_rows: int = 1 << 62
    small_rows: int = 8192  # parts below this cost little to rebuild: kept as one

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot[S] = Snapshot()

    def __len__(self) -> int:
        return self._snapshot.size

    def __getstate__(self) -> dict[str, Any]:
        """A copy for another process: its current snapshot (segments are immutable)."""
        return {k: v for k, v in vars(self).items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    def present(self, ids: object) -> np.ndarray:
        """For each of ``ids``, whether the index holds it (bool). Raises ValueError on ids that
        are not a 1-D integer array without repeats."""
        return self._locate(self._snapshot, as_ids(ids))[0] >= 0

    def snapshot(self) -> Snapshot[S]:
        """The current state; later adds and removes do not change it."""
        return self._snapshot

    def _build(self, ids: np.ndarray, values: np.ndarray) -> S:
        """A segment of ``values`` (rows of ``ids``, which are sorted and unique)."""
        raise NotImplementedError

    def _add(self, ids: np.ndarray, values: np.ndarray) -> None:
        if not len(ids):
            return
        with self._lock:
            snapshot = self._snapshot
            present = ids[self._locate(snapshot, ids)[0] >= 0]
            if present.size:
                raise ValueError(f"ids already in the index: {sample(np.sort(present))}")
            order = np.argsort(ids, kind="stable")
            fresh = [
                self._part(self._build(ids[chunk], values[chunk]))
                for chunk in np.array_split(order, -(-len(ids) // self.max_rows))
            ]
            self._snapshot = Snapshot(self._settle([*snapshot.parts, *fresh]))

    def remove(self, ids: object) -> None:
        """Remove entries by id; they are never returned again.

        Raises ValueError, changing nothing, if any id is not in the index.
        """
        wanted = as_ids(ids)
        if not len(wanted):
            return
        with self._lock:
            snapshot = self._snapshot
            where, rows = self._locate(snapshot, wanted)
            if (where < 0).any():
                unknown = np.sort(wanted[where < 0])
                raise ValueError(f"ids not in the index: {sample(unknown)}")
            parts = list(snapshot.parts)
            for index in np.unique(where):
                part = parts[index]
                mine = rows[where == index]
                bits = np.unpackbits(part.deleted, count=part.rows, bitorder="little")
                bits[mine] = 1
                updated = Part(
                    part.segment,
                    frozen(np.packbits(bits, bitorder="little")),
                    part.removed + len(mine),
                )
                parts[index] = (
                    self._merge([updated]) if 2 * updated.removed > part.rows else updated
                )
            self._snapshot = Snapshot(self._settle(parts))

    def _locate(self, snapshot: Snapshot[S], ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each id, the part holding it live and its row there (-1, -1 when absent)."""
        where = np.full(len(ids), -1, np.int64)
        rows = np.full(len(ids), -1, np.int64)
        for index, part in enumerate(snapshot.parts):
            if not part.rows:
                continue
            position = np.minimum(np.searchsorted(part.segment.ids, ids), part.rows - 1)
            hit = part.segment.ids[position] == ids
            if part.removed:
                hit &= ((part.deleted[position >> 3] >> (position & 7)) & 1) == 0
            where[hit] = index
            rows[hit] = position[hit]
        return where, rows

    def _part(self, segment: S) -> Part[S]:
        return Part(segment, no_deletions(len(segment.ids)), 0)

    def _merge(self, parts: Sequence[Part[S]]) -> Part[S]:
        """One part with the live rows of ``parts``."""
        ids = []
        values = []
        for part in parts:
            if part.removed:
                keep = part.live_mask()
                ids.append(part.segment.ids[keep])
                values.append(part.segment.values[keep])
            else:
                ids.append(part.segment.ids)
                values.append(part.segment.values)
        all_ids = np.concatenate(ids)
        order = np.argsort(all_ids, kind="stable")
        return self._part(self._build(all_ids[order], np.concatenate(values)[order]))

    def _settle(self, parts: list[Part[S]]) -> tuple[Part[S], ...]:
        """Drop empty parts, then merge the smallest parts, up to the largest part that is
        small (under ``small_rows``) or holds at most MERGE_RATIO times the rows of all the
        parts smaller than it (when the merge builds at most EAGER_ROWS; a larger merge waits
        until those parts hold MERGE_FANOUT - 1 times its rows), within ``max_rows``; largest
        first."""
        ordered = sorted((part for part in parts if part.live), key=lambda part: part.live)
        smaller = 0  # the live rows of ordered[:k]
        fold = 1  # ordered[:fold] become one part
        for k, part in enumerate(ordered):
            merged = smaller + part.live
            if k and merged > self.max_rows:
                break
            if k and (
                part.live < self.small_rows
                or (merged <= EAGER_ROWS and part.live <= MERGE_RATIO * smaller)
                or (MERGE_FANOUT - 1) * part.live <= smaller
            ):
                fold = k + 1
            smaller = merged
        if fold > 1:
            ordered = [self._merge(ordered[:fold]), *ordered[fold:]]
        return tuple(sorted(ordered, key=lambda part: -part.live))
