"""HammingIndex: every stored hash within a Hamming radius of a query, exactly, fast, in place.

Multi-index hashing (Norouzi, Punjani and Fleet) over compact tables, one segment at a time:

* The bits are dealt round-robin to ``m`` tables (11 for 256 bits, so keys of 23-24 bits);
  neighbouring PDQ frequencies, which flip together, land in different tables.
* A table is a counting sort of the rows by the high bits of their key: a directory of bucket
  offsets, and per row one uint32 holding the row and the key's low bits. Per 256-bit hash and
  11 tables: 32 bytes of hash, 8 of id, 44 of table entries, and about 9 of directories at 10M.
* A query of radius ``r`` gives table ``t`` a sub-radius ``s_t`` with ``sum(s_t + 1) > r``; some
  table then holds every answer within ``s_t`` of the query's key (see ``hamming_kernel``).
  When probing would cost more than comparing with every row (large radii, small segments),
  the segment is scanned instead. Either way every answer is checked on all bits: exact.

Segments, snapshots and merging come from ``segments``; the file format from ``fileformat``.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import combinations
from pathlib import Path
from typing import Final

import numpy as np

from hashguard.index import fileformat, hamming_kernel
from hashguard.index.segments import (
    Part,
    SegmentedIndex,
    Snapshot,
    as_ids,
    checked_rows,
    frozen,
    no_deletions,
)

SUPPORTED_BITS: Final = (64, 128, 192, 256)
TABLE_MIN_ROWS: Final = 8192  # below this a scan costs less than the tables' memory
_KEY_WIDTH: Final = 23.3  # bits per table key; 11 tables for 256 bits
_LOW_BITS_MAX: Final = 8  # key bits kept in a table entry beside the 24-bit row
# Cost model, in nanoseconds on one core: a probed bucket, each entry in it, and each row
# compared by a scan. Fitted on 1M and 10M realistic PDQ hashes at radii 31-56 (a 2.4 GHz Zen 3),
# then on 16k-3M random hashes at radii 31-47 (an EPYC with 32 MB of L3): a bucket costs 80 ns
# once the tables far outgrow the cache (misses), 10-25 ns while they fit in it.
_COST_BUCKET: Final = 80.0
_COST_BUCKET_CACHED: Final = 10.0
_CACHE_BYTES: Final = 24 << 20  # tables this large miss the cache on nearly every bucket
_COST_ENTRY: Final = 4.0
_COST_ROW: Final = 2.7


@dataclass(frozen=True, eq=False)
class Layout:
    """Which bits key which table, for hashes of ``bits`` bits."""

    bits: int
    table_bits: np.ndarray  # (m, widest) int64 bit numbers, -1 after a table's last bit
    widths: np.ndarray  # (m,) key width of each table
    masks: np.ndarray  # (m, 4) uint64: each table's bits as a mask over the hash words

    @staticmethod
    @cache
    def for_bits(bits: int) -> "Layout":
        tables = max(1, round(bits / _KEY_WIDTH))
        members = [list(range(t, bits, tables)) for t in range(tables)]
        widths = np.array([len(m) for m in members], np.int64)
        table_bits = np.full((tables, int(widths.max())), -1, np.int64)
        masks = np.zeros((tables, 4), np.uint64)
        for t, bits_of_t in enumerate(members):
            table_bits[t, : len(bits_of_t)] = bits_of_t
            for k in bits_of_t:
                masks[t, k // 64] |= np.uint64(1 << (k % 64))
        return Layout(bits, table_bits, widths, masks)

    @property
    def tables(self) -> int:
        return len(self.widths)

    def high_bits_range(self) -> tuple[int, int]:
        """The directory sizes (in bits) this layout allows: low bits must fit in a byte."""
        return int(self.widths.max()) - _LOW_BITS_MAX, int(self.widths.min())

    def high_bits_for(self, rows: int) -> int:
        """Directory bits for a segment of ``rows``: about 4-8 rows per bucket."""
        low, high = self.high_bits_range()
        return int(min(max(rows.bit_length() - 3, low), high))

    def subradii(self, radius: int) -> np.ndarray:
        """Per table the key radius to probe (-1: skip), with sum(s + 1) = radius + 1."""
        base, extra = divmod(radius + 1, self.tables)
        units = np.full(self.tables, base, np.int64)
        units[:extra] += 1
        return units - 1


@dataclass(frozen=True, eq=False)
class HammingSegment:
    """Rows sorted by id; the tables exist when the segment has TABLE_MIN_ROWS rows or more."""

    ids: np.ndarray  # (n,) int64, strictly increasing
    values: np.ndarray  # (n, 4) uint64: the hashes as words (see hamming_kernel)
    entries: np.ndarray | None  # (m, n) uint32
    dirs: np.ndarray | None  # (m, 2**high_bits + 1) uint32
    high_bits: int

    @staticmethod
    def build(layout: Layout, ids: np.ndarray, words: np.ndarray) -> "HammingSegment":
        rows = len(ids)
        frozen(ids)
        frozen(words)
        if rows < TABLE_MIN_ROWS:
            return HammingSegment(ids, words, None, None, 0)
        high_bits = layout.high_bits_for(rows)
        entries = np.empty((layout.tables, rows), np.uint32)
        dirs = np.empty((layout.tables, (1 << high_bits) + 1), np.uint32)
        for t in range(layout.tables):
            keys = hamming_kernel.table_keys(words, layout.table_bits[t])
            low_bits = int(layout.widths[t]) - high_bits
            hamming_kernel.fill_table(keys, low_bits, high_bits, entries[t], dirs[t])
        return HammingSegment(ids, words, frozen(entries), frozen(dirs), high_bits)


@lru_cache(maxsize=64)
def _patterns(high_bits: int, weight: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``high_bits``-bit flips of weight <= ``weight``, lightest first; their weights; and
    for each w the number of flips of weight <= w."""
    flips: list[int] = []
    weights: list[int] = []
    ends: list[int] = []
    for w in range(weight + 1):
        for positions in combinations(range(high_bits), w):
            flips.append(sum(1 << p for p in positions))
            weights.append(w)
        ends.append(len(flips))
    return np.array(flips, np.int64), np.array(weights, np.int64), np.array(ends, np.int64)


