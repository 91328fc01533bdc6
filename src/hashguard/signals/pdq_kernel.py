"""The PDQ transform: luma -> 64x64 -> 16x16 DCT -> 256 bits, and the quality metric.

Follows Meta's PDQ specification (pdqhash-2017-10-09): two passes of a Jarosz box filter,
decimation to 64x64, a DCT keeping frequencies 1..16 on each axis, bits = coefficient > median.
The exact path repeats the reference's float32 arithmetic in the same order, so it gives
bit-identical hashes. The weighted path computes the same linear map as one pair of matrix
products, which also works on a JPEG decoded at reduced scale (see ``weighted_64x64``).
"""

import math
from functools import lru_cache
from typing import Final

import numpy as np
from numba import njit

MIN_SIDE: Final = 5  # the reference hashes anything smaller as all-zero, quality 0
_ROWS_PER_CHUNK: Final = 512


@njit(cache=True, nogil=True)
def jarosz_window(old_size: int) -> int:  # pragma: no cover - compiled
    """The reference's box-filter window for downsampling ``old_size`` pixels to 64."""
    return (old_size + 127) // 128


def _dct_matrix() -> np.ndarray:
    # As the reference builds it: float scale times double cosine, rounded to float32.
    scale = float(np.float32(math.sqrt(2.0 / 64.0)))
    step = math.pi / 2.0 / 64.0
    matrix = np.empty((16, 64), np.float32)
    for i in range(16):
        for j in range(64):
            matrix[i, j] = scale * math.cos(step * (i + 1) * (2 * j + 1))
    return matrix


DCT_16X64: Final = _dct_matrix()


@njit(cache=True, nogil=True)
def _box_along_columns(src: np.ndarray, dst: np.ndarray, window: int) -> None:  # pragma: no cover
    # The reference's 1-D box filter run down every column at once (row-major friendly),
    # with the same float32 running sum per column, so results are bit-identical.
    rows, cols = src.shape
    half = (window + 2) // 2
    acc = np.zeros(cols, np.float32)
    ri = 0
    li = 0
    oi = 0
    count = 0
    for _ in range(half - 1):
        for j in range(cols):
            acc[j] += src[ri, j]
        count += 1
        ri += 1
    for _ in range(window - half + 1):
        count += 1
        c = np.float32(count)
        for j in range(cols):
            acc[j] += src[ri, j]
            dst[oi, j] = acc[j] / c
        ri += 1
        oi += 1
    c = np.float32(count)
    for _ in range(rows - window):
        for j in range(cols):
            acc[j] += src[ri, j]
            acc[j] -= src[li, j]
            dst[oi, j] = acc[j] / c
        li += 1
        ri += 1
        oi += 1
    for _ in range(half - 1):
        count -= 1
        c = np.float32(count)
        for j in range(cols):
            acc[j] -= src[li, j]
            dst[oi, j] = acc[j] / c
        li += 1
        oi += 1


@njit(cache=True, nogil=True)
def _box_along_rows(src: np.ndarray, dst: np.ndarray, window: int) -> None:  # pragma: no cover
    rows, cols = src.shape
    half = (window + 2) // 2
    for r in range(rows):
        acc = np.float32(0.0)
        ri = 0
        li = 0
        oi = 0
        count = 0
        for _ in range(half - 1):
            acc += src[r, ri]
            count += 1
            ri += 1
        for _ in range(window - half + 1):
            acc += src[r, ri]
            count += 1
            dst[r, oi] = acc / np.float32(count)
            ri += 1
            oi += 1
        c = np.float32(count)
        for _ in range(cols - window):
            acc += src[r, ri]
            acc -= src[r, li]
            dst[r, oi] = acc / c
            li += 1
            ri += 1
            oi += 1
        for _ in range(half - 1):
            acc -= src[r, li]
            count -= 1
            dst[r, oi] = acc / np.float32(count)
            li += 1
            oi += 1


