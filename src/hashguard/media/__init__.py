"""Untrusted bytes to pixels and frames, safely: limits first, in memory, never via temp files.

The decoders are imported from their modules (``media.image``, ``media.video``): they load
Pillow, PyAV and numba, which what only reads formats and limits does without.
"""

from hashguard.media.errors import (
    CorruptMedia,
    EmptyMedia,
    LimitExceeded,
    MediaError,
    UnsupportedMedia,
)
from hashguard.media.formats import Format, MediaKind, sniff
from hashguard.media.limits import DEFAULT_LIMITS, Limits

__all__ = [
    "DEFAULT_LIMITS",
    "CorruptMedia",
    "EmptyMedia",
    "Format",
    "LimitExceeded",
    "Limits",
    "MediaError",
    "MediaKind",
    "UnsupportedMedia",
    "sniff",
]
