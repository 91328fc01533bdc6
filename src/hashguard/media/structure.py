"""Counts read from a file's structure without decoding it: JPEG scans, GIF and TIFF frames.

Decoders count these the slow way (Pillow walks every GIF frame, and its TIFF loop check grows
with the square of the frame count), and a progressive JPEG with thousands of scans makes
libjpeg-turbo work for a minute on a few kilobytes. These walkers stop as soon as the count
passes ``stop``, so refusing such a file costs next to nothing. Malformed structure ends the
walk; the decoder reports it properly afterwards.
"""

import re
import struct
from typing import Final

# A marker inside entropy-coded data: 0xFF not followed by 0x00 (stuffing) or RST0-7.
_MARKER: Final = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOS: Final = 0xDA
_EOI: Final = 0xD9
_STANDALONE: Final = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


def jpeg_scans(data: bytes, stop: int) -> int:
    """Start-of-scan segments in a JPEG (a baseline image has 1), counting at most ``stop``+1."""
    scans = 0
    position = 2  # after SOI
    while position + 4 <= len(data) and scans <= stop:
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
        if marker == _SOS:
            scans += 1
            found = _MARKER.search(data, position)  # skip the entropy-coded data
            if found is None:
                break
            position = found.start()
    return scans


def gif_frames(data: bytes, stop: int) -> int:
    """Image descriptors in a GIF, counting at most ``stop``+1."""
    if len(data) < 13:
        return 0
    flags = data[10]
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while position < len(data) and frames <= stop:
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then data sub-blocks
            position = _skip_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor, optional local colour table, LZW data
            if position + 10 > len(data):
                break
            frames += 1
            local = data[position + 9]
            position += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            position = _skip_sub_blocks(data, position + 1)  # after the LZW minimum code size
        else:
            break
    return frames


def _skip_sub_blocks(data: bytes, position: int) -> int:
    while position < len(data):
        size = data[position]
        position += 1 + size
        if size == 0:
            break
    return position


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
