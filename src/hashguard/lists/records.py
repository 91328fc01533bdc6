"""What list formats read and the store applies: submissions (adds), tombstones, and a source's
withdrawals of what it submitted under a reference.

Values are kept in their signal's canonical text form (PDQ and digests: lowercase hex), so one
hash is one entry however a source spelled it.
"""

import re
from dataclasses import dataclass, field
from typing import Final

from hashguard.lists.model import Change, ChangeKind, Provenance
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue

# Signals a list can hold and the Matcher can match (vPDQ lists come with video matching).
LIST_SIGNALS: Final = ("pdq", "md5", "sha1", "sha256", "canonical_sha256")
# Their canonical forms (lowercase hex of these lengths), checked here first: imports
# canonicalise millions of values, one at a time or joined by newlines in one pass.
_DIGITS: Final = {"pdq": 64, "md5": 32, "sha1": 40, "sha256": 64, "canonical_sha256": 64}
_HEX: Final = {name: re.compile(f"[0-9a-f]{{{n}}}") for name, n in _DIGITS.items()}
_HEX_LINES: Final = {
    name: (re.compile(f"(?:[0-9a-f]{{{n}}}\n)*[0-9a-f]{{{n}}}"), n) for name, n in _DIGITS.items()
}


class InvalidRecord(ValueError):
    """A record that cannot be applied; the message says where it is and what is wrong."""


@dataclass(frozen=True, slots=True)
class Submission:
    """A source submits a value (again): add it, or merge its labels and provenance.

    With ``restates``, the submission is the source's current record under its reference (an
    exchange that sends whole records again when they change): on an entry that source alone
    holds, its labels replace the entry's instead of adding to them.
    """

    signal: str
    value: str
    labels: frozenset[str] = frozenset()
    provenance: Provenance = field(default_factory=Provenance)
    restates: bool = False


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A value to stop matching: deleted (withdrawn) or delisted."""

    signal: str
    value: str
    kind: ChangeKind = ChangeKind.DELETE
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The source whose reference is ``reference`` withdraws it from every entry it submitted
    under it: all of them (``keep`` None: the source deleted its record), or all but the
    (signal, value) pairs in ``keep`` (the source restated its record, which holds those now).
    An entry left without sources is deleted."""

    reference: str
    keep: frozenset[tuple[str, str]] | None = None
    reason: str = ""


# A Change is replayed as it is: a mirror applying another instance's change feed.
Record = Submission | Tombstone | Withdrawal | Change


def canonical(signal: str, value: str, where: str = "") -> str:
    """``value`` in ``signal``'s canonical text form.

    Raises InvalidRecord (prefixed with ``where``) for signals lists cannot hold and malformed
    values.
    """
    fast = _HEX.get(signal)
    if fast is not None:
        lowered = value.strip().lower()
        if fast.fullmatch(lowered):
            return lowered
    prefix = f"{where}: " if where else ""
    if signal not in LIST_SIGNALS:
        raise InvalidRecord(
            f"{prefix}signal {signal!r} cannot be listed; use one of {', '.join(LIST_SIGNALS)}"
        )
    kind = registry.get(signal)
    try:
        return kind.format(kind.parse(value))
    except InvalidSignalValue as error:
        raise InvalidRecord(f"{prefix}{signal}: {error}") from None


def all_canonical(signal: str, values: list[str]) -> bool:
    """Whether every one of ``values`` (at least one) is already in ``signal``'s canonical form:
    one regular-expression pass over them all, where ``canonical`` takes one call each."""
    fast = _HEX_LINES.get(signal)
    if fast is None or not values:
        return False
    pattern, digits = fast
    joined = "\n".join(values)
    # The length rules out a value that itself holds a newline between two hashes.
    return len(joined) == len(values) * (digits + 1) - 1 and pattern.fullmatch(joined) is not None
