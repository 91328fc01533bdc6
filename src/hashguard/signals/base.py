"""What every signal type provides: a hasher, a parser for its string form, a distance, a threshold.

A signal type is a small class with a name; the registry finds it by that name. Values are parsed
from their string form once, at the boundary, and trusted inside.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, ClassVar, Generic, TypeVar

from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits

Value = TypeVar("Value")
MediaSource = bytes | BinaryIO


class InvalidSignalValue(ValueError):
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


class SignalType(ABC, Generic[Value]):
    """A kind of hash: how to compute it, parse it, print it, and compare two of them."""

    name: ClassVar[str]
    media: ClassVar[frozenset[MediaKind]]
    default_threshold: ClassVar[float]
    by_default: ClassVar[bool] = True  # computed when no signals are named

    @abstractmethod
    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> Value:
        """Hash media given as bytes or an open binary file; raises ``MediaError`` subclasses."""

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


def read_image(source: MediaSource, limits: Limits) -> bytes:
    """The bytes of an image given as bytes or an open file (read from its current position),
    reading no more than the image size limit allows."""
    data = source if isinstance(source, bytes) else source.read(limits.max_image_bytes + 1)
    limits.check_image_bytes(len(data))
    return data
