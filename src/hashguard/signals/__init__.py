"""Signal types (hash algorithms): ``pdq``, ``vpdq``, ``md5``, ``sha1``, ``sha256``,
``canonical_sha256``."""

from hashguard.signals.base import Comparison, IndexKind, InvalidSignalValue, SignalType
from hashguard.signals.registry import UnknownSignal, for_media, get, names

__all__ = [
    "Comparison",
    "IndexKind",
    "InvalidSignalValue",
    "SignalType",
    "UnknownSignal",
    "for_media",
    "get",
    "names",
]
