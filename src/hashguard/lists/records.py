"""What list formats read and the store applies: submissions (adds), tombstones, and a source's
withdrawals of what it submitted under a reference.

Values are kept in their signal's canonical text form (PDQ and digests: lowercase hex), so one
hash is one entry however a source spelled it.
"""

from dataclasses import dataclass, field

from hashguard.errors import Invalid
from hashguard.lists.model import Change, ChangeKind, Provenance
from hashguard.signals import registry
from hashguard.signals.base import InvalidSignalValue


class InvalidRecord(Invalid):
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
    stability: int | None = None  # a value hashed from media: its signal's stability (0-100)


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
    prefix = f"{where}: " if where else ""
    try:
        kind = registry.listed(signal)
    except registry.UnknownSignal as error:
        raise InvalidRecord(f"{prefix}{error}") from None
    try:
        return kind.canonical(value)
    except InvalidSignalValue as error:
        raise InvalidRecord(f"{prefix}{signal}: {error}") from None


def canonical_line(signal: str, text: str, where: str = "") -> str:
    """``canonical`` of a value given alone on a line (vPDQ: only its one-line JSON form)."""
    prefix = f"{where}: " if where else ""
    try:
        kind = registry.listed(signal)
    except registry.UnknownSignal as error:
        raise InvalidRecord(f"{prefix}{error}") from None
    if kind.hex_digits is not None:
        return canonical(signal, text, where)
    try:
        return kind.canonical_of(kind.parse_line(text))
    except InvalidSignalValue as error:
        raise InvalidRecord(f"{prefix}{signal}: {error}") from None


def all_canonical(signal: str, values: list[str]) -> bool:
    """Whether every one of ``values`` (at least one) is already in ``signal``'s canonical form
    (a listable signal; False for any other name)."""
    try:
        return registry.listed(signal).all_canonical(values)
    except registry.UnknownSignal:
        return False
