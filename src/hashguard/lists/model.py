"""Hash lists as logs: a list's state at version N is the fold of its first N changes.

A ``HashList`` says who owns it, what it is for (category, jurisdictions, legal basis) and how
it matches (``ListPolicy``). Its entries change only by appending a ``Change``: add, relabel,
contest, delist, delete, and reinstate (the owner makes a contested or delisted entry active
again). A source can also withdraw its own submission:
the entry loses that source (``withdraw``) or, when it was the last one, is deleted (``delete``,
keeping its sources as the record of who had submitted it). A new submission of a deleted entry
revives it, held by that submission's sources alone. Nothing is
edited in place, so a subscriber that has seen version N
needs only the changes after N, and every past state can be recomputed and audited.

An entry is keyed within its list by (signal, value), the value in its signal's text form.
It matches only while ``active`` and, under the two-source rule, once sources from two different
jurisdictions have submitted it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Final

NAME_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"


class Category(StrEnum):
    """What a list holds; one category per list, so it cannot silently widen."""

    KNOWN_CSAM = "known-csam"
    NCII = "ncii"  # victim-submitted non-consensual intimate imagery (StopNCII)
    # Hashes a person submitted of images of themselves (hashguard.victims): nobody has seen
    # the images, so every match goes to human review; adults' and under-18s' kept apart.
    NCII_VICTIM = "ncii-victim"
    CSAM_VICTIM = "csam-victim"
    FALSE_POSITIVES = "false-positives"  # benign media known to collide: negative lists
    TEST = "test"


VICTIM_CATEGORIES: Final = frozenset((Category.NCII_VICTIM, Category.CSAM_VICTIM))
"""Lists of hashes submitted by the person shown, unverified."""


class EntryStatus(StrEnum):
    ACTIVE = "active"
    CONTESTED = "contested"  # negative feedback or an appeal: not matched until resolved
    DELISTED = "delisted"  # taken off the list by its owner
    DELETED = "deleted"  # withdrawn (a victim's withdrawal, a source's deletion)


class ChangeKind(StrEnum):
    ADD = "add"
    RELABEL = "relabel"
    CONTEST = "contest"
    DELIST = "delist"
    DELETE = "delete"
    WITHDRAW = "withdraw"  # a source withdrew its submission; other sources still hold the entry
    REINSTATE = "reinstate"  # the owner undoes a contest or a delisting: the entry is active again


VARIANT_FAMILIES: Final = ("dihedral", "trim", "scale")
"""The kinds of query variant a list's policy may let match (``ListPolicy.variants``)."""
DEFAULT_VARIANTS: Final = frozenset(VARIANT_FAMILIES)


@dataclass(frozen=True, slots=True)
class Source:
    """An organisation that submitted an entry, its jurisdiction, and its own reference."""

    organisation: str
    jurisdiction: str = ""  # ISO 3166 alpha-2 country code, or "INT"
    reference: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "organisation": self.organisation,
            "jurisdiction": self.jurisdiction,
            "reference": self.reference,
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Source":
        return Source(
            str(data["organisation"]),
            str(data.get("jurisdiction", "")),
            str(data.get("reference", "")),
        )


