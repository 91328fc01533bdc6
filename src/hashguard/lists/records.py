"""What list formats read and the store applies: submissions (adds), tombstones, and a source's
withdrawals of what it submitted under a reference.

Values are kept in their signal's canonical text form (PDQ and digests: lowercase hex), so one
hash is one entry however a source spelled it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from hashguard.errors import Invalid
from hashguard.lists import limits
from hashguard.lists.model import Change, ChangeKind, Provenance, Source
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
    _check_text(f"{prefix}{signal}: value", value, limits.VALUE)
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
    _check_text(f"{prefix}{signal}: value", text, limits.VALUE)
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


R = TypeVar("R", bound=Submission | Tombstone | Withdrawal | Change)


def bounded(record: R) -> R:
    """``record`` when every text it carries is within ``hashguard.lists.limits``; raises
    InvalidRecord naming the field, its length and the limit (the caller prefixes where the
    record is)."""
    if isinstance(record, Submission):
        _check_labels(record.labels)
        _check_provenance(record.provenance)
        _check_text("value", record.value, limits.VALUE)
    elif isinstance(record, Tombstone):
        _check_text("value", record.value, limits.VALUE)
        _check_text("reason", record.reason, limits.REASON)
    elif isinstance(record, Withdrawal):
        _check_text("reference", record.reference, limits.REFERENCE)
        _check_text("reason", record.reason, limits.REASON)
        for _, value in record.keep or ():
            _check_text("value", value, limits.VALUE)
    else:
        _check_text("value", record.value, limits.VALUE)
        _check_labels(record.labels or ())
        if record.provenance is not None:
            _check_provenance(record.provenance)
        for name in ("reason", "actor", "at"):
            _check_text(name, getattr(record, name), limits.TEXT[name])
    return record


def _check_labels(labels: Iterable[str]) -> None:
    labels = list(labels)
    if len(labels) > limits.LABELS:
        raise InvalidRecord(f"{len(labels):,} labels; the limit is {limits.LABELS:,} a record")
    for label in labels:
        _check_text("label", label, limits.LABEL)


def _check_provenance(provenance: Provenance) -> None:
    _check_text("submitted_by", provenance.submitted_by, limits.NAME)
    _check_text("assessed_by", provenance.assessed_by, limits.NAME)
    if len(provenance.sources) > limits.SOURCES:
        raise InvalidRecord(
            f"{len(provenance.sources):,} sources; the limit is {limits.SOURCES:,} a record"
        )
    for source in provenance.sources:
        _check_source(source)


def _check_source(source: Source) -> None:
    for name in ("organisation", "jurisdiction", "reference"):
        _check_text(name, getattr(source, name), limits.TEXT[name])


def _check_text(field: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise InvalidRecord(
            f"{field} of {len(text):,} characters ({text[:20]!r}...); the limit is {limit:,}"
        )
