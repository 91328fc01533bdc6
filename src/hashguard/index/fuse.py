"""Binary fuse filters: a static set of 64-bit keys, asked "is this key in the set?".

A 4-wise binary fuse filter (Graf and Lemire, "Binary Fuse Filters: Fast and Smaller Than Xor
Filters", 2022) stores one ``width``-bit fingerprint per slot, about 1.075 slots per key for
large sets. A key is in the filter when the XOR of its four slots equals its fingerprint; a key
that is not in it passes with probability 2^-width (the false-hit rate). Nothing else about the
keys can be read from the filter: it holds no keys, only fingerprints.

Fingerprints are bit-packed, so any width from 8 to 56 bits costs exactly that: at 31 bits a
filter of 5 million keys takes about 33.3 bits per key. Keys must be uniformly random 64-bit
values (here: keyed tags), distinct or not (duplicates are removed).

The file is the index file format (fileformat.py), kind ``binary-fuse``.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numba import njit

from hashguard.errors import Invalid
from hashguard.index import fileformat

ARITY: Final = 4
MIN_WIDTH: Final = 8
MAX_WIDTH: Final = 56  # a fingerprint and its bit offset within a byte fit one 64-bit read
_MASK64: Final = (1 << 64) - 1
_M1: Final = 0xFF51AFD7ED558CCD
_M2: Final = 0xC4CEB9FE1A85EC53
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MAX_SEGMENT_LENGTH: Final = 1 << 18
_TRIES_PER_SIZE: Final = 4


class FilterError(Invalid):
    """A filter that cannot be built or read; the message says why."""


@dataclass(frozen=True, eq=False)
class FuseFilter:
    """A built filter. ``key in filter`` for one key, ``contains_many`` for an array."""

    size: int  # keys it was built from (after removing duplicates)
    width: int  # fingerprint bits: the false-hit rate is 2^-width per lookup
    seed: int
    segment_length: int
    segment_count_length: int
    packed: np.ndarray  # uint8: slots * width bits, little-endian, then 8 bytes of padding

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bytes", self.packed.tobytes())

    @property
    def slots(self) -> int:
        if self.segment_count_length == 0:
            return 0
        return self.segment_count_length + (ARITY - 1) * self.segment_length

    @property
    def nbytes(self) -> int:
        return int(self.packed.nbytes)

    def __contains__(self, key: int) -> bool:
        if self.size == 0:
            return False
        h = _mix(key + self.seed)
        g = _mix(h ^ _GOLDEN)
        length, mask = self.segment_length, self.segment_length - 1
        start = ((h >> 32) * self.segment_count_length) >> 32
        width, data = self.width, self._bytes  # type: ignore[attr-defined]
        low = (1 << width) - 1
        value = _mix(g ^ _M1) & low
        for position in (
            start,
            (start + length) ^ (h & mask),
            (start + 2 * length) ^ (g & mask),
            (start + 3 * length) ^ ((g >> 20) & mask),
        ):
            bit = position * width
            value ^= (int.from_bytes(data[bit >> 3 : (bit >> 3) + 8], "little") >> (bit & 7)) & low
        return value == 0

    def contains_many(self, keys: np.ndarray) -> np.ndarray:
        """A bool array: whether each uint64 key passes the filter."""
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        if self.size == 0:
            return np.zeros(len(keys), dtype=np.bool_)
        return _contains(
            keys, np.uint64(self.seed), self.segment_length, self.segment_count_length,
            self.width, self.packed,
        )  # fmt: skip

    @classmethod
    def build(cls, keys: np.ndarray, width: int) -> "FuseFilter":
        """The filter of ``keys`` (uint64) with ``width``-bit fingerprints. Raises FilterError
        for a width out of range or a set too large."""
        if not MIN_WIDTH <= width <= MAX_WIDTH:
            raise FilterError(
                f"fingerprint width {width}: expected {MIN_WIDTH} to {MAX_WIDTH} bits"
            )
        keys = np.unique(np.asarray(keys, dtype=np.uint64))
        n = len(keys)
        if n == 0:
            return cls(0, width, 0, 0, 0, np.zeros(8, dtype=np.uint8))
        if n >= 1 << 31:
            raise FilterError(f"{n} keys: a filter holds fewer than 2^31")
        length, segments = _dimensions(n)
        seed_source = np.random.default_rng()
        for attempt in range(100):
            if attempt and attempt % _TRIES_PER_SIZE == 0:
                segments += max(1, segments // 10)  # unlucky or too tight: a little more room
            seed = int(seed_source.integers(0, 1 << 63))
            count_length = segments * length
            slots = count_length + (ARITY - 1) * length
            values = _assign(keys, np.uint64(seed), length, count_length, slots, width)
            if values is not None:
                packed = _pack(values, width)
                return cls(n, width, seed, length, count_length, packed)
        raise FilterError(f"could not build a filter of {n} keys (are they random?)")

    def save(self, path: Path) -> None:
        meta = {
            "arity": ARITY,
            "size": self.size,
            "width": self.width,
            "seed": str(self.seed),
            "segment_length": self.segment_length,
            "segment_count_length": self.segment_count_length,
        }
        fileformat.write(path, "binary-fuse", meta, {"packed": self.packed})

    @classmethod
    def load(cls, path: Path) -> "FuseFilter":
        """The filter in ``path``. Raises FilterError naming the file and what is wrong."""
        try:
            meta, arrays = fileformat.read(path, "binary-fuse", memory_map=False)
        except fileformat.IndexFileError as error:
            raise FilterError(str(error)) from None
        try:
            size, width, seed = int(meta["size"]), int(meta["width"]), int(meta["seed"])
            length, count_length = int(meta["segment_length"]), int(meta["segment_count_length"])
            packed = arrays["packed"]
            if meta["arity"] != ARITY or not MIN_WIDTH <= width <= MAX_WIDTH:
                raise ValueError("arity or width")
        except (KeyError, TypeError, ValueError):
            raise FilterError(f"{path}: not a binary fuse filter of this version") from None
        if not 0 <= seed < 1 << 64 or (
            size
            and (
                length < 1
                or length & (length - 1)
                or count_length < length
                or count_length % length
                or count_length >= 1 << 32
            )
        ):
            raise FilterError(f"{path}: inconsistent filter dimensions")
        built = cls(size, width, seed, length, count_length, packed)
        if len(packed) != -(-built.slots * width // 8) + 8:
            raise FilterError(
                f"{path}: {len(packed)} bytes of fingerprints, not what its size needs"
            )
        return built


def _dimensions(n: int) -> tuple[int, int]:
    """Segment length and count for ``n`` keys (the paper's 4-wise sizing)."""
    size = max(n, 2)
    length = 1 << max(0, math.floor(math.log(size) / math.log(2.91) - 0.5))
    length = min(length, _MAX_SEGMENT_LENGTH)
    factor = max(1.075, 0.77 + 0.305 * math.log(600_000) / math.log(size))
    capacity = round(size * factor)
    segments = max(1, -(-capacity // length) - (ARITY - 1))
    return length, segments


def _mix(x: int) -> int:
    """MurmurHash3's 64-bit finaliser (a bijection that spreads every bit)."""
    x &= _MASK64
    x ^= x >> 33
    x = (x * _M1) & _MASK64
    x ^= x >> 33
    x = (x * _M2) & _MASK64
    return x ^ (x >> 33)


@njit(cache=True, inline="always")
def _mix_nb(x: np.uint64) -> np.uint64:
    x ^= x >> np.uint64(33)
    x *= np.uint64(_M1)
    x ^= x >> np.uint64(33)
    x *= np.uint64(_M2)
    return x ^ (x >> np.uint64(33))


@njit(cache=True, inline="always")
def _slots(key: np.uint64, seed: np.uint64, length: int, count_length: int) -> tuple:  # type: ignore[type-arg]
    h = _mix_nb(key + seed)
    g = _mix_nb(h ^ np.uint64(_GOLDEN))
    mask = np.uint64(length - 1)
    start = ((h >> np.uint64(32)) * np.uint64(count_length)) >> np.uint64(32)
    step = np.uint64(length)
    p1 = (start + step) ^ (h & mask)
    p2 = (start + np.uint64(2) * step) ^ (g & mask)
    p3 = (start + np.uint64(3) * step) ^ ((g >> np.uint64(20)) & mask)
    fingerprint = _mix_nb(g ^ np.uint64(_M1))
    return int(start), int(p1), int(p2), int(p3), fingerprint


@njit(cache=True)
def _assign(
    keys: np.ndarray, seed: np.uint64, length: int, count_length: int, slots: int, width: int
) -> np.ndarray | None:
    """Peel the key-slot hypergraph; the slot values, or None when it does not peel."""
    n = len(keys)
    count = np.zeros(slots, dtype=np.uint32)
    xor_index = np.zeros(slots, dtype=np.uint32)
    for i in range(n):
        p0, p1, p2, p3, _ = _slots(keys[i], seed, length, count_length)
        for p in (p0, p1, p2, p3):
            count[p] += 1
            xor_index[p] ^= np.uint32(i)
    queue = np.empty(slots, dtype=np.int64)
    head = 0
    tail = 0
    for p in range(slots):
        if count[p] == 1:
            queue[tail] = p
            tail += 1
    order_key = np.empty(n, dtype=np.uint32)
    order_slot = np.empty(n, dtype=np.int64)
    peeled = 0
    while head < tail:
        p = queue[head]
        head += 1
        if count[p] != 1:
            continue
        i = xor_index[p]
        order_key[peeled] = i
        order_slot[peeled] = p
        peeled += 1
        q0, q1, q2, q3, _ = _slots(keys[i], seed, length, count_length)
        for q in (q0, q1, q2, q3):
            count[q] -= 1
            xor_index[q] ^= i
            if count[q] == 1:
                queue[tail] = q
                tail += 1
    if peeled != n:
        return None
    values = np.zeros(slots, dtype=np.uint64)
    low = np.uint64((1 << width) - 1)
    for j in range(n - 1, -1, -1):
        i = order_key[j]
        p = order_slot[j]
        q0, q1, q2, q3, fingerprint = _slots(keys[i], seed, length, count_length)
        value = fingerprint & low
        for q in (q0, q1, q2, q3):
            if q != p:
                value ^= values[q]
        values[p] = value
    return values


@njit(cache=True)
def _pack(values: np.ndarray, width: int) -> np.ndarray:
    packed = np.zeros((len(values) * width + 7) // 8 + 8, dtype=np.uint8)
    for i in range(len(values)):
        bit = i * width
        shifted = values[i] << np.uint64(bit & 7)
        at = bit >> 3
        for b in range(((bit & 7) + width + 7) // 8):
            packed[at + b] |= np.uint8((shifted >> np.uint64(8 * b)) & np.uint64(0xFF))
    return packed


@njit(cache=True, inline="always")
def _read(packed: np.ndarray, slot: int, width: int) -> np.uint64:
    bit = slot * width
    at = bit >> 3
    word = np.uint64(0)
    for b in range(8):
        word |= np.uint64(packed[at + b]) << np.uint64(8 * b)
    return (word >> np.uint64(bit & 7)) & np.uint64((1 << width) - 1)


@njit(cache=True)
def _contains(
    keys: np.ndarray, seed: np.uint64, length: int, count_length: int, width: int,
    packed: np.ndarray,
) -> np.ndarray:  # fmt: skip
    out = np.empty(len(keys), dtype=np.bool_)
    low = np.uint64((1 << width) - 1)
    for i in range(len(keys)):
        p0, p1, p2, p3, fingerprint = _slots(keys[i], seed, length, count_length)
        value = fingerprint & low
        value ^= _read(packed, p0, width)
        value ^= _read(packed, p1, width)
        value ^= _read(packed, p2, width)
        value ^= _read(packed, p3, width)
        out[i] = value == 0
    return out
