"""What the device matches: tags of a file, derived the same way from the media and from a list.

A tag names one fact about media, domain-separated by format, category and kind, so a key or a
filter made for one purpose cannot be silently reused for another::

    hashguard-device/1 \\0 CATEGORY \\0 KIND \\0 VALUE

Kinds: ``sha256`` (the file's bytes: catches forwards), ``canonical_sha256`` (its pixels'
canonical re-encoding: catches metadata edits and lossless re-saves) and, in near-duplicate
mode, ``pdq-segment`` (one of six segments of its PDQ hash, of 43 or 42 bits, with the segment's
number: a copy within Hamming distance 5 shares at least one segment, by pigeonhole).

The filter holds a 64-bit key per tag: in offline mode ``HMAC-SHA256(release key, tag)``, in
server-assisted mode ``F_k(tag)``, the VOPRF output, both cut to their first 8 bytes.
"""

import hashlib
import hmac
from collections.abc import Iterator
from enum import StrEnum
from typing import Final

from hashguard.media.errors import MediaError, UnsupportedMedia
from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.digests import CanonicalSha256Signal
from hashguard.signals.pdq import PdqSignal

FORMAT: Final = b"hashguard-device/1"
SEGMENTS: Final = 6
_SEGMENT_BITS: Final = (43, 43, 43, 43, 42, 42)
# Flat or nearly flat images have PDQ hashes of little information (PDQ's own cut-off is 50):
# their segments would hit other such images.
MIN_PDQ_QUALITY: Final = 50


class TagKind(StrEnum):
    FILE = "sha256"
    PIXELS = "canonical_sha256"
    SEGMENT = "pdq-segment"


EXACT_KINDS: Final = (TagKind.FILE, TagKind.PIXELS)


def tag(category: str, kind: TagKind, value: bytes) -> bytes:
    return b"\0".join((FORMAT, category.encode(), kind.value.encode(), value))


# The list signals a device computes itself, and the kind of tag each gives: the device's own
# choice of what it can check, not a property of the signal types.
DEVICE_SIGNALS: Final = {
    "sha256": TagKind.FILE, "canonical_sha256": TagKind.PIXELS, "pdq": TagKind.SEGMENT,
}  # fmt: skip


def entry_tags(category: str, signal: str, value: bytes) -> Iterator[tuple[TagKind, bytes]]:
    """The tags of a list entry (``value``: the hash's bytes); none for signals the device does
    not compute."""
    kind = DEVICE_SIGNALS.get(signal)
    if kind is TagKind.SEGMENT:
        for segment in pdq_segments(value):
            yield kind, tag(category, kind, segment)
    elif kind is not None:
        yield kind, tag(category, kind, value)


def media_tags(
    category: str, media: bytes, near_duplicates: bool, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[tuple[TagKind, bytes]], str | None]:
    """The tags of a file, and why any were left out (None when none were): the pixel and PDQ
    tags need an image that decodes within ``limits``."""
    found = [(TagKind.FILE, tag(category, TagKind.FILE, hashlib.sha256(media).digest()))]
    try:
        if sniff(media[:SNIFF_BYTES]).kind is not MediaKind.IMAGE:
            return found, None
        pixels = CanonicalSha256Signal().hash(media, limits)
        found.append((TagKind.PIXELS, tag(category, TagKind.PIXELS, pixels)))
        if near_duplicates:
            pdq = PdqSignal().hash(media, limits)
            if (pdq.quality or 0) >= MIN_PDQ_QUALITY:
                found += [
                    (TagKind.SEGMENT, tag(category, TagKind.SEGMENT, segment))
                    for segment in pdq_segments(pdq.bits)
                ]
    except UnsupportedMedia:
        return found, None  # not an image: its bytes are all there is to match
    except MediaError as error:
        return found, f"matched on the file's bytes only: {error}"
    return found, None


def pdq_segments(value: bytes) -> list[bytes]:
    """The six segments of a 256-bit PDQ hash, each as its number and its bits (7 bytes)."""
    number = int.from_bytes(value, "big")
    segments, shift = [], 256
    for index, bits in enumerate(_SEGMENT_BITS):
        shift -= bits
        part = (number >> shift) & ((1 << bits) - 1)
        segments.append(bytes([index]) + part.to_bytes(6, "big"))
    return segments


def offline_key(tag_key: bytes, data: bytes) -> int:
    """The filter key of a tag in offline mode."""
    return int.from_bytes(hmac.digest(tag_key, data, "sha256")[:8], "little")


def oprf_key(output: bytes) -> int:
    """The filter key of a tag from its VOPRF output."""
    return int.from_bytes(output[:8], "little")
