"""Decode untrusted image bytes to luma, in memory, within limits.

Limits are checked from the header before any pixel buffer exists. JPEGs can be decoded at a
reduced scale (libjpeg DCT scaling) when the caller says how small it may go; everything else is
decoded at full resolution. EXIF orientation is applied, so the pixels are as a viewer shows them.
"""

import io
import math
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, UnidentifiedImageError

from hashguard.media.errors import CorruptMedia, LimitExceeded, MediaError, UnsupportedMedia, reason
from hashguard.media.formats import (
    AVIF,
    BMP,
    GIF,
    HEIF,
    JPEG,
    PNG,
    SNIFF_BYTES,
    TIFF,
    WEBP,
    Format,
    MediaKind,
    sniff,
)
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.media.luma import luma_from_grey, luma_from_rgb
from hashguard.media.structure import gif_frames, jpeg_counts, tiff_frames

_PILLOW_FORMATS: Final = {
    # Pillow's JPEG opener also gives MPO images (multi-picture: camera stereo, Ultra HDR gain
    # maps); "MPO" has no opener of its own, and naming it made damaged JPEGs fail as KeyError.
    JPEG: ["JPEG"],
    PNG: ["PNG"],
    GIF: ["GIF"],
    WEBP: ["WEBP"],
    BMP: ["BMP"],
    TIFF: ["TIFF"],
    HEIF: ["HEIF"],
    AVIF: ["AVIF"],
}
_JPEG_FAMILY: Final = {"JPEG", "MPO"}

# Above this many pixels, luma is taken in 8 bits by Pillow instead of exact float (speed, memory).
_EXACT_LUMA_MAX_PIXELS: Final = 4_000_000
# Cameras and editors write tens; a flood of segments only slows header parsers down.
_MAX_JPEG_SEGMENTS: Final = 10_000
_MAX_JPEG_PADDING: Final = 65_536  # bytes between segments; writers leave a few, if any
_ORIENTATION_TAG: Final = 0x0112
# Per EXIF orientation: does each oriented axis (rows, columns) run against the stored one?
_REVERSED_AXES: Final = {
    1: (False, False), 2: (False, True), 3: (True, True), 4: (True, False),
    5: (False, False), 6: (False, True), 7: (True, True), 8: (True, False),
}  # fmt: skip
_SIXTEEN_BIT_MODES: Final = {"I;16", "I;16L", "I;16B", "I;16N"}
# Modes Pillow converts to L with the same integer formula as from RGB (not YCbCr, LAB, HSV:
# their L is a channel of their own).
_LUMA_DIRECT_MODES: Final = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA"}
_BAND_ROWS: Final = 256  # rows copied at a time from Pillow into an array
# What decoding an image to luma holds at its peak per pixel (measured: bench/uploads.py).
# Large images: the decoded image (Pillow keeps colour in 4 bytes a pixel) and the luma array.
_COLOUR_BYTES_PER_PIXEL: Final = 5
_BYTES_PER_PIXEL: Final = {"1": 2, "L": 2, "P": 2, "LA": 5, "I;16": 6, "I;16L": 6, "I;16B": 6,
                           "I;16N": 6, "I": 8, "F": 8}  # fmt: skip
# Exact float luma (small images): decoded, an RGB copy, float32 luma.
_EXACT_BYTES_PER_PIXEL: Final = 12
# Pillow's WebP decoder holds libwebp's canvas, the previous one and the image (976 MB at 64 MP);
# HEIF and AVIF (libheif) are counted alike, not measured.
_CANVAS_FORMATS: Final = {"WEBP", "HEIF", "AVIF"}
_CANVAS_BYTES_PER_PIXEL: Final = 16


@dataclass(frozen=True, slots=True)
class LumaImage:
    """The luma plane of an image or video frame, oriented as a viewer shows it.

    ``pixels`` may be a reduced decode: ``scale`` full-resolution pixels per pixel on each axis,
    averaged in blocks aligned with the stored image; ``reversed_axes`` says, per axis of the
    oriented pixels, whether an EXIF flip made it run against that block grid (the partial
    block at the far edge then comes first). ``width`` and ``height`` are the full-resolution
    size. Pixel values map black..white to ``black``..``white`` (video luma is often 16..235).
    """

    pixels: np.ndarray
    width: int
    height: int
    scale: int = 1
    black: float = 0.0
    white: float = 255.0
    reversed_axes: tuple[bool, bool] = (False, False)


def image_size(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int]:
    """Return (width, height) as declared by the header, checking limits; decodes no pixels."""
    with _open(data, limits) as image:
        return image.size


