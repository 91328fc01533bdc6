"""Numba kernels of the Hamming index: multi-index hashing over packed tables, and a blocked scan.

Terms used throughout:

* A hash is 4 uint64 words: its bytes (hex-string order) read as little-endian words. Bit ``k``
  of a hash is bit ``k % 64`` of word ``k // 64``. Shorter hashes are padded with zero words.
* Table ``t`` of ``m`` is keyed by the bits listed in ``table_bits[t]`` (``-1`` pads the row).
* An entry of table ``t`` is a uint32: the row in its low 24 bits and the key's low
  ``low_bits[t]`` bits above them. ``dirs[t, h] .. dirs[t, h + 1]`` is the range of entries
  whose key's high bits are ``h``.
* Rows marked in ``deleted`` (a packed little-endian bitmap) are never returned.

Pigeonhole, generalised: if two hashes differ in at most ``r`` bits and tables ``t`` get
sub-radii ``s_t`` with ``sum(s_t + 1) > r``, some table's key differs in at most ``s_t`` bits. So
probing every table's keys within ``s_t`` finds every entry within ``r``; a candidate is verified
on all its bits, and reported only by the first table that can find it, so never twice.
"""

from typing import Any, Final

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

ROW_BITS: Final = 24
MAX_ROWS: Final = 1 << ROW_BITS  # rows per segment: the row field of a table entry
_ROW_MASK: Final = MAX_ROWS - 1
_SCAN_BLOCK_ROWS: Final = 2048  # 64 KiB of hashes: stays in L2 while a group of queries runs
_SCAN_GROUP: Final = 32
_PREFETCH_AHEAD: Final = 12


def _prefetch_intrinsic(typingctx: Any, array: Any, index: Any) -> Any:  # pragma: no cover
    """Hint the CPU to load ``array[index]`` into cache (no fault on any address)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        value = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, array_type, value, [args[1]]
        )
        pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fn_type = ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, fn_type, "llvm.prefetch.p0"
        )
        builder.call(fn, [pointer, i32(0), i32(3), i32(1)])  # read, keep in all caches, data
        return context.get_dummy_value()

    return types.void(array, index), codegen


def _popcount_intrinsic(typingctx: Any, value: Any) -> Any:  # pragma: no cover - compiled
    """The number of set bits of a uint64, as one POPCNT instruction."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(i64, [i64]), "llvm.ctpop.i64"
        )
        return builder.call(fn, [args[0]])

    return types.uint64(types.uint64), codegen


# Typed as Any: they exist for numba-compiled code only.
_prefetch: Any = intrinsic(_prefetch_intrinsic)
_popcount: Any = intrinsic(_popcount_intrinsic)


@njit(cache=True, nogil=True, inline="always")
def _distance(words: np.ndarray, row: int, q: np.ndarray) -> int:  # pragma: no cover
    return int(
        _popcount(words[row, 0] ^ q[0])
        + _popcount(words[row, 1] ^ q[1])
        + _popcount(words[row, 2] ^ q[2])
        + _popcount(words[row, 3] ^ q[3])
    )


@njit(cache=True, nogil=True, inline="always")
def _is_deleted(deleted: np.ndarray, row: int) -> bool:  # pragma: no cover
    return ((deleted[row >> 3] >> (row & 7)) & 1) == 1


@njit(cache=True, nogil=True)
def _key(q: np.ndarray, bits: np.ndarray) -> int:  # pragma: no cover - compiled
    key: Any = 0
    for j in range(bits.shape[0]):
        k = bits[j]
        if k < 0:
            break
        key |= np.int64((q[k >> 6] >> np.uint64(k & 63)) & np.uint64(1)) << j
    return key


@njit(cache=True, nogil=True)
def table_keys(words: np.ndarray, bits: np.ndarray) -> np.ndarray:  # pragma: no cover
    """The key of every row in the table keyed by ``bits``, as uint32."""
    keys = np.empty(words.shape[0], np.uint32)
    for row in range(words.shape[0]):
        keys[row] = _key(words[row], bits)
    return keys


