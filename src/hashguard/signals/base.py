"""What every signal type provides: a hasher, a parser for its string form, a distance, a
threshold, and everything the rest of hashguard asks about it.

A signal type is a small class with a name; the registry finds it by that name. Values are parsed
from their string form once, at the boundary, and trusted inside. Lists, the Matcher, the API,
the CLI and review ask the signal type (whether lists can hold it, its string width, its default
and largest threshold, the quality under which it never matches, which index holds it), never a
table of their own: a new signal type is one class and its registration.
"""

import functools
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, ClassVar, Generic, TypeVar

from hashguard.errors import Invalid
from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits

Value = TypeVar("Value")
MediaSource = bytes | BinaryIO


class InvalidSignalValue(Invalid):
    """A signal's string form did not parse; the message says what was expected."""


def preview(text: str, length: int = 20) -> str:
    """A short quotation of bad input for an error message."""
    return repr(text if len(text) <= length else text[:length] + "...")


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of comparing two values of one signal type."""

    signal: str
    distance: float
    threshold: float
    match: bool
    reason: str  # one line a person can read: why this is or is not a match


class IndexKind(StrEnum):
    """How the Matcher indexes a listable signal's values (their ``key`` bytes)."""

    HAMMING = "hamming"  # 256-bit hashes, matched within a Hamming radius
    EXACT = "exact"  # byte strings of one width, matched when equal
    # Videos as sets of 256-bit frame hashes (``key``: the frames that count, 32 bytes each),
    # matched by the share of frames each side finds within a Hamming radius in the other.
    FRAMES = "frames"