def _ball(bits: int, radius: int) -> int:
    return sum(math.comb(bits, w) for w in range(min(radius, bits) + 1))


_BYTE_WEIGHTS: Final = hamming_kernel.popcounts_8()
# A kernel call: (first query, output arrays) -> (next query, results written).
Runner = Callable[[int, tuple[np.ndarray, ...]], tuple[int, int]]
_WEIGHT_LIMIT: Final = 6  # largest sub-radius probed; beyond it a scan is always cheaper


class HammingIndex(SegmentedIndex[HammingSegment]):
    """Exact Hamming-radius search over hashes of ``bits`` bits (PDQ: 256), by int64 id.

    Hashes are uint8 arrays of shape (n, bits // 8), bytes in hex-string order. Adds and removes
    apply to the next query, without a rebuild; queries may run in other threads meanwhile.
    """

    max_rows = hamming_kernel.MAX_ROWS
    small_rows = TABLE_MIN_ROWS

    def __init__(self, bits: int = 256) -> None:
        if (
            isinstance(bits, bool)
            or not isinstance(bits, int | np.integer)
            or bits not in SUPPORTED_BITS
        ):
            raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
        super().__init__()
        self.bits = int(bits)
        self.layout = Layout.for_bits(self.bits)

    def add(self, ids: object, hashes: object) -> None:
        """Add entries. Raises ValueError (adding nothing) on bad arrays or ids already present."""
        checked_ids = as_ids(ids)
        words = self._words(hashes)
        if len(words) != len(checked_ids):
            raise ValueError(f"{len(checked_ids)} ids but {len(words)} hashes")
        self._add(checked_ids, words)

    def check_hashes(self, hashes: object, what: str = "hashes") -> None:
        """Raises ValueError, naming ``what``, unless ``hashes`` is a uint8 array of shape
        (n, bits / 8); copies no rows."""
        self._words(np.asarray(hashes)[:0], what)

    def array_bytes(self) -> int:
        """The bytes of the arrays the index holds (ids, hashes, deletions, tables)."""
        total = 0
        for part in self._snapshot.parts:
            segment = part.segment
            total += segment.ids.nbytes + segment.values.nbytes + part.deleted.nbytes
            total += 0 if segment.entries is None else segment.entries.nbytes
            total += 0 if segment.dirs is None else segment.dirs.nbytes
        return total

    def query(self, hashes: object, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry within ``radius`` bits (distance <= radius) of each query hash.

        Returns three aligned arrays, ordered by query, then distance, then id: the query's
        row in ``hashes`` (int64), the entry's id (int64), the distance (int32).
        Raises ValueError on a malformed array or a radius outside 0..bits.
        """
        words = self._words(hashes, "queries")
        radius = self._radius(radius)
        snapshot = self._snapshot
        subradii = self.layout.subradii(radius)
        return merged([self._query_part(part, words, radius, subradii) for part in snapshot.parts])

    def query_dihedral(
        self, variants: object, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Query several hashes per item (an image's 8 rotations and flips) at once.

        ``variants`` has shape (items, k, bits // 8). Returns (item, id, distance) as ``query``
        does, each entry once per item with its best distance over the item's variants.
        """
        array = np.asarray(variants)
        if array.ndim != 3 or array.shape[2] != self.bits // 8:
            raise ValueError(
                f"variants must have shape (items, k, {self.bits // 8}), got {array.shape}"
            )
        items, per_item, width = array.shape
        query_rows, ids, distances = self.query(array.reshape(items * per_item, width), radius)
        item = query_rows // max(per_item, 1)
        order = np.lexsort((distances, ids, item))
        item, ids, distances = item[order], ids[order], distances[order]
        first = np.ones(len(item), bool)
        first[1:] = (item[1:] != item[:-1]) | (ids[1:] != ids[:-1])
        return _ordered(item[first], ids[first], distances[first])

    def save(self, path: Path | str) -> None:
        """Write the index to ``path`` (format: ``fileformat``), atomically."""
        snapshot = self._snapshot
        arrays: dict[str, np.ndarray] = {}
        parts = []
        for i, part in enumerate(snapshot.parts):
            segment = part.segment
            arrays[f"{i}.ids"] = segment.ids
            arrays[f"{i}.hashes"] = segment.values
            arrays[f"{i}.deleted"] = part.deleted
            if segment.entries is not None and segment.dirs is not None:
                arrays[f"{i}.entries"] = segment.entries
                arrays[f"{i}.dirs"] = segment.dirs
            parts.append({"high_bits": segment.high_bits, "tables": segment.entries is not None})
        meta = {"bits": self.bits, "layout": "round-robin", "parts": parts}
        fileformat.write(Path(path), "hamming", meta, arrays)

    @classmethod
    def load(cls, path: Path | str, verify: bool = True, memory_map: bool = True) -> "HammingIndex":
        """The index saved at ``path``, its arrays mapped from the file (see ``fileformat.read``).

        Raises fileformat.IndexFileError (a ValueError) naming the file and the problem.
        """
        path = Path(path)
        meta, arrays = fileformat.read(path, "hamming", verify, memory_map)
        try:
            index = cls(meta["bits"])
            if meta["layout"] != "round-robin":
                raise ValueError(f"unknown layout {meta['layout']!r}")
            parts = tuple(
                _checked_part(index.layout, arrays, i, description)
                for i, description in enumerate(meta["parts"])
            )
        except (KeyError, TypeError, ValueError) as error:
            raise fileformat.IndexFileError(path, f"inconsistent index: {error}") from None
        index._snapshot = Snapshot(parts)
        return index

    def _build(self, ids: np.ndarray, values: np.ndarray) -> HammingSegment:
        return HammingSegment.build(self.layout, ids, values)

    def _words(self, hashes: object, what: str = "hashes") -> np.ndarray:
        width = self.bits // 8
        try:
            array = np.asarray(hashes)
        except ValueError as error:
            raise ValueError(
                f"{what} must be a uint8 array of shape (n, {width}): {error}"
            ) from None
        if array.dtype != np.uint8:
            raise ValueError(f"{what} must be a uint8 array, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != width:
            raise ValueError(
                f"{what} must have shape (n, {width}) for {self.bits}-bit hashes, got {array.shape}"
            )
        padded = np.zeros((len(array), 32), np.uint8)
        padded[:, :width] = array
        return padded.view("<u8")

    def _radius(self, radius: int) -> int:
        if isinstance(radius, bool) or not isinstance(radius, int | np.integer):
            raise ValueError(f"radius must be an integer, got {radius!r}")
        if not 0 <= radius <= self.bits:
            raise ValueError(f"radius must be between 0 and {self.bits}, got {radius}")
        return int(radius)

    def _query_part(
        self, part: Part[HammingSegment], words: np.ndarray, radius: int, subradii: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        segment = part.segment
        if segment.entries is not None and _tables_pay(
            self.layout, len(segment.ids), segment.high_bits, radius
        ):
            assert segment.entries is not None and segment.dirs is not None
            patterns, weights, ends = _patterns(segment.high_bits, int(subradii.max()))
            low_bits = self.layout.widths - segment.high_bits

            def run(start: int, out: tuple[np.ndarray, ...]) -> tuple[int, int]:
                assert segment.entries is not None and segment.dirs is not None
                return hamming_kernel.query_tables(
                    segment.values, part.deleted, segment.entries, segment.dirs, low_bits,
                    self.layout.table_bits, self.layout.masks, subradii, patterns, weights,
                    ends, _BYTE_WEIGHTS, words, radius, start, *out,
                )  # fmt: skip
        else:

            def run(start: int, out: tuple[np.ndarray, ...]) -> tuple[int, int]:
                return hamming_kernel.query_scan(
                    segment.values, part.deleted, words, radius, start, *out
                )

        query_rows, rows, distances = _collect(run, len(words))
        return query_rows, segment.ids[rows], distances


@lru_cache(maxsize=1024)  # asked per query call and segment: a single query costs ~0.3 ms
def _tables_pay(layout: Layout, rows: int, high_bits: int, radius: int) -> bool:
    """Whether probing the tables of a segment of ``rows`` is expected to cost less than
    scanning every row."""
    subradii = layout.subradii(radius)
    if int(subradii.max()) > _WEIGHT_LIMIT:
        return False
    table_bytes = 4 * layout.tables * (rows + (1 << high_bits))  # entries and directories
    missed = min(1.0, table_bytes / _CACHE_BYTES)
    bucket = _COST_BUCKET_CACHED + (_COST_BUCKET - _COST_BUCKET_CACHED) * missed
    per_bucket = bucket + _COST_ENTRY * rows / (1 << high_bits)
    buckets = sum(_ball(high_bits, int(s)) for s in subradii if s >= 0)
    return buckets * per_bucket < rows * _COST_ROW


def _collect(run: Runner, queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run a kernel to the end, growing its output arrays whenever they fill up."""
    capacity = max(1024, 8 * queries)
    pieces = []
    start = 0
    while True:
        out = (
            np.empty(capacity, np.int64),
            np.empty(capacity, np.int64),
            np.empty(capacity, np.int32),
        )
        start, count = run(start, out)
        pieces.append((out[0][:count], out[1][:count], out[2][:count]))
        if start >= queries:
            break
        capacity *= 4
    return _concatenate(pieces)


def _concatenate(
    pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not pieces:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)
    if len(pieces) == 1:
        return pieces[0]
    a, b, c = zip(*pieces, strict=True)
    return np.concatenate(a), np.concatenate(b), np.concatenate(c)


def merged(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answers of ``query`` over disjoint sets of entries (parts, shards) as one answer
    over all of them: (query row, id, distance), ordered as ``query`` orders them."""
    return _ordered(*_concatenate(found))


def _ordered(
    query_rows: np.ndarray, ids: np.ndarray, distances: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((ids, distances, query_rows))
    return query_rows[order], ids[order], distances[order].astype(np.int32)


def _checked_part(
    layout: Layout, arrays: dict[str, np.ndarray], i: int, description: dict[str, object]
) -> Part[HammingSegment]:
    """A part read from a file, after every check the kernels rely on to stay in bounds."""
    ids, deleted, removed = checked_rows(arrays, i)
    words = arrays[f"{i}.hashes"]
    rows = len(ids)
    if rows > hamming_kernel.MAX_ROWS:
        raise ValueError(f"part {i}: {rows} rows, more than {hamming_kernel.MAX_ROWS}")
    if words.dtype != np.dtype("<u8") or words.shape != (rows, 4):
        raise ValueError(f"part {i}: hashes must be ({rows}, 4) uint64")
    if layout.bits < 256 and words[:, layout.bits // 64 :].any():
        raise ValueError(f"part {i}: hashes have bits beyond {layout.bits}")
    high_bits = description["high_bits"]
    if not isinstance(high_bits, int):
        raise ValueError(f"part {i}: directory bits must be an integer")
    entries = dirs = None
    if description["tables"]:
        entries, dirs = arrays[f"{i}.entries"], arrays[f"{i}.dirs"]
        low, high = layout.high_bits_range()
        if not low <= high_bits <= high:
            raise ValueError(f"part {i}: directory bits {high_bits} outside {low}..{high}")
        if entries.dtype != np.uint32 or entries.shape != (layout.tables, rows):
            raise ValueError(f"part {i}: table entries must be ({layout.tables}, {rows}) uint32")
        if dirs.dtype != np.uint32 or dirs.shape != (layout.tables, (1 << high_bits) + 1):
            raise ValueError(f"part {i}: directories must be ({layout.tables}, 2**{high_bits} + 1)")
        if (
            (dirs[:, 0] != 0).any()
            or (dirs[:, -1] != rows).any()
            or (dirs[:, 1:] < dirs[:, :-1]).any()
        ):
            raise ValueError(f"part {i}: directories are not offsets into the tables")
        if rows and (entries & np.uint32(hamming_kernel.MAX_ROWS - 1)).max() >= rows:
            raise ValueError(f"part {i}: table entries point past the last row")
        low_limits = np.left_shift(1, layout.widths - high_bits)
        if (
            rows
            and ((entries >> np.uint32(hamming_kernel.ROW_BITS)).max(axis=1) >= low_limits).any()
        ):
            raise ValueError(f"part {i}: table entries hold keys wider than the layout")
    segment = HammingSegment(ids, words, entries, dirs, high_bits if entries is not None else 0)
    if not rows:
        return Part(segment, no_deletions(0), 0)
    return Part(segment, deleted, removed)