@njit(cache=True, nogil=True)
def fill_table(
    keys: np.ndarray, low_bits: int, high_bits: int, entries: np.ndarray, dirs: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Counting sort of the rows by the high bits of their keys, into ``entries`` and ``dirs``."""
    buckets = 1 << high_bits
    dirs[:] = 0
    for row in range(keys.shape[0]):
        dirs[(keys[row] >> low_bits) + 1] += 1
    for h in range(buckets):
        dirs[h + 1] += dirs[h]
    fill = dirs[:buckets].copy()
    low_mask = (1 << low_bits) - 1
    for row in range(keys.shape[0]):
        h = keys[row] >> low_bits
        entries[fill[h]] = ((keys[row] & low_mask) << ROW_BITS) | row
        fill[h] += 1


def popcounts_8() -> np.ndarray:
    """The number of set bits of every byte value."""
    return np.bitwise_count(np.arange(256, dtype=np.uint8)).astype(np.uint8)


@njit(cache=True, nogil=True)
def query_tables(
    words: np.ndarray,
    deleted: np.ndarray,
    entries: np.ndarray,
    dirs: np.ndarray,
    low_bits: np.ndarray,
    table_bits: np.ndarray,
    masks: np.ndarray,
    subradii: np.ndarray,
    patterns: np.ndarray,
    pattern_weights: np.ndarray,
    pattern_ends: np.ndarray,
    byte_weights: np.ndarray,
    queries: np.ndarray,
    radius: int,
    start: int,
    out_query: np.ndarray,
    out_row: np.ndarray,
    out_distance: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Every live row within ``radius`` of ``queries[start:]``, found through the tables.

    ``patterns[:pattern_ends[s]]`` are the high-bit flips of weight <= s. Results go to the
    ``out_*`` arrays. Returns (next query, results written): when the output is full, the next
    query is the one that did not fit, and its partial results are not counted.
    """
    m = entries.shape[0]
    flat_words = words.reshape(words.shape[0] * 4)
    capacity = out_query.shape[0]
    count = 0
    candidates = np.empty(1 << 14, np.uint32)
    table_ends = np.zeros(m, np.int64)
    bucket_start = np.empty(pattern_ends[-1], np.int64)
    bucket_stop = np.empty(pattern_ends[-1], np.int64)
    for qi in range(start, queries.shape[0]):
        q = queries[qi]
        first = count
        found = 0
        # Phase 1, per table: bucket bounds (independent loads, entries prefetched), then the
        # entries whose low key bits are close enough, as candidate rows.
        for t in range(m):
            s = subradii[t]
            if s >= 0:
                key = _key(q, table_bits[t])
                low = key & ((1 << low_bits[t]) - 1)
                high = key >> low_bits[t]
                probes = pattern_ends[s]
                for p in range(probes):
                    bucket = high ^ patterns[p]
                    bucket_start[p] = dirs[t, bucket]
                    bucket_stop[p] = dirs[t, bucket + 1]
                    _prefetch(entries[t], bucket_start[p])
                for p in range(probes):
                    a = bucket_start[p]
                    e = bucket_stop[p]
                    if found + (e - a) > candidates.shape[0]:
                        grown = np.empty(max(2 * candidates.shape[0], found + (e - a)), np.uint32)
                        grown[:found] = candidates[:found]
                        candidates = grown
                    allowed = s - pattern_weights[p]
                    for pos in range(a, e):
                        entry = entries[t, pos]
                        candidates[found] = entry
                        found += 1 if byte_weights[(entry >> ROW_BITS) ^ low] <= allowed else 0
            table_ends[t] = found
        # Phase 2: verify candidates on all bits; skip those an earlier table also finds.
        begin = 0
        for t in range(m):
            for ci in range(begin, table_ends[t]):
                if ci + _PREFETCH_AHEAD < found:
                    _prefetch(flat_words, (candidates[ci + _PREFETCH_AHEAD] & _ROW_MASK) * 4)
                row = candidates[ci] & _ROW_MASK
                d = _distance(words, row, q)
                if d > radius or _is_deleted(deleted, row):
                    continue
                seen = False
                for u in range(t):
                    su = subradii[u]
                    if su >= 0:
                        du = 0
                        for w in range(4):
                            du += _popcount((words[row, w] ^ q[w]) & masks[u, w])
                        if du <= su:
                            seen = True
                            break
                if seen:
                    continue
                if count == capacity:
                    return qi, first
                out_query[count] = qi
                out_row[count] = row
                out_distance[count] = d
                count += 1
            begin = table_ends[t]
    return queries.shape[0], count


@njit(cache=True, nogil=True)
def query_scan(
    words: np.ndarray,
    deleted: np.ndarray,
    queries: np.ndarray,
    radius: int,
    start: int,
    out_query: np.ndarray,
    out_row: np.ndarray,
    out_distance: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Every live row within ``radius`` of ``queries[start:]``, by comparing with every row.

    Queries go in groups over blocks of rows that stay in cache. Returns as ``query_tables``,
    with ``start`` and the next query at group boundaries.
    """
    capacity = out_query.shape[0]
    count = 0
    n = words.shape[0]
    for group in range(start, queries.shape[0], _SCAN_GROUP):
        first = count
        group_end = min(group + _SCAN_GROUP, queries.shape[0])
        for block in range(0, n, _SCAN_BLOCK_ROWS):
            block_end = min(block + _SCAN_BLOCK_ROWS, n)
            for qi in range(group, group_end):
                q = queries[qi]
                for row in range(block, block_end):
                    d = _distance(words, row, q)
                    if d <= radius and not _is_deleted(deleted, row):
                        if count == capacity:
                            return group, first
                        out_query[count] = qi
                        out_row[count] = row
                        out_distance[count] = d
                        count += 1
    return queries.shape[0], count
