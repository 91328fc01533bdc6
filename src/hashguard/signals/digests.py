"""Cryptographic digests of the file bytes (MD5, SHA-1, SHA-256), as NCMEC and IWF lists carry.

They match byte-identical copies only: distance 0 (identical) or 1 (different).
"""

import hashlib
import re
from typing import ClassVar

from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import (
    Comparison,
    InvalidSignalValue,
    MediaSource,
    SignalType,
    preview,
)

_CHUNK = 1024 * 1024


class DigestSignal(SignalType[bytes]):
    media: ClassVar[frozenset[MediaKind]] = frozenset(MediaKind)
    default_threshold: ClassVar[float] = 0
    algorithm: ClassVar[str]
    size: ClassVar[int]

    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> bytes:
        digest = hashlib.new(self.algorithm)
        if isinstance(source, bytes):
            digest.update(source)
        else:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
        return digest.digest()

    def parse(self, text: str) -> bytes:
        value = text.strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{self.size * 2}}}", value):
            raise InvalidSignalValue(
                f"expected {self.name.upper()} as {self.size * 2} hex digits, got {preview(text)}"
            )
        return bytes.fromhex(value)

    def format(self, value: bytes) -> str:
        return value.hex()

    def distance(self, a: bytes, b: bytes) -> int:
        return 0 if a == b else 1

    def compare(self, a: bytes, b: bytes, threshold: float | None = None) -> Comparison:
        same = a == b
        reason = "byte-identical files" if same else "the files differ (exact hash)"
        return Comparison(self.name, self.distance(a, b), 0, same, reason)


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
