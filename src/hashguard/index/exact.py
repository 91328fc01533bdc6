"""ExactIndex: ids by exact key (MD5, SHA-1, SHA-256 digests), with HammingIndex's add/remove/query.

A segment keeps the keys in id order and a permutation sorting them, so a batch of queries is one
binary search per segment. Several ids may share a key (two lists holding the same file).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hashguard.index import fileformat
from hashguard.index.segments import (
    Part,
    SegmentedIndex,
    Snapshot,
    as_ids,
    checked_rows,
    frozen,
    no_deletions,
)


@dataclass(frozen=True, eq=False)
class ExactSegment:
    ids: np.ndarray  # (n,) int64, strictly increasing
    values: np.ndarray  # (n,) bytes dtype "S<width>", the key of each id
    by_key: np.ndarray  # (n,) int64: rows in key order


class ExactIndex(SegmentedIndex[ExactSegment]):
    """Exact lookup of keys of ``width`` bytes (16 MD5, 20 SHA-1, 32 SHA-256) by int64 id."""

    def __init__(self, width: int) -> None:
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 64:
            raise ValueError(f"width must be a number of bytes from 1 to 64, got {width!r}")
        super().__init__()
        self.width = width

    def add(self, ids: object, keys: object) -> None:
        """Add entries. Raises ValueError (adding nothing) on bad keys or ids already present."""
        checked_ids = as_ids(ids)
        values = self._keys(keys)
        if len(values) != len(checked_ids):
            raise ValueError(f"{len(checked_ids)} ids but {len(values)} keys")
        self._add(checked_ids, values)

    def query(self, keys: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every entry whose key equals a query key: (query row, id, distance 0), as
        ``HammingIndex.query`` returns them, ordered by query then id."""
        values = self._keys(keys, "queries")
        rows_out = []
        ids_out = []
        for part in self._snapshot.parts:
            segment = part.segment
            first = np.searchsorted(segment.values, values, "left", sorter=segment.by_key)
            last = np.searchsorted(segment.values, values, "right", sorter=segment.by_key)
            counts = last - first
            query_rows = np.repeat(np.arange(len(values)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            rows = segment.by_key[np.repeat(first, counts) + offsets]
            if part.removed:
                live = ((part.deleted[rows >> 3] >> (rows & 7)) & 1) == 0
                query_rows, rows = query_rows[live], rows[live]
            rows_out.append(query_rows)
            ids_out.append(segment.ids[rows])
        query_rows = np.concatenate(rows_out) if rows_out else np.empty(0, np.int64)
        ids = np.concatenate(ids_out) if ids_out else np.empty(0, np.int64)
        order = np.lexsort((ids, query_rows))
        return query_rows[order], ids[order], np.zeros(len(order), np.int32)

    def save(self, path: Path | str) -> None:
        """Write the index to ``path`` (format: ``fileformat``), atomically."""
        snapshot = self._snapshot
        arrays: dict[str, np.ndarray] = {}
        for i, part in enumerate(snapshot.parts):
            arrays[f"{i}.ids"] = part.segment.ids
            arrays[f"{i}.keys"] = part.segment.values
            arrays[f"{i}.by_key"] = part.segment.by_key
            arrays[f"{i}.deleted"] = part.deleted
        meta = {"width": self.width, "parts": len(snapshot.parts)}
        fileformat.write(Path(path), "exact", meta, arrays)

    @classmethod
    def load(cls, path: Path | str, verify: bool = True, memory_map: bool = True) -> "ExactIndex":
        """The index saved at ``path``. Raises fileformat.IndexFileError naming the problem."""
        path = Path(path)
        meta, arrays = fileformat.read(path, "exact", verify, memory_map)
        try:
            index = cls(meta["width"])
            parts = tuple(_checked_part(index.width, arrays, i) for i in range(meta["parts"]))
        except (KeyError, TypeError, ValueError) as error:
            raise fileformat.IndexFileError(path, f"inconsistent index: {error}") from None
        index._snapshot = Snapshot(parts)
        return index

    def _build(self, ids: np.ndarray, values: np.ndarray) -> ExactSegment:
        return ExactSegment(frozen(ids), frozen(values), frozen(np.argsort(values, kind="stable")))

    def _keys(self, keys: object, what: str = "keys") -> np.ndarray:
        if isinstance(keys, Sequence) and not isinstance(keys, bytes | str):
            for number, key in enumerate(keys):
                if not isinstance(key, bytes) or len(key) != self.width:
                    raise ValueError(
                        f"{what}[{number}] must be {self.width} bytes, got {_describe(key)}"
                    )
            array = np.frombuffer(b"".join(keys), np.uint8).reshape(len(keys), self.width)
        else:
            array = np.asarray(keys)
            if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != self.width:
                raise ValueError(
                    f"{what} must be a list of {self.width}-byte strings or a uint8 array of "
                    f"shape (n, {self.width}), got {array.dtype} {array.shape}"
                )
        return np.ascontiguousarray(array).view(f"S{self.width}").reshape(len(array))


def _describe(key: object) -> str:
    return f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__


def _checked_part(width: int, arrays: dict[str, np.ndarray], i: int) -> Part[ExactSegment]:
    ids, deleted, removed = checked_rows(arrays, i)
    keys, by_key = arrays[f"{i}.keys"], arrays[f"{i}.by_key"]
    rows = len(ids)
    if keys.dtype != np.dtype(f"S{width}") or keys.shape != (rows,):
        raise ValueError(f"part {i}: keys must be {rows} strings of {width} bytes")
    if by_key.dtype != np.int64 or not np.array_equal(np.sort(by_key), np.arange(rows)):
        raise ValueError(f"part {i}: key order is not a permutation of the rows")
    if rows > 1 and (keys[by_key][1:] < keys[by_key][:-1]).any():
        raise ValueError(f"part {i}: key order does not sort the keys")
    segment = ExactSegment(ids, keys, by_key)
    return Part(segment, deleted, removed) if rows else Part(segment, no_deletions(0), 0)