@njit(cache=True, nogil=True)
def _jarosz_64x64(luma: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    rows, cols = luma.shape
    window_along_rows = jarosz_window(cols)
    window_along_cols = jarosz_window(rows)
    work = luma.astype(np.float32)  # always a copy: the filter runs in place
    spare = np.empty_like(work)
    for _ in range(2):
        _box_along_rows(work, spare, window_along_rows)
        _box_along_columns(spare, work, window_along_cols)
    out = np.empty((64, 64), np.float32)
    for i in range(64):
        src_i = int(((i + 0.5) * rows) / 64)
        for j in range(64):
            out[i, j] = work[src_i, int(((j + 0.5) * cols) / 64)]
    return out


def exact_64x64(luma: np.ndarray) -> np.ndarray:
    """Blur and decimate full-resolution luma to 64x64 exactly as the reference does."""
    if luma.shape == (64, 64):
        return luma.astype(np.float32)
    return _jarosz_64x64(np.ascontiguousarray(luma))


def _sample_weights(full: int) -> list[tuple[int, np.ndarray]]:
    """Per output sample of an axis of ``full`` pixels, the first pixel it reads and the weights
    of the pixels from there on: two passes of the edge-normalised box filter, read at the
    reference's decimation point."""
    window = int(jarosz_window(full))
    half = (window + 2) // 2

    def box(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.maximum(x - (window - half), 0), np.minimum(x + (half - 1), full - 1)

    samples = []
    for i in range(64):
        p = np.array([int(((i + 0.5) * full) / 64)])
        p_lo, p_hi = box(p)
        inner = np.arange(p_lo[0], p_hi[0] + 1)
        lo, hi = box(inner)
        first, last = int(lo[0]), int(hi[-1])
        # Output = mean over o in box(p) of the mean over box(o): spread with a difference
        # array over the support [first, last], then integrate.
        amount = 1.0 / (hi - lo + 1) / len(inner)
        diff = np.zeros(last - first + 2)
        np.add.at(diff, lo - first, amount)
        np.add.at(diff, hi - first + 1, -amount)
        samples.append((first, np.cumsum(diff[:-1])))
    return samples


def _banded(rows: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    band = max(len(w) for _, w in rows)
    starts = np.array([start for start, _ in rows])
    table = np.zeros((64, band), np.float32)
    for i, (_, w) in enumerate(rows):
        table[i, : len(w)] = w
    return starts, table


def _in_blocks(
    pixels: np.ndarray, weights: np.ndarray, shift: int, scale: int
) -> tuple[int, np.ndarray]:
    """Weights of full-resolution ``pixels`` (ascending) summed per reduced pixel."""
    blocks = (pixels + shift) // scale
    return int(blocks[0]), np.bincount(blocks - blocks[0], weights=weights)


def _axis_map(full: int, reduced: int, scale: int, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """The reference's blur-and-decimate map along one axis, as 64 short rows of weights.

    Output sample i reads ``weights[i]`` times the reduced pixels from ``starts[i]`` on: the
    weights of ``_sample_weights``, with those of the ``scale`` full-resolution pixels that one
    reduced pixel averages summed. This equals the reference's map on a reduced decode up to
    the variation of the weights inside one block. Each row covers about 1/32 of the axis, so
    the map stays small however long the axis is. ``reverse``: the axis runs against the
    decoder's block grid.
    """
    shift = reduced * scale - full if reverse else 0  # the partial block comes first
    rows = [
        _in_blocks(np.arange(first, first + len(weights)), weights, shift, scale)
        for first, weights in _sample_weights(full)
    ]
    return _banded(rows)


def _resized_axis_map(
    full: int, resized: int, reduced: int, scale: int, reverse: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``_axis_map`` of the axis first resized from ``full`` to ``resized`` pixels by linear
    interpolation (a triangle filter widened by the ratio when shrinking, as Pillow's bilinear
    resize), as weights of the reduced pixels of the original axis."""
    shift = reduced * scale - full if reverse else 0
    ratio = full / resized
    support = max(ratio, 1.0)
    reach = math.ceil(support) + 1
    rows = []
    for first, weights in _sample_weights(resized):
        centres = (np.arange(first, first + len(weights)) + 0.5) * ratio  # in full pixels
        base = np.floor(centres).astype(np.int64)
        pixels = base[:, None] + np.arange(-reach, reach + 1)[None, :]
        spread = np.maximum(0.0, 1.0 - np.abs(pixels + 0.5 - centres[:, None]) / support)
        spread[(pixels < 0) | (pixels >= full)] = 0.0
        spread *= (weights / spread.sum(axis=1))[:, None]
        lo = max(int(pixels.min()), 0)
        on_axis = np.zeros(int(pixels.max()) + 1 - lo)
        inside = spread > 0
        np.add.at(on_axis, pixels[inside] - lo, spread[inside])
        rows.append(_in_blocks(np.arange(lo, lo + len(on_axis)), on_axis, shift, scale))
    return _banded(rows)


_axis_map_cached = lru_cache(maxsize=256)(_axis_map)
_resized_axis_map_cached = lru_cache(maxsize=256)(_resized_axis_map)
_CACHED_MAX_SIDE: Final = 20_000  # a cached map is about 2 x side floats


def weighted_64x64(
    pixels: np.ndarray,
    height: int,
    width: int,
    scale: int,
    reversed_axes: tuple[bool, bool] = (False, False),
) -> np.ndarray:
    """The reference's 64x64 downsample of an image of ``height`` x ``width``, computed from
    ``pixels``, that image decoded at 1/``scale`` (each pixel the mean of a scale x scale block).
    """
    rows, cols = pixels.shape
    row_map = _axis_map_cached if height <= _CACHED_MAX_SIDE else _axis_map
    col_map = _axis_map_cached if width <= _CACHED_MAX_SIDE else _axis_map
    row_starts, row_weights = row_map(height, rows, scale, reversed_axes[0])
    col_starts, col_weights = col_map(width, cols, scale, reversed_axes[1])
    out = np.empty((64, 64), np.float32)
    _weighted(pixels, row_starts, row_weights, col_starts, col_weights, out)
    return out


def resized_64x64(
    pixels: np.ndarray,
    height: int,
    width: int,
    scale: int,
    reversed_axes: tuple[bool, bool],
    size: tuple[int, int],
) -> np.ndarray:
    """``weighted_64x64`` of the image first resized to ``size`` (height, width) by linear
    interpolation: the 64x64 buffer of a resized copy, without making the copy."""
    rows, cols = pixels.shape
    cached = max(height, width) <= _CACHED_MAX_SIDE
    axis_map = _resized_axis_map_cached if cached else _resized_axis_map
    row_starts, row_weights = axis_map(height, size[0], rows, scale, reversed_axes[0])
    col_starts, col_weights = axis_map(width, size[1], cols, scale, reversed_axes[1])
    out = np.empty((64, 64), np.float32)
    _weighted(pixels, row_starts, row_weights, col_starts, col_weights, out)
    return out


@njit(cache=True, nogil=True)
def _weighted(
    pixels: np.ndarray,
    row_starts: np.ndarray,
    row_weights: np.ndarray,
    col_starts: np.ndarray,
    col_weights: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    # Float32 sums in one fixed order (rows of a band in turn, then columns), so the result is
    # the same on every CPU (a BLAS product sums in the order its kernel chooses) and the
    # browser's hasher, summing in the same order, gets the same bits.
    rows, cols = pixels.shape
    partial = np.zeros((64, cols), np.float32)
    for i in range(64):
        start = row_starts[i]
        for k in range(min(row_weights.shape[1], rows - start)):
            weight = row_weights[i, k]
            if weight == 0:
                continue
            for c in range(cols):
                partial[i, c] += weight * np.float32(pixels[start + k, c])
    for j in range(64):
        start = col_starts[j]
        band = min(col_weights.shape[1], cols - start)
        for i in range(64):
            total = np.float32(0.0)
            for k in range(band):
                total += partial[i, start + k] * col_weights[j, k]
            out[i, j] = total


@njit(cache=True, nogil=True)
def _gradient(u: np.float32, v: np.float32) -> int:  # pragma: no cover - compiled
    # The reference quantises each step to whole percent of full scale, truncating.
    return abs(int(((u - v) * np.float32(100.0)) / np.float32(255.0)))


@njit(cache=True, nogil=True)
def quality(buffer: np.ndarray) -> int:  # pragma: no cover - compiled
    """The reference's quality metric: quantised gradient sum of the 64x64 image, 0..100."""
    gradients = 0
    for i in range(64):
        for j in range(64):
            if i < 63:
                gradients += _gradient(buffer[i, j], buffer[i + 1, j])
            if j < 63:
                gradients += _gradient(buffer[i, j], buffer[i, j + 1])
    return min(gradients // 90, 100)


@njit(cache=True, nogil=True)
def _times_transposed(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # pragma: no cover
    # a @ b.T with a float32 running sum over k, in the reference's order.
    out = np.empty((a.shape[0], b.shape[0]), np.float32)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            total = np.float32(0.0)
            for k in range(a.shape[1]):
                total += a[i, k] * b[j, k]
            out[i, j] = total
    return out


@njit(cache=True, nogil=True)
def dct_16x16(buffer: np.ndarray, matrix: np.ndarray) -> np.ndarray:  # pragma: no cover
    """D A D^T for the 16x64 DCT matrix D, summed in the reference's order."""
    return _times_transposed(_times_transposed(matrix, buffer.T), matrix)


@njit(cache=True, nogil=True)
def _torben_median(values: np.ndarray) -> np.float32:  # pragma: no cover - compiled
    # Torben's selection, as the reference uses: the value at rank (n+1)/2 without sorting.
    n = values.size
    low = values[0]
    high = values[0]
    for i in range(1, n):
        low = min(low, values[i])
        high = max(high, values[i])
    half = (n + 1) // 2
    while True:
        guess = (low + high) / np.float32(2.0)
        less = 0
        greater = 0
        equal = 0
        max_below = low
        min_above = high
        for i in range(n):
            v = values[i]
            if v < guess:
                less += 1
                max_below = max(max_below, v)
            elif v > guess:
                greater += 1
                min_above = min(min_above, v)
            else:
                equal += 1
        if less <= half and greater <= half:
            break
        if less > greater:
            high = max_below
        else:
            low = min_above
    if less >= half:
        return max_below
    if less + equal >= half:
        return guess
    return min_above


@njit(cache=True, nogil=True)
def hash_bits(dct: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """256 bits, coefficient > median, packed in the order of the hex string (bit 255 first)."""
    flat = dct.ravel()
    median = _torben_median(flat)
    out = np.zeros(32, np.uint8)
    for k in range(256):
        if flat[k] > median:
            out[31 - (k >> 3)] |= np.uint8(1 << (k & 7))
    return out


# The 8 dihedral variants in ThreatExchange's order, as (transpose, row sign, column sign):
# mirroring an axis negates the odd frequencies (0-based even indices) along it.
DIHEDRAL: Final = (
    ("original", False, False, False),
    ("rotate90", True, False, True),
    ("rotate180", False, True, True),
    ("rotate270", True, True, False),
    ("flipx", False, True, False),
    ("flipy", False, False, True),
    ("flipplus1", True, False, False),
    ("flipminus1", True, True, True),
)
_ALTERNATING: Final = np.where(np.arange(16) % 2 == 0, -1.0, 1.0).astype(np.float32)


def dihedral_dct(dct: np.ndarray, transpose: bool, flip_rows: bool, flip_cols: bool) -> np.ndarray:
    """The DCT of the image rotated or flipped, from the DCT of the image."""
    out = dct
    if flip_rows:
        out = out * _ALTERNATING[:, None]
    if flip_cols:
        out = out * _ALTERNATING[None, :]
    return np.ascontiguousarray(out.T if transpose else out)
