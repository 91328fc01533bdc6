"""What the Matcher is asked: one item's hashes, typed, built once where they enter.

A ``Query`` holds, per signal, the value (parsed from its string form, or computed from media),
its named variants when asked for (a PDQ hash's 3 rotations and 4 flips, its trimmed crops:
``signals.pdq_variants``), and so the keys the
signal's index looks up, and the value's quality when it was computed here. ``parse`` builds one
from strings (the API, the CLI, HMA's routes), ``Query.of`` from values hashed from media; the
CLI, the API and the Matcher share it, so nothing is turned into hex and back on the way.
"""

import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue, SignalType
from hashguard.signals.pdq import DihedralHashes
from hashguard.signals.pdq_variants import ORIGINAL, PdqVariants

# A hash on a command line: SIGNAL:HEX, or bare hex whose length says which signals it can be.
_GIVEN: Final = re.compile(r"(?:([a-z0-9_]+):)?([0-9a-fA-F]+)")


@dataclass(frozen=True, slots=True)
class Hashed:
    """One signal's value in a query, with its named variants (the original first) if any."""

    signal: SignalType[Any]
    value: Any
    variants: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.signal.name

    @property
    def text(self) -> str:
        """The value's canonical string form."""
        return self.signal.canonical_of(self.value)

    @property
    def quality(self) -> int | None:
        return self.signal.quality(self.value)

    def named(self) -> tuple[tuple[str, Any], ...]:
        """Each variant (name, value), the original first; the value alone as ``original``."""
        return self.variants or ((ORIGINAL, self.value),)

    def keys(self) -> list[bytes]:
        """What the signal's index looks up: the value, or each of its variants."""
        return [self.signal.key(value) for _, value in self.named()]


@dataclass(frozen=True, slots=True)
class Query:
    """One item's hashes, at most one per signal."""

    hashes: tuple[Hashed, ...] = ()

    @classmethod
    def of(cls, values: Iterable[tuple[str, Any]]) -> "Query":
        """A query of values computed from media (signal name, value); a PDQ ``PdqVariants``
        (or ``DihedralHashes``) gives the original hash and its variants."""
        hashes = []
        for name, value in values:
            signal = registry.get(name)
            if isinstance(value, PdqVariants | DihedralHashes):
                hashes.append(Hashed(signal, value.original, tuple(value.variants.items())))
            else:
                hashes.append(Hashed(signal, value))
        return cls(tuple(hashes))

    def __iter__(self) -> Iterator[Hashed]:
        return iter(self.hashes)

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def get(self, name: str) -> Hashed | None:
        return next((hashed for hashed in self.hashes if hashed.name == name), None)

    def only(self, names: Collection[str]) -> "Query":
        """The part of this query in the signals ``names`` (those the lists hold)."""
        return Query(tuple(hashed for hashed in self.hashes if hashed.name in names))

    def too_low(self, min_quality: int | None = None) -> Hashed | None:
        """The first value whose quality is below its signal's minimum (or ``min_quality``)."""
        return next((h for h in self.hashes if h.signal.too_low(h.quality, min_quality)), None)


def parse(signal: str, text: str) -> Query:
    """A query of one hash in its string form. Raises ``UnknownSignal`` for a signal lists
    cannot hold, ``InvalidSignalValue`` naming what was expected for a malformed value."""
    kind = registry.listed(signal)
    return Query((Hashed(kind, kind.parse(text)),))


def parse_given(text: str) -> Query | None:
    """A hash as given on a command line, ``SIGNAL:HEX`` or bare hex, as the value of every
    listable signal it can be (a bare 64-digit hash is PDQ and SHA-256 alike); None for text
    that is not written like a hash (a file name). Raises ``UnknownSignal`` and
    ``InvalidSignalValue`` for hashes that cannot be."""
    found = _GIVEN.fullmatch(text)
    if found is None:
        return None
    named, digits = found.groups()
    if named is not None:
        return parse(named, digits)
    candidates = registry.by_hex_digits(len(digits))
    if not candidates:
        lengths: dict[int, list[str]] = {}
        for signal in registry.listable():
            if signal.hex_digits is not None:
                lengths.setdefault(signal.hex_digits, []).append(signal.name)
        forms = [f"{n} ({', '.join(names)})" for n, names in sorted(lengths.items())]
        known = " or ".join([", ".join(forms[:-1]), forms[-1]]) if len(forms) > 1 else forms[0]
        raise InvalidSignalValue(f"{text}: a hash has {known} hex digits; got {len(digits)}")
    return Query(tuple(Hashed(signal, signal.parse(digits)) for signal in candidates))