def decoded_bytes(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, min_side: int | None = None
) -> int:
    """The memory ``decode_luma(data, limits, min_side=min_side)`` holds at its peak, estimated
    from the header (the pixels decoded, fewer for a JPEG decoded at a reduced scale, times
    what a pixel of its format and mode was measured to cost); decodes none. Raises as
    ``decode_luma``."""
    with _open(data, limits) as image:
        width, height = image.size
        scale = _draft_scale(image, min_side)
        if scale is not None:  # libjpeg decodes grey, reduced: the plane and its array
            return math.ceil(width / scale) * math.ceil(height / scale) * 2
        pixels = width * height
        if image.format in _CANVAS_FORMATS:
            return pixels * _CANVAS_BYTES_PER_PIXEL
        if pixels <= _EXACT_LUMA_MAX_PIXELS or min_side is None or max(width, height) <= min_side:
            return pixels * _EXACT_BYTES_PER_PIXEL
        return pixels * _BYTES_PER_PIXEL.get(image.mode, _COLOUR_BYTES_PER_PIXEL)


def decode_luma(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, min_side: int | None = None
) -> LumaImage:
    """Decode an image (the first frame of an animation) to its luma plane.

    With ``min_side`` set, a JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
    keeps both sides at least ``min_side`` pixels, and an image larger than ``min_side`` on
    either side is decoded to 8-bit luma. Otherwise luma is float32 from 8-bit RGB, exactly as
    the reference PDQ pipeline computes it.

    Raises ``EmptyMedia``, ``UnsupportedMedia``, ``CorruptMedia`` or ``LimitExceeded``.
    """
    with _open(data, limits) as image, _quiet():
        width, height = image.size
        exact = min_side is None or max(width, height) <= min_side
        scale = 1
        wanted = _draft_scale(image, min_side)
        if wanted is not None:
            image.draft("L", (width // wanted, height // wanted))
            scale = round(width / image.size[0])  # what libjpeg actually gave
        orientation = _orientation(image)
        try:
            image.load()
            pixels = _luma(image, exact=exact)
        except (MediaError, MemoryError):
            raise
        except Exception as exc:  # decoders raise many types; all mean the data is bad
            raise CorruptMedia(f"cannot decode {image.format} data: {reason(exc)}") from exc
    pixels = _orient(pixels, orientation)
    if orientation >= 5:
        width, height = height, width
    reversed_axes = _REVERSED_AXES[orientation]
    return LumaImage(np.ascontiguousarray(pixels), width, height, scale, 0.0, 255.0, reversed_axes)


def decode_rgb(data: bytes, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """Decode an image (the first frame of an animation) to 8-bit RGB at full resolution, as a
    viewer shows it (EXIF orientation applied; alpha dropped): a (height, width, 3) uint8 array.

    Raises ``EmptyMedia``, ``UnsupportedMedia``, ``CorruptMedia`` or ``LimitExceeded``.
    """
    with _open(data, limits) as image, _quiet():
        orientation = _orientation(image)
        try:
            image.load()
            if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
                grey = np.rint(_luma(image, exact=True)).astype(np.uint8)
                pixels = np.repeat(grey[:, :, np.newaxis], 3, axis=2)
            else:
                pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
        except (MediaError, MemoryError):
            raise
        except Exception as exc:  # decoders raise many types; all mean the data is bad
            raise CorruptMedia(f"cannot decode {image.format} data: {reason(exc)}") from exc
    return np.ascontiguousarray(_orient(pixels, orientation))


@contextmanager
def _quiet() -> Iterator[None]:
    # Decoders warn about oddities they recover from; the outcome is what counts.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _open(data: bytes, limits: Limits) -> Image.Image:
    limits.check_image_bytes(len(data))
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt.kind is not MediaKind.IMAGE:
        raise UnsupportedMedia(f"{fmt.name} is a video format, not an image")
    _check_structure(data, fmt, limits)
    if fmt in (HEIF, AVIF):
        _register_heif()
    try:
        with _quiet():
            image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[fmt])
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (far above our default limit) fired before ours could.
        numbers = [int(n) for n in re.findall(r"(\d+) pixels", str(exc))]
        declared = numbers[0] if numbers else None
        limit = limits.max_pixels
        if declared is not None and declared <= limits.max_pixels and len(numbers) > 1:
            limit = numbers[1]
        raise LimitExceeded("declared pixel count", declared, limit) from exc
    except UnidentifiedImageError as exc:
        raise CorruptMedia(f"cannot read the {fmt.name} header") from exc
    except (MediaError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptMedia(f"cannot read the {fmt.name} header: {reason(exc)}") from exc
    try:
        _check_header(image, fmt, limits)
    except BaseException:
        image.close()
        raise
    return image


def _check_structure(data: bytes, fmt: Format, limits: Limits) -> None:
    """Counts that decoders would take long to find, from the file structure, with early stop.

    A stopped count is over its limit, and the total is not known, so no number is given.
    """
    if fmt is JPEG:
        scans, segments, padding = jpeg_counts(data, limits.max_jpeg_scans, _MAX_JPEG_SEGMENTS)
        if segments > _MAX_JPEG_SEGMENTS:
            raise CorruptMedia(f"more than {_MAX_JPEG_SEGMENTS:,} JPEG segments: not an image")
        if padding > _MAX_JPEG_PADDING:
            raise CorruptMedia(f"{padding:,} bytes of padding between JPEG segments: not an image")
        if scans > limits.max_jpeg_scans:
            raise LimitExceeded("JPEG scan count", None, limits.max_jpeg_scans)
    elif fmt in (GIF, TIFF):
        count = gif_frames if fmt is GIF else tiff_frames
        if count(data, limits.max_frames) > limits.max_frames:
            raise LimitExceeded("frame count", None, limits.max_frames)


def _check_header(image: Image.Image, fmt: Format, limits: Limits) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptMedia(f"{fmt.name} header declares an empty {width}x{height} image")
    limits.check_pixels(width, height)
    if fmt in (GIF, TIFF):
        return  # counted from the structure already; Pillow's count walks every frame
    try:
        with _quiet():
            frames = int(getattr(image, "n_frames", 1))
    except (MediaError, MemoryError):
        raise
    except Exception as exc:
        raise CorruptMedia(f"cannot count the frames of this {fmt.name}: {reason(exc)}") from exc
    limits.check_frames(frames)


def _draft_scale(image: Image.Image, min_side: int | None) -> int | None:
    """The DCT scale libjpeg is asked to decode ``image`` at, straight to grey (1: full size),
    when it is a JPEG larger than ``min_side``; None when it is decoded as stored."""
    width, height = image.size
    if not min_side or max(width, height) <= min_side:
        return None
    if image.format not in _JPEG_FAMILY or image.mode not in ("RGB", "L"):
        return None
    return _jpeg_scale(width, height, min_side)


def _jpeg_scale(width: int, height: int, min_side: int) -> int:
    scale = 1
    while scale < 8 and min(width, height) // (scale * 2) >= min_side:
        scale *= 2
    return scale


def _luma(image: Image.Image, *, exact: bool) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        values = _array(image, np.float32)
        if mode in _SIXTEEN_BIT_MODES or (mode == "I" and values.max(initial=0) > 255):
            values /= np.float32(257.0)
        return np.clip(values, 0, 255, out=values)
    if mode in ("1", "L", "LA", "La"):
        if exact:
            return luma_from_grey(np.asarray(image if mode == "L" else image.convert("L")))
        return _array(image, np.uint8, lambda band: band.convert("L"))
    if exact or image.width * image.height <= _EXACT_LUMA_MAX_PIXELS:
        return luma_from_rgb(np.asarray(image if mode == "RGB" else image.convert("RGB")))
    # Large: 8-bit luma, converted a band at a time (no RGB copy of the whole image), straight
    # from the decoded pixels where Pillow's formula is the one it uses from RGB.
    if mode in _LUMA_DIRECT_MODES:
        return _array(image, np.uint8, lambda band: band.convert("L"))
    return _array(image, np.uint8, lambda band: band.convert("RGB").convert("L"))


def _array(
    image: Image.Image,
    dtype: type[np.generic],
    convert: Callable[[Image.Image], Image.Image] | None = None,
) -> np.ndarray:
    """The pixels of ``image`` (single-band, or made so by ``convert``) as a new array of
    ``dtype``, copied and converted a band of rows at a time: the decoded image and the array
    are all that is held, never a whole converted copy, nor the whole image copied to bytes
    and joined (as Pillow's own array export does: three times the plane at once)."""
    width, height = image.size
    pixels = np.empty((height, width), dtype)
    for top in range(0, height, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, height)
        band = image.crop((0, top, width, bottom))
        pixels[top:bottom] = np.asarray(band if convert is None else convert(band))
    return pixels


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an image array (rows, columns, ...), as Pillow's
    ``exif_transpose`` does."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1, :]
    if orientation == 5:
        return np.swapaxes(pixels, 0, 1)
    if orientation == 6:
        return np.rot90(pixels, -1)
    if orientation == 7:
        return np.swapaxes(pixels, 0, 1)[::-1, ::-1]
    if orientation == 8:
        return np.rot90(pixels, 1)
    return pixels


_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        import pillow_heif

        pillow_heif.register_heif_opener()
        _heif_registered = True
