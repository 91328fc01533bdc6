"""Where an image sits inside flat borders: crop boxes to hash besides the whole image.

Padding, letterboxing and screenshots put an image inside near-uniform borders, which move
every bit of a perceptual hash. No single rule finds the image, because many images have flat
margins of their own; so each rule gives a *hypothesis* and the caller hashes each:

- ``lenient``: only the outermost band of one uniform level on each side (it stops where the
  level changes, so an image's own flat margin of another level is kept);
- ``strict``: every near-uniform row and column from the edge in, within a looser tolerance
  (JPEG noise, antialiased edges, thin separator lines);
- ``frame``: the largest region free of flat bars (an image in a UI frame: a status bar, a
  toolbar, a caption, flat margins, where the bars carry sparse text or icons). A bar is at
  the level of the frame's edges, so an image's own flat sky or wall is not taken for one;
- ``panel``: the same, a bar being any row mostly at its own level (a picture on a card of
  another colour than the page around it, as feeds show posts; but an image's own flat rows
  are taken for bars too, hence both).

Luma only (what PDQ hashes), so a coloured border is a grey level here. Vectorised over a
sampled grid of at most ``_SAMPLES`` pixels a side, so it costs a few milliseconds at any size.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from hashguard.media.image import LumaImage

# A box trimming less than this share of each side is no hypothesis (PDQ barely moves).
MIN_TRIM: Final = 0.02
# A hypothesis keeping less than this share of a side is dropped: no longer the image.
MIN_KEPT: Final = 0.30
# The frame rule keeps less: a landscape image in a phone screenshot is a quarter of its height.
MIN_KEPT_FRAME: Final = 0.20
# Lenient: each pixel of a border row within this of the band's level (luma 0-255).
_LENIENT_TOLERANCE: Final = 6.0
# Strict: a row whose pixels deviate from its mean by at most this (standard deviation) and
# whose extremes stay within _STRICT_SPREAD of it.
_STRICT_DEVIATION: Final = 6.0
_STRICT_SPREAD: Final = 48.0
# Frame: a bar row has at least this share of its pixels at its level (text and icons on a bar).
_BAR_SHARE: Final = 0.85
_BAR_TOLERANCE: Final = 2.0
# Frame: a block of non-bar rows shorter than this share of the side is text or an icon.
_SHORT_RUN: Final = 0.04
_SAMPLES: Final = 200


@dataclass(frozen=True, slots=True)
class Box:
    """A crop box in pixels of a ``LumaImage``: rows ``top:bottom``, columns ``left:right``."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True, slots=True)
class Trim:
    """One hypothesis of where the image is: its rule (``lenient``, ``strict``, ``frame``,
    ``panel``)."""

    rule: str
    box: Box


RULES: Final = ("lenient", "strict", "frame", "panel")