@dataclass(frozen=True, slots=True)
class ListPolicy:
    """How a list matches: per-signal thresholds (the signal's default when absent), whether
    it is a negative list, whether entries need two sources in different jurisdictions, the
    share of requests it is matched for (1: all, 0: off; HMA's ``enabled_ratio``), whether
    a detection on it needs two reviewers who agree (four eyes), and which query variants may
    match it (``VARIANT_FAMILIES``: ``dihedral``, the 3 rotations and 4 flips; ``trim``, the
    image with uniform borders trimmed; ``scale``, a small image hashed at the size its
    original likely had; none: the query as it is, what HMA does)."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    negative: bool = False
    two_sources: bool = False
    enabled_ratio: float = 1.0
    four_eyes: bool = False
    variants: frozenset[str] = DEFAULT_VARIANTS

    def as_json(self) -> dict[str, Any]:
        return {
            "thresholds": dict(self.thresholds),
            "negative": self.negative,
            "two_sources": self.two_sources,
            "enabled_ratio": self.enabled_ratio,
            "four_eyes": self.four_eyes,
            "variants": sorted(self.variants),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "ListPolicy":
        return ListPolicy(
            {str(k): float(v) for k, v in dict(data.get("thresholds", {})).items()},
            bool(data.get("negative", False)),
            bool(data.get("two_sources", False)),
            float(data.get("enabled_ratio", 1.0)),
            bool(data.get("four_eyes", False)),
            frozenset(str(v) for v in data.get("variants", DEFAULT_VARIANTS)),
        )


@dataclass(frozen=True, slots=True)
class HashList:
    id: int
    name: str
    owner: str  # the organisation that curates the list and signs its releases
    category: Category
    jurisdictions: tuple[str, ...] = ()
    legal_basis: str = ""
    policy: ListPolicy = ListPolicy()
    version: int = 0  # the number of changes appended so far


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who submitted an entry, who assessed it, and every source that holds it."""

    submitted_by: str = ""
    assessed_by: str = ""
    sources: tuple[Source, ...] = ()

    def with_sources(self, more: Iterable[Source]) -> "Provenance":
        merged = list(self.sources)
        for source in more:
            if source not in merged:
                merged.append(source)
        return replace(self, sources=tuple(merged))

    def as_json(self) -> dict[str, Any]:
        return {
            "submitted_by": self.submitted_by,
            "assessed_by": self.assessed_by,
            "sources": [source.as_json() for source in self.sources],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> "Provenance":
        return Provenance(
            str(data.get("submitted_by", "")),
            str(data.get("assessed_by", "")),
            tuple(Source.from_json(s) for s in data.get("sources", ())),
        )

    def independently_sourced(self) -> bool:
        """Whether two different organisations in two different jurisdictions submitted it."""
        sources = {
            (s.organisation.strip().casefold(), s.jurisdiction.strip().upper())
            for s in self.sources
            if s.organisation.strip() and s.jurisdiction.strip()
        }
        return any(a[0] != b[0] and a[1] != b[1] for a in sources for b in sources)


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    list_id: int
    signal: str
    value: str  # the signal's text form (PDQ: 64 lowercase hex digits)
    labels: frozenset[str] = frozenset()
    provenance: Provenance = Provenance()
    status: EntryStatus = EntryStatus.ACTIVE
    version: int = 0  # the list version of the entry's last change
    # How far the hash moves under a tiny change of the image (the signal's stability, 0-100),
    # when the entry was hashed from media; None when it came as a hash.
    stability: int | None = None

    def matchable(self, policy: ListPolicy, min_stability: int | None = None) -> bool:
        """Whether the entry matches under ``policy``: active, stable enough (a measured
        stability below ``min_stability``, by default its signal's own floor, is noise), not a
        degenerate value (``degenerate``), and sourced as required."""
        if self.status is not EntryStatus.ACTIVE:
            return False
        if self.stability is not None and too_unstable(self.signal, self.stability, min_stability):
            return False
        if degenerate(self.signal, self.value):
            return False
        return not policy.two_sources or self.provenance.independently_sourced()


def too_unstable(signal: str, stability: int, floor: int | None = None) -> bool:
    """Whether a value of ``signal`` measured at ``stability`` is below ``floor``, by default
    the signal's ``min_stability`` (an unknown signal, or one without a floor: never)."""
    own = _signal_of(signal).min_stability
    if own is None:
        return False  # a signal without a stability (a digest): nothing to hold it to
    return stability < (own if floor is None else floor)


def degenerate(signal: str, value: str) -> bool:
    """Whether ``value`` of ``signal`` says nothing about what the media shows (PDQ: a parity
    hash), so that it never matches (an unknown signal: never)."""
    return bool(_signal_of(signal).degenerate(value))


class _NoSignal:
    min_stability: Final = None

    @staticmethod
    def degenerate(value: str) -> bool:
        return False


# The signal types by name, looked up once each: Matchers and releases ask of millions of
# entries, and the registry's lookup (which normalises the name) costs more than the rest.
# The floor is read from the type each time, so a changed ``min_stability`` holds at once.
_SIGNALS: Final[dict[str, Any]] = {}


def _signal_of(name: str) -> Any:
    signal = _SIGNALS.get(name)
    if signal is None:
        from hashguard.signals import registry  # here: reading a list needs no signal code

        try:
            signal = registry.get(name)
        except registry.UnknownSignal:
            return _NoSignal
        _SIGNALS[name] = signal
    return signal


def _slot_setters(cls: type) -> tuple[Any, ...]:
    return tuple(getattr(cls, f.name).__set__ for f in fields(cls))


_ENTRY_SLOTS: Final = _slot_setters(Entry)


def new_entry(
    ident: int,
    list_id: int,
    signal: str,
    value: str,
    labels: frozenset[str],
    provenance: Provenance,
    status: EntryStatus,
    version: int,
    stability: int | None = None,
) -> Entry:
    """``Entry(...)``, several times faster: releases, imports and Matchers build millions, and
    a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``. Writing
    the slots directly is what that does, minus the calls."""
    entry = object.__new__(Entry)
    a, b, c, d, e, f, g, h, i = _ENTRY_SLOTS
    a(entry, ident)
    b(entry, list_id)
    c(entry, signal)
    d(entry, value)
    e(entry, labels)
    f(entry, provenance)
    g(entry, status)
    h(entry, version)
    i(entry, stability)
    return entry


@dataclass(frozen=True, slots=True)
class Change:
    """One appended change. ``add`` carries labels and provenance (sources merge with those
    already held; a deleted entry's are replaced); ``relabel`` carries the new labels; the
    others carry a reason. ``withdraw`` carries the sources that withdrew (and loses them); a
    ``delete`` because the last sources withdrew names them too, for the record. ``reinstate``
    makes a contested or delisted entry active again (of any other, it changes nothing)."""

    list_id: int
    version: int
    kind: ChangeKind
    entry_id: int
    signal: str
    value: str
    labels: frozenset[str] | None = None
    provenance: Provenance | None = None
    reason: str = ""
    actor: str = ""
    at: str = ""  # ISO 8601 UTC
    stability: int | None = None  # an ``add`` of a value hashed from media: its stability

    def tombstone(self) -> bool:
        """Whether subscribers must stop matching the entry after this change."""
        return self.kind in (ChangeKind.CONTEST, ChangeKind.DELIST, ChangeKind.DELETE)

    @staticmethod
    def from_json(data: Mapping[str, Any], list_id: int = 0) -> "Change":
        """A change read from another instance's feed (``as_json``); raises KeyError or
        ValueError for a malformed one."""
        labels = data.get("labels")
        provenance = data.get("provenance")
        return Change(
            list_id,
            int(data["version"]),
            ChangeKind(data["kind"]),
            int(data["entry"]),
            str(data["signal"]),
            str(data["value"]),
            frozenset(str(label) for label in labels) if labels is not None else None,
            Provenance.from_json(provenance) if provenance is not None else None,
            str(data.get("reason", "")),
            str(data.get("actor", "")),
            str(data.get("at", "")),
            _stability_from(data.get("stability")),
        )

    def as_json(self) -> dict[str, Any]:
        """The change as a subscriber reads it (the change feed)."""
        shown: dict[str, Any] = {
            "version": self.version,
            "kind": self.kind.value,
            "tombstone": self.tombstone(),
            "entry": self.entry_id,
            "signal": self.signal,
            "value": self.value,
            "at": self.at,
            "actor": self.actor,
        }
        if self.labels is not None:
            shown["labels"] = sorted(self.labels)
        if self.provenance is not None:
            shown["provenance"] = self.provenance.as_json()
        if self.reason:
            shown["reason"] = self.reason
        if self.stability is not None:
            shown["stability"] = self.stability
        return shown


def _stability_from(given: Any) -> int | None:
    """A stability read from a feed: None, or an integer 0-100; raises ValueError."""
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, int) or not 0 <= given <= 100:
        raise ValueError(f"stability {given!r}: expected an integer from 0 to 100")
    return given


