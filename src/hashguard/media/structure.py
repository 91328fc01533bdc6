"""Counts read from a file's structure without decoding it: JPEG scans, GIF and TIFF frames.

Decoders count these the slow way (Pillow walks every GIF frame, and its TIFF loop check grows
with the square of the frame count), and a progressive JPEG with thousands of scans makes
libjpeg-turbo work for a minute on a few kilobytes. These walkers stop as soon as the count
passes its limit, so refusing such a file costs next to nothing; the JPEG walk runs at C speed
through padding and image data. Malformed structure ends the walk; the decoder reports it
properly afterwards.
"""

import re
import struct
from typing import Final, NamedTuple

import numpy as np

# The next marker between segments: libjpeg skips stray bytes and 0xFF fill bytes before it.
_NEXT_MARKER: Final = re.compile(rb"\xff+([^\x00\xff])")
_SOS: Final = 0xDA
_EOI: Final = 0xD9
_STANDALONE: Final = {0x01, 0xD8, *range(0xD0, 0xD8)}  # TEM, SOI and RSTn carry no length
_PROGRESSIVE_FRAMES: Final = {0xC2, 0xC6, 0xCA, 0xCE}  # SOF2, SOF6, SOF10, SOF14
# A GIF walk takes at most this many steps (blocks, sub-blocks, stray bytes): about 0.5 s.
_GIF_STEPS: Final = 2_000_000


class JpegCounts(NamedTuple):
    scans: int  # start-of-scan segments (a baseline image has 1)
    segments: int  # marker segments of any kind
    padding: int  # stray and fill bytes between segments


def jpeg_counts(data: bytes, max_scans: int, max_segments: int) -> JpegCounts:
    """Counts over a JPEG's first image; the walk stops once scans or segments pass their
    maximum. Header parsers walk padding a byte at a time, so it is counted too.

    Only a progressive JPEG can hold many scans, so only its image data is walked past the
    first scan; a sequential one costs a walk through its headers and nothing more.
    """
    scans = segments = padding = 0
    progressive = False
    ends: np.ndarray | None = None
    position = 2  # after SOI
    while scans <= max_scans and segments <= max_segments:
        found = _NEXT_MARKER.search(data, position)
        if found is None:
            break
        padding += found.end() - 2 - position  # what precedes the marker's last 0xFF
        marker, position = found.group(1)[0], found.end()
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            continue
        if position + 2 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, position)
        position += length
        segments += 1
        progressive = progressive or marker in _PROGRESSIVE_FRAMES
        if marker == _SOS:
            scans += 1
            if not progressive:
                break
            if ends is None:
                ends = _scan_ends(data, position)
            following = int(np.searchsorted(ends, position))
            if following == len(ends):
                break
            position = int(ends[following])
    return JpegCounts(scans, segments, padding)


def _scan_ends(data: bytes, start: int) -> np.ndarray:
    """Positions from ``start`` on of 0xFF bytes that begin a marker: in image data every other
    0xFF is followed by 0x00 (stuffing), a restart marker or another 0xFF (fill)."""
    view = np.frombuffer(data, dtype=np.uint8)[start:]
    at = np.flatnonzero(view[:-1] == 0xFF)
    following = view[at + 1]
    marker = (following != 0x00) & (following != 0xFF) & ((following < 0xD0) | (following > 0xD7))
    ends: np.ndarray = at[marker] + start
    return ends


def gif_frames(data: bytes, stop: int) -> int:
    """Image descriptors in a GIF, counting at most ``stop``+1 (or as far as the step budget
    reaches: only the first frame is ever decoded, so a partial count is enough)."""
    if len(data) < 13:
        return 0
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = steps = 0
    while position < len(data) and frames <= stop and steps < _GIF_STEPS:
        block = data[position]
        steps += 1
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            position, steps = _skip_sub_blocks(data, position + 2, steps)
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW data
            if position + 10 > len(data):
                break
            frames += 1
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            # After the LZW minimum code size:
            position, steps = _skip_sub_blocks(data, position + 1, steps)
        else:
            position += 1  # a stray byte between blocks: decoders skip it too
    return frames


def _skip_sub_blocks(data: bytes, position: int, steps: int) -> tuple[int, int]:
    while position < len(data) and steps < _GIF_STEPS:
        size = data[position]
        position += 1 + size
        steps += 1
        if size == 0:
            break
    return position, steps


def tiff_frames(data: bytes, stop: int) -> int:
    """Image file directories (pages) in a TIFF or BigTIFF, counting at most ``stop``+1."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return 0
    order = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack_from(order + "H", data, 2)
    big = version == 43
    if big:
        if len(data) < 16:
            return 0
        (offset,) = struct.unpack_from(order + "Q", data, 8)
        count_format, entry_size, offset_format = "Q", 20, "Q"
    else:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        count_format, entry_size, offset_format = "H", 12, "I"
    count_size = struct.calcsize(count_format)
    offset_size = struct.calcsize(offset_format)
    seen: set[int] = set()
    frames = 0
    while offset > 0 and offset + count_size <= len(data) and offset not in seen:
        seen.add(offset)
        frames += 1
        if frames > stop:
            break
        (entries,) = struct.unpack_from(order + count_format, data, offset)
        next_at = offset + count_size + entries * entry_size
        if next_at + offset_size > len(data):
            break
        (offset,) = struct.unpack_from(order + offset_format, data, next_at)
    return frames