def hypotheses(luma: LumaImage) -> tuple[Trim, ...]:
    """The distinct crop boxes the rules find, in the order of ``RULES``; none when nothing
    would be trimmed (or only slivers, or too much: see MIN_KEPT, MIN_KEPT_FRAME)."""
    pixels = luma.pixels
    rows, cols = pixels.shape
    if rows < 8 or cols < 8:
        return ()
    row_step = max(1, -(-rows // _SAMPLES))
    col_step = max(1, -(-cols // _SAMPLES))
    grid = np.ascontiguousarray(pixels[::row_step, ::col_step], dtype=np.float32)
    found: list[Trim] = []
    seen = {Box(0, 0, rows, cols)}
    for rule, sampled in (
        ("lenient", _lenient(grid)),
        ("strict", _strict(grid)),
        ("frame", _frame(grid, _level)),
        ("panel", _frame(grid, _own_level)),
    ):
        least = MIN_KEPT_FRAME if rule in ("frame", "panel") else MIN_KEPT
        box = _checked(_refined(pixels, sampled, row_step, col_step), rows, cols, least)
        if box is not None and box not in seen:
            seen.add(box)
            found.append(Trim(rule, box))
    return tuple(found)


def crop(luma: LumaImage, box: Box) -> LumaImage:
    """The part of ``luma`` in ``box``, as a plane of its own (a reduced decode stays one, its
    partial edge block kept where the box holds it)."""
    pixels = np.ascontiguousarray(luma.pixels[box.top : box.bottom, box.left : box.right])
    rows, cols = luma.pixels.shape
    height, rows_reversed = _cropped_axis(box.top, box.bottom, rows, luma.height, luma, 0)
    width, cols_reversed = _cropped_axis(box.left, box.right, cols, luma.width, luma, 1)
    reversed_axes = (rows_reversed, cols_reversed)
    return LumaImage(pixels, width, height, luma.scale, luma.black, luma.white, reversed_axes)


def _cropped_axis(
    start: int, stop: int, count: int, full: int, luma: LumaImage, axis: int
) -> tuple[int, bool]:
    """The full-resolution size of pixels ``start:stop`` of an axis of ``count`` reduced
    pixels (``full`` at full resolution), and whether the crop's axis runs reversed: only when
    it holds the partial block, which a reversed axis has first and any other last."""
    scale, reversed_axis = luma.scale, luma.reversed_axes[axis]
    partial = full - (count - 1) * scale  # 1..scale full-resolution pixels
    edge = 0 if reversed_axis else count - 1
    if start <= edge < stop:
        return (stop - start - 1) * scale + partial, reversed_axis
    return (stop - start) * scale, False


def _lenient(grid: np.ndarray) -> Box:
    top, bottom = _bands(grid)
    left, right = _bands(grid.T)
    return Box(top, left, bottom, right)


def _bands(grid: np.ndarray) -> tuple[int, int]:
    """Where the bands of the first and of the last row's level end (rows of ``grid``)."""
    high, low = grid.max(axis=1), grid.min(axis=1)
    first = np.median(grid[0])
    last = np.median(grid[-1])
    from_first = (high - first <= _LENIENT_TOLERANCE) & (first - low <= _LENIENT_TOLERANCE)
    from_last = (high - last <= _LENIENT_TOLERANCE) & (last - low <= _LENIENT_TOLERANCE)
    return _leading(from_first), len(grid) - _leading(from_last[::-1])


def _strict(grid: np.ndarray) -> Box:
    flat_rows = _near_uniform(grid)
    flat_cols = _near_uniform(grid.T)
    top, bottom = _leading(flat_rows), len(flat_rows) - _leading(flat_rows[::-1])
    left, right = _leading(flat_cols), len(flat_cols) - _leading(flat_cols[::-1])
    return Box(top, left, bottom, right)


def _near_uniform(grid: np.ndarray) -> np.ndarray:
    spread = grid.max(axis=1) - grid.min(axis=1)
    count = grid.shape[1]
    mean = grid.sum(axis=1) / count
    variance = np.einsum("ij,ij->i", grid, grid) / count - mean * mean
    return np.asarray((variance <= _STRICT_DEVIATION**2) & (spread <= _STRICT_SPREAD))


def _frame(grid: np.ndarray, level_of: Callable[[np.ndarray], np.ndarray]) -> Box:
    """From the first to the last long block of rows that are not bars; within those rows, the
    columns inside the side margins (bands of one level: an image's own flat columns would
    pass for bars); then the rows again within those columns. Short blocks between bars are
    text lines and icons. ``level_of``: the level a row must mostly be at to be a bar."""
    top, bottom = _span(~_bars(grid, level_of(grid)))
    left, right = _bands(grid[top:bottom].T) if bottom > top else (0, 0)
    rows = grid[top:bottom]
    margins = np.concatenate((rows[:, :left], rows[:, right:]), axis=1)
    # Inside the side margins, a bar is at the margins' level: a flat sky or wall of the
    # image itself, at another level, is part of the image.
    if level_of is _own_level or not margins.shape[1]:
        level = level_of(rows[:, left:right])
    else:
        level = _level(margins)
    inner_top, inner_bottom = _span(~_bars(rows[:, left:right], level))
    return Box(top + inner_top, left, top + inner_bottom, right)


def _level(grid: np.ndarray) -> np.ndarray:
    """Per row, the level at its ends (the median of its first and last three samples): a
    frame's bar or margin reaches the edges of the screen, an image inside it does not."""
    if grid.shape[1] == 0:
        return np.zeros((grid.shape[0], 1), np.float32)
    ends = np.sort(np.concatenate((grid[:, :3], grid[:, -3:]), axis=1), axis=1)
    low, high = (ends.shape[1] - 1) // 2, ends.shape[1] // 2  # the median, without np.median's cost
    return np.asarray((ends[:, low : low + 1] + ends[:, high : high + 1]) / 2)


def _own_level(grid: np.ndarray) -> np.ndarray:
    """Per row, its own typical level: the middle of 15 samples (a full median per row costs
    more than the rest)."""
    if grid.shape[1] == 0:
        return np.zeros((grid.shape[0], 1), np.float32)
    samples = np.sort(grid[:, np.linspace(0, grid.shape[1] - 1, 15).astype(np.intp)], axis=1)
    return np.asarray(samples[:, 7:8])


def _bars(grid: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Per row: mostly at ``level`` (a flat margin, or a bar with sparse text or icons)."""
    if grid.shape[0] == 0 or grid.shape[1] == 0:
        return np.zeros(grid.shape[0], bool)
    share = (np.abs(grid - level) <= _BAR_TOLERANCE).mean(axis=1)
    return np.asarray(share >= _BAR_SHARE)


def _span(flags: np.ndarray) -> tuple[int, int]:
    """From the start of the first run of True values at least ``_SHORT_RUN`` of the length
    long to the end of the last such run ((0, 0) when there is none)."""
    padded = np.concatenate(([False], flags, [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    long = (ends - starts) >= max(1.0, _SHORT_RUN * len(flags))
    if not long.any():
        return 0, 0
    return int(starts[long][0]), int(ends[long][-1])


def _leading(flags: np.ndarray) -> int:
    """The number of leading True values."""
    misses = np.flatnonzero(~flags)
    return int(misses[0]) if len(misses) else len(flags)


def _refined(pixels: np.ndarray, box: Box, row_step: int, col_step: int) -> Box:
    """``box`` (in sampled rows and columns) in pixels: each edge where the rows (columns) it
    could fall between differ most, among the ``step`` the sampling could not tell apart."""
    columns = pixels[:, ::col_step]
    lines = pixels[::row_step, :].T
    return Box(
        _edge(columns, box.top * row_step, row_step),
        _edge(lines, box.left * col_step, col_step),
        _edge(columns, box.bottom * row_step, row_step),
        _edge(lines, box.right * col_step, col_step),
    )


def _edge(plane: np.ndarray, edge: int, step: int) -> int:
    """The boundary between rows of ``plane`` in ``edge - step + 1 .. edge`` (the first row
    after it) with the greatest mean change from the row before it."""
    size = plane.shape[0]
    edge = min(edge, size)
    low = max(1, edge - step + 1)
    if step == 1 or edge <= 0 or edge >= size or low > edge:
        return edge
    window = np.asarray(plane[low - 1 : edge + 1], dtype=np.float32)
    change = np.abs(np.diff(window, axis=0)).mean(axis=1)
    return low + int(np.argmax(change))


def _checked(box: Box, rows: int, cols: int, least: float = MIN_KEPT) -> Box | None:
    """``box``, unless it trims only slivers (less than ``MIN_TRIM`` of each side: the plain
    hash is as good) or keeps too little of a side."""
    height, width = box.bottom - box.top, box.right - box.left
    if height < least * rows or width < least * cols:
        return None
    if rows - height < MIN_TRIM * rows and cols - width < MIN_TRIM * cols:
        return None
    return box