def apply(entry: Entry | None, change: Change) -> Entry:
    """The entry after ``change`` (``entry`` is None before its first add)."""
    # Entries are built directly, not through dataclasses.replace: imports apply millions.
    version = change.version
    if change.kind is ChangeKind.ADD:
        labels = change.labels or frozenset()
        provenance = change.provenance or Provenance()
        if entry is None:
            return new_entry(
                change.entry_id, change.list_id, change.signal, change.value, labels,
                provenance, EntryStatus.ACTIVE, version, change.stability,
            )  # fmt: skip
        # The latest measured stability holds; an add of the value as a hash keeps the last.
        stability = entry.stability if change.stability is None else change.stability
        held = entry.provenance
        if entry.status is EntryStatus.DELETED:
            # A new submission revives a deleted (withdrawn) entry, held by it alone: the
            # sources on record had withdrawn it, and are history (the log keeps them).
            held = Provenance(
                provenance.submitted_by or held.submitted_by,
                provenance.assessed_by or held.assessed_by,
                tuple(dict.fromkeys(provenance.sources)),
            )
            return new_entry(
                entry.id, entry.list_id, entry.signal, entry.value, entry.labels | labels, held,
                EntryStatus.ACTIVE, version, stability,
            )  # fmt: skip
        new_sources = [s for s in provenance.sources if s not in held.sources]
        if new_sources or (provenance.assessed_by and provenance.assessed_by != held.assessed_by):
            held = Provenance(
                held.submitted_by,
                provenance.assessed_by or held.assessed_by,
                held.sources + tuple(dict.fromkeys(new_sources)),
            )
        # Contesting and delisting are the owner's decisions, which a re-import must not undo.
        return new_entry(
            entry.id, entry.list_id, entry.signal, entry.value, entry.labels | labels, held,
            entry.status, version, stability,
        )  # fmt: skip
    if entry is None:
        raise ValueError(f"change {change.version}: {change.kind} of an entry never added")
    labels, status, provenance = entry.labels, entry.status, entry.provenance
    if change.kind is ChangeKind.RELABEL:
        labels = change.labels or frozenset()
    elif change.kind is ChangeKind.REINSTATE:
        # Only the owner's own decisions are undone: a deleted entry comes back by a new
        # submission, and reinstating it (or an active one) changes nothing.
        if status in REINSTATABLE:
            status = EntryStatus.ACTIVE
    elif change.kind is not ChangeKind.WITHDRAW:
        status = _STATUS_AFTER[change.kind]
    if change.provenance is not None and change.kind is ChangeKind.WITHDRAW:
        gone = change.provenance.sources
        provenance = Provenance(
            provenance.submitted_by,
            provenance.assessed_by,
            tuple(s for s in provenance.sources if s not in gone),
        )
    return new_entry(
        entry.id, entry.list_id, entry.signal, entry.value, labels, provenance, status, version,
        entry.stability,
    )  # fmt: skip


REINSTATABLE: Final = frozenset((EntryStatus.CONTESTED, EntryStatus.DELISTED))
"""The statuses a ``reinstate`` makes active again: the owner's (or a reviewer's) decisions."""

_STATUS_AFTER: Final = {
    ChangeKind.CONTEST: EntryStatus.CONTESTED,
    ChangeKind.DELIST: EntryStatus.DELISTED,
    ChangeKind.DELETE: EntryStatus.DELETED,
}


def fold(changes: Iterable[Change], upto: int | None = None) -> dict[int, Entry]:
    """Entries by id after the changes up to version ``upto`` (all when None)."""
    entries: dict[int, Entry] = {}
    for change in changes:
        if upto is not None and change.version > upto:
            break
        entries[change.entry_id] = apply(entries.get(change.entry_id), change)
    return entries