class SignalType(ABC, Generic[Value]):
    """A kind of hash: how to compute it, parse it, print it, and compare two of them."""

    name: ClassVar[str]
    # The kinds of file it applies to (``MediaKind.OTHER``: any file that is not media).
    media: ClassVar[frozenset[MediaKind]]
    default_threshold: ClassVar[float]
    # The largest threshold a list may set (a digest matches only when equal: 0).
    max_threshold: ClassVar[float]
    by_default: ClassVar[bool] = True  # computed when no signals are named
    # Lists can hold it and the Matcher matches it, through an index of this kind (None: the
    # signal is compared pairwise only).
    index: ClassVar[IndexKind | None] = None
    # The canonical string form is exactly this many lowercase hex digits (None: another form).
    hex_digits: ClassVar[int | None] = None
    # Values of a known quality below this never match (None: the signal has no quality).
    min_quality: int | None = None
    # Values of a known stability (how far the hash moves under a tiny change of the image,
    # 0-100) below this are noise: not matched, on either side. None: not measured.
    min_stability: int | None = None
    # For a FRAMES signal: the signal each frame is a hash of; a list's threshold for it is the
    # distance within which two frames count as the same.
    frame_signal: ClassVar[str | None] = None

    @property
    def listable(self) -> bool:
        """Whether hash lists can hold this signal (and the Matcher match it)."""
        return self.index is not None

    @property
    def exact(self) -> bool:
        """Whether a match means identical values (distance 0), not merely close ones."""
        return self.index is IndexKind.EXACT

    def key(self, value: Value) -> bytes:
        """The bytes an index holds for ``value`` (of a fixed width per signal; for a FRAMES
        signal, the frames that count, 32 bytes each)."""
        raise TypeError(f"{self.name} values are not indexed")

    def key_of(self, canonical: str) -> bytes:
        """``key`` of a value given in its canonical string form (as lists store it)."""
        if self.hex_digits is not None:
            return bytes.fromhex(canonical)
        return self.key(self.parse(canonical))

    def canonical_of(self, value: Value) -> str:
        """``value`` in the canonical string form: what lists store and exchange, on one line
        (``format``, unless that form spans lines)."""
        return self.format(value)

    def parse_line(self, text: str) -> Value:
        """Parse a value given alone on a line (formats of one value per line), refusing forms
        a line could only hold part of; raises ``InvalidSignalValue``."""
        return self.parse(text)

    def plausible(self, canonical: str) -> bool:
        """Whether a value in canonical form looks like one of this signal's (a digest of
        another kind can have the same width: a list imported as the wrong signal)."""
        return True

    def quality(self, value: Value) -> int | None:
        """The value's quality (0-100) when it has one and was computed here, else None."""
        return None

    def stability(self, value: Value) -> int | None:
        """The value's stability (0-100) when it was measured here, else None."""
        return None

    def degenerate(self, value: "Value | str") -> bool:
        """Whether a value (or its canonical text form, as lists hold it) says nothing about
        what the media shows, whatever its quality, so that it never matches (PDQ: the parity
        hashes)."""
        return False

    def threshold_for(self, value: Value, threshold: float) -> float:
        """The threshold a query ``value`` is matched at on a list whose threshold is
        ``threshold``: the same, unless what was measured of the value calls for a stricter
        one (PDQ: images dominated by flat regions and text)."""
        return threshold

    def canonical(self, text: str) -> str:
        """``text`` in the canonical string form; raises ``InvalidSignalValue``."""
        if self.hex_digits is not None:
            lowered = text.strip().lower()
            if _hex(self.hex_digits).fullmatch(lowered):
                return lowered
        return self.canonical_of(self.parse(text))

    def all_canonical(self, texts: list[str]) -> bool:
        """Whether every one of ``texts`` (at least one) is already canonical: one regular
        expression pass over them all, where ``canonical`` takes one call each."""
        digits = self.hex_digits
        if digits is None or not texts:
            return False
        joined = "\n".join(texts)
        # The length rules out a value that itself holds a newline between two hashes.
        return (
            len(joined) == len(texts) * (digits + 1) - 1
            and _hex_lines(digits).fullmatch(joined) is not None
        )

    @abstractmethod
    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> Value:
        """Hash a file of a kind in ``media``, given as bytes or an open binary file; raises
        ``MediaError`` subclasses."""

    @abstractmethod
    def parse(self, text: str) -> Value:
        """Parse the string form; raises ``InvalidSignalValue`` naming what was expected."""

    @abstractmethod
    def format(self, value: Value) -> str:
        """The canonical string form, as lists and peers exchange it."""

    @abstractmethod
    def distance(self, a: Value, b: Value) -> float:
        """How far apart two values are; 0 is identical. A match is distance <= threshold."""

    @abstractmethod
    def compare(self, a: Value, b: Value, threshold: float | None = None) -> Comparison:
        """Compare two values; ``threshold`` defaults to ``default_threshold``."""

    def applies_to(self, kind: MediaKind) -> bool:
        return kind in self.media

    def too_low(self, quality: int | None, min_quality: int | None = None) -> bool:
        """Whether a value of this ``quality`` is below the signal's (or the given) minimum."""
        floor = self.min_quality if min_quality is None else min_quality
        return quality is not None and floor is not None and quality < floor

    def too_unstable(self, stability: int | None, min_stability: int | None = None) -> bool:
        """Whether a value of this ``stability`` is below the signal's (or the given) minimum."""
        floor = self.min_stability if min_stability is None else min_stability
        return stability is not None and floor is not None and stability < floor


@functools.cache
def _hex(digits: int) -> re.Pattern[str]:
    return re.compile(f"[0-9a-f]{{{digits}}}")


@functools.cache
def _hex_lines(digits: int) -> re.Pattern[str]:
    return re.compile(f"(?:[0-9a-f]{{{digits}}}\n)*[0-9a-f]{{{digits}}}")


def read_image(source: MediaSource, limits: Limits) -> bytes:
    """The bytes of an image given as bytes or an open file (read from its current position),
    reading no more than the image size limit allows."""
    data = source if isinstance(source, bytes) else source.read(limits.max_image_bytes + 1)
    limits.check_image_bytes(len(data))
    return data
