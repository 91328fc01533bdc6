"""Cryptographic digests of the file bytes (MD5, SHA-1, SHA-256) of any file, media or not, as
NCMEC and IWF lists carry, and SHA-256 of an image's canonical re-encoding.

They match identical copies only: distance 0 (identical) or 1 (different).
"""

import hashlib
import re
from collections.abc import Sequence
from typing import ClassVar

from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import (
    Comparison,
    IndexKind,
    InvalidSignalValue,
    MediaSource,
    SignalType,
    preview,
    read_image,
)

_CHUNK = 1024 * 1024


class DigestSignal(SignalType[bytes]):
    """A cryptographic digest of ``size`` bytes, written as ``2 * size`` lowercase hex digits.
    It applies to every file, media or not; a stream is read in chunks, never held whole."""

    media: ClassVar[frozenset[MediaKind]] = frozenset(MediaKind)
    default_threshold: ClassVar[float] = 0
    max_threshold: ClassVar[float] = 0
    index: ClassVar[IndexKind | None] = IndexKind.EXACT
    algorithm: ClassVar[str]
    size: ClassVar[int]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.hex_digits = 2 * cls.size

    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> bytes:
        return digests_of(source, [self])[0]

    @property
    def of_the_bytes(self) -> bool:
        """Whether it digests the bytes as they are (not a decoding of them, as
        ``canonical_sha256``): such digests can be computed together (``digests_of``)."""
        return type(self).hash is DigestSignal.hash

    def parse(self, text: str) -> bytes:
        value = text.strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{self.size * 2}}}", value):
            raise InvalidSignalValue(
                f"expected {self.name.upper()} as {self.size * 2} hex digits, got {preview(text)}"
            )
        return bytes.fromhex(value)

    def format(self, value: bytes) -> str:
        return value.hex()

    def key(self, value: bytes) -> bytes:
        return bytes(value)

    def distance(self, a: bytes, b: bytes) -> int:
        return 0 if a == b else 1

    def compare(self, a: bytes, b: bytes, threshold: float | None = None) -> Comparison:
        same = a == b
        reason = self.same if same else self.different
        return Comparison(self.name, self.distance(a, b), 0, same, reason)

    same: ClassVar[str] = "byte-identical files"
    different: ClassVar[str] = "the files differ (exact hash)"


def digests_of(source: MediaSource, signals: Sequence[DigestSignal]) -> list[bytes]:
    """Each of ``signals``' digest of the bytes of ``source``, all from one pass over them
    (read in chunks from a stream's position)."""
    digests = [hashlib.new(signal.algorithm) for signal in signals]
    if isinstance(source, bytes):
        for digest in digests:
            digest.update(source)
    else:
        while chunk := source.read(_CHUNK):
            for digest in digests:
                digest.update(chunk)
    return [digest.digest() for digest in digests]


class Md5Signal(DigestSignal):
    name = "md5"
    algorithm = "md5"
    size = 16


class Sha1Signal(DigestSignal):
    name = "sha1"
    algorithm = "sha1"
    size = 20


class Sha256Signal(DigestSignal):
    name = "sha256"
    algorithm = "sha256"
    size = 32


class CanonicalSha256Signal(DigestSignal):
    """SHA-256 of the image's canonical re-encoding: binary PPM (``P6``) of its 8-bit RGB pixels
    at full resolution, upright (EXIF orientation applied), alpha dropped.

    It survives what leaves the pixels alone: metadata stripped or rewritten, a lossless
    re-save (PNG, lossless WebP), a JPEG container rewritten without re-compression. A lossy
    re-compression changes it (PDQ is for those). Decoders are deterministic for a given
    library build; a different JPEG decoder may round a few pixels differently. Computed on
    request only: it decodes the full image.
    """

    name = "canonical_sha256"
    algorithm = "sha256"
    size = 32
    media = frozenset({MediaKind.IMAGE})
    by_default = False
    same = "the same pixels (canonical re-encoding)"
    different = "the pixels differ (canonical re-encoding)"

    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> bytes:
        from hashguard.media.image import decode_rgb  # Pillow loads when an image is hashed

        pixels = decode_rgb(read_image(source, limits), limits)
        height, width = pixels.shape[:2]
        digest = hashlib.sha256(b"P6\n%d %d\n255\n" % (width, height))
        digest.update(pixels.data)
        return digest.digest()
