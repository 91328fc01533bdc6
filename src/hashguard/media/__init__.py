"""Untrusted bytes to pixels and frames, safely: limits first, in memory, never via temp files."""

from hashguard.media.errors import (
    CorruptMedia,
    EmptyMedia,
    LimitExceeded,
    MediaError,
    UnsupportedMedia,
)
from hashguard.media.formats import Format, MediaKind, sniff
from hashguard.media.image import LumaImage, decode_luma, image_size
from hashguard.media.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "CorruptMedia",
    "EmptyMedia",
    "Format",
    "LimitExceeded",
    "Limits",
    "LumaImage",
    "MediaError",
    "MediaKind",
    "UnsupportedMedia",
    "decode_luma",
    "image_size",
    "sniff",
]
