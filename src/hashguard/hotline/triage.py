"""Triage without re-exposure: an item whose hashes match what the hotline assessed before, or a
configured known list, is decided without anyone viewing it; only unknown items are queued for
an analyst.

An item's hashes (signal -> canonical string) become one ``matching.Query``, matched against the
hotline's two lists (illegal, assessed not illegal) and the known lists, each with its own
thresholds (PDQ near matches included: a re-encoded copy is the same image). A match on a hotline
list leads to the assessment that put the entry there (its source reference ``assessment:ID``):
the item takes that assessment's labels and legality (``auto``, ``assessment_id`` set). A match
on a known list: ``auto``, with the legality the vocabulary gives the entry's labels, or, when
they are not the vocabulary's, illegal at home (a list of known material); a known list never
decides an item illegal nowhere (it is queued then). Nothing matched: ``queued``. An item without a
hash that can be matched: ``failed``. Each decision is audited ("hotline.triaged") with what
matched and that nobody viewed the item.

The Matcher is asked for at each triage (``matcher()``), so entries added a moment ago are
seen: in the service that is the service's Matcher (``ServedLists`` applies each write to it
before the write returns); elsewhere ``CurrentMatcher`` keeps one in step with the store.
"""

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, select, update

from hashguard.errors import HashguardError, NotFound
from hashguard.hotline.hashes import signal_hashes
from hashguard.hotline.model import AssessmentState, ItemState
from hashguard.hotline.vocabulary import ILLEGAL
from hashguard.matching import Matcher
from hashguard.matching.matcher import Match
from hashguard.matching.query import Hashed, Query, parse
from hashguard.signals.base import InvalidSignalValue
from hashguard.signals.derived import LABEL_PREFIX as DERIVED_LABEL
from hashguard.signals.registry import UnknownSignal
from hashguard.store import audit
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore
from hashguard.store.tables import HotlineAssessmentRow, HotlineItemRow

ACTOR: Final = "hotline"
REFERENCE: Final = "assessment:"  # the source reference of a hotline list's entry: assessment:ID

# How close (PDQ bits) a copy of an item assessed not illegal must be to be decided without an
# analyst: half the matching threshold. Re-encodings and resizes stay within it (bench/hotline.py
# measures them at 0-14 bits); a picture with something added to it moves further.
NOT_ILLEGAL_NEAR: Final = 16

Legality = Callable[[Mapping[str, str]], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What triage decided for one item."""

    state: ItemState  # AUTO, QUEUED or FAILED
    labels: dict[str, str] = field(default_factory=dict)
    legality: dict[str, str] = field(default_factory=dict)
    assessment_id: int | None = None
    # What matched: list, entry, signal, distance (and the assessment); {} when nothing did.
    triage: dict[str, Any] = field(default_factory=dict)


def query_of(hashes: Mapping[str, Any]) -> Query:
    """The query of an item's hashes (its hash per signal: derived hashes are listed, not
    asked); signals lists cannot hold and malformed values left out."""
    found: list[Hashed] = []
    for signal, value in signal_hashes(hashes).items():
        try:
            found.extend(parse(signal, value))
        except (UnknownSignal, InvalidSignalValue):
            continue
    return Query(tuple(found))


def reference(assessment_id: int) -> str:
    """The source reference under which an assessment's hashes are listed."""
    return f"{REFERENCE}{assessment_id}"


def labels_of(entry_labels: Iterable[str]) -> dict[str, str]:
    """A list entry's labels as the hotline keeps them: ``group:value`` -> {group: value}; other
    labels (a known list's own words) together under ``label``; ``derived:NAME`` (which crop
    a derived entry is) is not a label of the material and is left out."""
    labels: dict[str, str] = {}
    plain: list[str] = []
    for label in sorted(entry_labels):
        if label.startswith(DERIVED_LABEL):
            continue
        group, colon, value = label.partition(":")
        if colon and group and value:
            labels[group] = value
        else:
            plain.append(label)
    if plain:
        labels["label"] = ", ".join(plain)
    return labels


