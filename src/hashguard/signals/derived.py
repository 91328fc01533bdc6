"""Derived PDQ hashes: the hashes of crops of an image, for list owners who hold the image.

PDQ cannot match a crop of more than a few percent: the DCT of the whole frame changes. A list
owner who holds the image (the hotline's analysts assess the item's media) can list, beside the
image's own hash, the hashes of the crops it is most often found as: centre crops of 5, 10 and
20 % per side ("crop-5", "crop-10", "crop-20") and 10 % off one side ("crop-top-10",
"crop-bottom-10", "crop-left-10", "crop-right-10"); and, when the image has uniform borders
(padded, letterboxed, a screenshot), the image inside them, as each rule of ``media.trim`` finds
it ("trim-lenient", "trim-strict", "trim-frame", "trim-panel"). A copy cropped like that is
then within the threshold of one of them.

All are computed from one decode: the decoded luma plane (a JPEG's reduced DCT decode included),
averaged in blocks to no less than 256 pixels a side, is cropped and hashed, with no new decode
per crop. A derived hash of quality below PDQ's minimum is left out (it could not match), and
so is one within ``NEAR`` bits of the image's own hash or of a derived hash kept before it (it
matches nothing they do not).
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

import numpy as np

from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import MediaSource, read_image
from hashguard.signals.pdq import MIN_QUALITY, REDUCED_MIN_SIDE, PdqHash, hash_luma

if TYPE_CHECKING:  # the decoder and the numba kernels load when something is hashed
    from hashguard.media.image import LumaImage

# name -> percent cut off the (top, bottom, left, right) side; in the order they are kept.
CROPS: Final[Mapping[str, tuple[int, int, int, int]]] = {
    "crop-5": (5, 5, 5, 5),
    "crop-10": (10, 10, 10, 10),
    "crop-20": (20, 20, 20, 20),
    "crop-top-10": (10, 0, 0, 0),
    "crop-bottom-10": (0, 10, 0, 0),
    "crop-left-10": (0, 0, 10, 0),
    "crop-right-10": (0, 0, 0, 10),
}
# A derived hash this close to one kept already adds nothing a list could match (a quarter of
# PDQ's threshold of 31: the two match the same copies but for a few at the edge).
NEAR: Final = 8
TRIM: Final = "trim-"
# The image inside its uniform borders, by media.trim's rules (named as query variants are).
TRIMS: Final = ("trim-lenient", "trim-strict", "trim-frame", "trim-panel")
NAMES: Final = (*CROPS, *TRIMS)
LABEL_PREFIX: Final = "derived:"  # a derived entry's label: derived:crop-10
REDUCED_SIDE: Final = 256  # the plane is cropped at no less (4 x PDQ's 64)


def derived_luma(
    luma: "LumaImage", original: PdqHash | None = None, names: tuple[str, ...] = NAMES
) -> dict[str, PdqHash]:
    """The derived hashes of a decoded luma plane, by name (those of ``names``, in ``NAMES``
    order), leaving out those of quality below 50 and those within ``NEAR`` bits of
    ``original`` (hashed here when not given) or of one kept before. Raises nothing."""
    from hashguard.media.image import LumaImage

    if original is None:
        original = hash_luma(luma)
    kept: dict[str, PdqHash] = {}
    near = [original]
    plane = _reduced(luma.pixels)
    for name, (first_row, last_row, first_col, last_col) in _boxes(luma, plane.shape, names):
        pixels = plane[first_row:last_row, first_col:last_col]
        # The cropped plane is hashed as an image of its own: a reduced decode's crop is then
        # the crop's reduced decode, which PDQ's resize tolerance covers.
        cropped = LumaImage(pixels, pixels.shape[1], pixels.shape[0], 1, luma.black, luma.white)
        value = hash_luma(cropped)
        if value.quality is not None and value.quality < MIN_QUALITY:
            continue
        if any(value.distance(other) <= NEAR for other in near):
            continue
        kept[name] = value
        near.append(value)
    return kept


def _boxes(
    luma: "LumaImage", shape: tuple[int, ...], names: tuple[str, ...]
) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Each derived hash's (first row, end row, first column, end column) in a plane of
    ``shape`` (``luma`` averaged down), in ``NAMES`` order; trims only where the image has
    uniform borders."""
    rows, cols = shape
    boxes = []
    for name in (name for name in CROPS if name in names):
        top, bottom, left, right = CROPS[name]
        boxes.append((name, (rows * top // 100, rows - rows * bottom // 100,
                             cols * left // 100, cols - cols * right // 100)))  # fmt: skip
    if any(name in names for name in TRIMS):
        from hashguard.media.trim import hypotheses

        full_rows, full_cols = luma.pixels.shape
        found = {f"{TRIM}{trim.rule}": trim.box for trim in hypotheses(luma)}
        for name in (name for name in TRIMS if name in names and name in found):
            box = found[name]
            row_span = (box.top * rows // full_rows, box.bottom * rows // full_rows)
            col_span = (box.left * cols // full_cols, box.right * cols // full_cols)
            boxes.append((name, (*row_span, *col_span)))
    return boxes


def _reduced(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` averaged in k x k blocks so that the shorter side stays at least
    ``REDUCED_SIDE`` (PDQ reads 64 x 64 of it; the crops' hashes cost a fraction then)."""
    rows, cols = pixels.shape
    k = min(rows, cols) // REDUCED_SIDE
    if k < 2:
        return pixels
    kept = pixels[: rows - rows % k, : cols - cols % k].astype(np.float32)
    # Summed along rows, then along columns: contiguous reductions (a 4-axis mean is slow).
    summed = kept.reshape(rows // k, k, -1).sum(axis=1).reshape(rows // k, cols // k, k).sum(axis=2)
    averaged: np.ndarray = summed * np.float32(1.0 / (k * k))
    return averaged


def derived_pdq(
    source: "MediaSource | LumaImage",
    limits: Limits = DEFAULT_LIMITS,
    original: PdqHash | None = None,
    names: tuple[str, ...] = NAMES,
) -> dict[str, PdqHash]:
    """An image's derived hashes (``derived_luma``), from one decode of ``source`` (image bytes
    or an open file; or its luma plane, decoded already). Raises ``MediaError`` kinds for
    media that cannot be decoded within ``limits``."""
    from hashguard.media.image import LumaImage, decode_luma

    if isinstance(source, LumaImage):
        return derived_luma(source, original, names)
    luma = decode_luma(read_image(source, limits), limits, min_side=REDUCED_MIN_SIDE)
    return derived_luma(luma, original, names)


def label(name: str) -> str:
    """The list entry label a derived hash is listed with: ``derived:crop-10``."""
    return f"{LABEL_PREFIX}{name}"