def entry_labels(labels: Mapping[str, str]) -> frozenset[str]:
    """The hotline's labels as a list entry's: ``group:value``."""
    return frozenset(f"{group}:{value}" for group, value in labels.items())


class Triage:
    def __init__(
        self,
        lists: ListStore,
        matcher: Callable[[], Matcher],
        *,
        illegal_list: str = "hotline-illegal",
        not_illegal_list: str = "hotline-not-illegal",
        known_lists: Sequence[str] = (),
        legality: Legality | None = None,
        home: str | None = None,
    ) -> None:
        """``matcher`` returns the Matcher to ask, current with the store; ``legality`` derives
        a known list's item's legality from its labels (the vocabulary's), where it can;
        ``home``: the hotline's country, where a known list's material is illegal otherwise."""
        self.lists = lists
        self.matcher = matcher
        self.illegal_list = illegal_list
        self.not_illegal_list = not_illegal_list
        self.known_lists = tuple(known_lists)
        self.legality = legality
        self.home = home.upper() if home else None

    @property
    def hotline_lists(self) -> tuple[str, str]:
        return (self.illegal_list, self.not_illegal_list)

    @property
    def engine(self) -> Engine:
        return self.lists.engine

    # --- deciding ---------------------------------------------------------------------------

    def decide(self, hashes: Mapping[str, str]) -> Verdict:
        """The verdict for an item of ``hashes`` (reads the lists and assessments; writes
        nothing)."""
        query = query_of(hashes)
        if not query:
            return Verdict(ItemState.FAILED)
        return self.decide_all([query])[0]

    def decide_all(self, queries: Sequence[Query]) -> list[Verdict]:
        """``decide`` for many items' queries at once (one index query per signal)."""
        named = (*self.hotline_lists, *self.known_lists)
        found = self.matcher().match_all(list(queries), named) if queries else []
        verdicts = []
        for query, matches in zip(queries, found, strict=True):
            if not query:
                verdicts.append(Verdict(ItemState.FAILED))
                continue
            verdicts.append(self._verdict(matches))
        return verdicts

    def _verdict(self, matches: Sequence[Match]) -> Verdict:
        # The closest assessment first (an exact copy before a near one), illegal before not
        # illegal at equal distance; then the known lists. Not illegal decides only a close
        # copy (NOT_ILLEGAL_NEAR): farther off, it may be the picture with something added.
        ours = sorted((m for m in matches if m.list == self.illegal_list
                       or (m.list == self.not_illegal_list
                           and m.distance <= NOT_ILLEGAL_NEAR)),
                      key=lambda m: (m.distance, m.list != self.illegal_list, m.entry))  # fmt: skip
        for match in ours:
            assessment = self._assessment(match)
            if assessment is not None:
                triage = _matched(match) | {"assessment": assessment.id}
                return Verdict(ItemState.AUTO, dict(assessment.labels),
                               dict(assessment.legality), assessment.id, triage)  # fmt: skip
        for match in matches:
            if match.list in self.known_lists:
                return self._known(match)
        return Verdict(ItemState.QUEUED)

    def _known(self, match: Match) -> Verdict:
        """A known list's entry: the vocabulary's legality of its labels where they are the
        vocabulary's, else illegal at home (it is a list of known material; its own words are
        kept with what matched, not as the hotline's labels). Never decided illegal nowhere:
        labels that say so, or no home to count it illegal in, leave the item to an analyst."""
        labels = labels_of(match.labels)
        legality = self._legality(labels)
        if not legality:
            labels = {}
            legality = {self.home: ILLEGAL} if self.home else {}
        if ILLEGAL not in legality.values():
            return Verdict(ItemState.QUEUED)
        triage = _matched(match) | {"labels": sorted(match.labels)}
        return Verdict(ItemState.AUTO, labels, legality, None, triage)

    def _assessment(self, match: Match) -> Any:
        """The final assessment that listed the matched entry (the newest, if several)."""
        try:
            entry = self.lists.entry_by_id(match.list, match.entry)
        except (ListError, NotFound):
            return None
        ids = []
        for source in entry.provenance.sources:
            if source.reference.startswith(REFERENCE):
                try:
                    ids.append(int(source.reference.removeprefix(REFERENCE)))
                except ValueError:
                    continue
        if not ids:
            return None
        table = HotlineAssessmentRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(
                select(table)
                .where(table.c.id.in_(ids), table.c.state == AssessmentState.FINAL.value)
                .order_by(table.c.id.desc())
                .limit(1)
            ).one_or_none()

    def _legality(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.legality is None:
            return {}
        try:
            return dict(self.legality(labels))
        except HashguardError:  # labels outside the vocabulary: no legality derived
            return {}

    # --- recording --------------------------------------------------------------------------

    def record(
        self,
        connection: Connection,
        item_id: int,
        verdict: Verdict,
        now: datetime | None = None,
        expected: ItemState | None = None,
    ) -> bool:
        """Write ``verdict`` to the item in the caller's transaction, audited; with
        ``expected``, only if the item is still in that state. Whether it was written."""
        now = now or datetime.now(UTC)
        table = HotlineItemRow.__table__
        where = [table.c.id == item_id]
        if expected is not None:
            where.append(table.c.state == expected.value)
        decided = verdict.state is not ItemState.QUEUED
        written = connection.execute(
            update(HotlineItemRow)
            .where(*where)
            .values(state=verdict.state.value, labels=verdict.labels, legality=verdict.legality,
                    assessment_id=verdict.assessment_id, triage=verdict.triage,
                    decided_at=now if decided else None)
        ).rowcount  # fmt: skip
        if written:
            audit.append(connection, ACTOR, "hotline.triaged", f"item:{item_id}",
                         {"state": verdict.state.value, "matched": verdict.triage or None,
                          "viewed": False})  # fmt: skip
        return bool(written)

    def queued(self, item_ids: Collection[int] | None = None) -> list[int]:
        """Triage again the items waiting for an analyst (those of ``item_ids``, else all):
        those that now match are decided at once, so nobody is shown them. The ids decided."""
        table = HotlineItemRow.__table__
        query = select(table.c.id, table.c.hashes).where(table.c.state == ItemState.QUEUED.value)
        if item_ids is not None:
            query = query.where(table.c.id.in_(sorted(item_ids)))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(table.c.id)).all()
        if not rows:
            return []
        verdicts = self.decide_all([query_of(row.hashes) for row in rows])
        decided = []
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            for row, verdict in zip(rows, verdicts, strict=True):
                if verdict.state is not ItemState.AUTO:
                    continue
                # Only if still queued: an analyst may have taken it meanwhile.
                if self.record(connection, row.id, verdict, now, expected=ItemState.QUEUED):
                    decided.append(int(row.id))
        return decided


def _matched(match: Match) -> dict[str, Any]:
    return {"list": match.list, "entry": match.entry, "signal": match.signal,
            "distance": match.distance}  # fmt: skip


class CurrentMatcher:
    """A Matcher over the named lists of a store, brought up to the store at each call: lists
    made since are loaded and every change applied (for the command line and tests; the
    service passes its own Matcher, which ``ServedLists`` keeps current)."""

    def __init__(self, lists: ListStore, names: Sequence[str]) -> None:
        self.lists = lists
        self.names = tuple(dict.fromkeys(names))
        self._lock = threading.Lock()
        self._matcher = Matcher(lists, [name for name in self.names if name in self._stored()])

    def _stored(self) -> set[str]:
        return {hash_list.name for hash_list in self.lists.lists()}

    def __call__(self) -> Matcher:
        with self._lock:
            held = self._matcher.versions()
            for name in self._stored() & set(self.names) - set(held):
                self._matcher.add_list(name)
            self._matcher.refresh()
        return self._matcher

    def close(self) -> None:
        self._matcher.close()
