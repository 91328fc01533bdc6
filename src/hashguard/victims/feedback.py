"""Partners' outcomes for matches on victim lists, in StopNCII's words: PendingReview (a match
awaits review), Blocked (a reviewer confirmed it), NotBlocked (a false positive, or not acted
on). They arrive from hashguard's own review (``ReviewFeedback``, told of every detection opened
or decided) and from partners that review elsewhere (``Feedback.post``). A bad record in a
partner's batch is quarantined and named in the answer; the others are recorded all the same.

What is kept is the outcome per (partner, reference, entry), never content or account data;
a case's status counts them per partner, an item (reference) once however many of the case's
hashes it matched."""

import logging
import unicodedata
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert, select, update

from hashguard.lists.model import VICTIM_CATEGORIES, Category
from hashguard.review.model import State
from hashguard.store.list_errors import ListError
from hashguard.store.lists import ListStore
from hashguard.store.tables import HashListRow, ServiceRow, VictimFeedbackRow
from hashguard.victims.model import InvalidHash, Outcome, one_hash

log = logging.getLogger("hashguard.victims")

OUTCOME_OF_STATE: Final = {
    State.PENDING: Outcome.PENDING_REVIEW,
    State.IN_REVIEW: Outcome.PENDING_REVIEW,
    State.CONFIRMED: Outcome.BLOCKED,
    State.REPORTED: Outcome.BLOCKED,
    State.CLOSED: Outcome.BLOCKED,
    State.FALSE_POSITIVE: Outcome.NOT_BLOCKED,
}
MAX_RECORDS: Final = 1000  # per posted batch
NOT_MATCHED: Final = "no match of this hash to record an outcome for"


def record(
    connection: Connection, partner: str, reference: str, list_name: str, entry: int,
    outcome: Outcome,
) -> None:  # fmt: skip
    """The latest ``outcome`` of ``partner`` for its item ``reference`` matching ``entry``."""
    table = VictimFeedbackRow.__table__
    where = (table.c.partner == partner, table.c.reference == reference,
             table.c.list_name == list_name, table.c.entry_id == entry)  # fmt: skip
    now = datetime.now(UTC)
    found = connection.execute(select(table.c.id).where(*where)).scalar()
    if found is None:
        connection.execute(insert(VictimFeedbackRow).values(
            partner=partner, reference=reference, list_name=list_name, entry_id=entry,
            outcome=outcome.value, at=now))  # fmt: skip
    else:
        connection.execute(update(VictimFeedbackRow).where(table.c.id == found).values(
            outcome=outcome.value, at=now))  # fmt: skip


def _control(character: str) -> bool:
    return unicodedata.category(character) == "Cc"


class ReviewFeedback:
    """A review observer (hashguard.review.detections.Observer): each detection on a victim
    list opened or decided is that service's outcome for the entries it matched."""

    def detection_changed(
        self,
        connection: Connection,
        ident: int,
        service_id: int,
        evidence: Sequence[Mapping[str, Any]],
        state: State,
    ) -> None:
        names = sorted({str(m.get("list", "")) for m in evidence})
        if not names:
            return
        lists = HashListRow.__table__
        victims = {
            name
            for name, category in connection.execute(
                select(lists.c.name, lists.c.category).where(lists.c.name.in_(names))
            )
            if Category(category) in VICTIM_CATEGORIES
        }
        if not victims:
            return
        services = ServiceRow.__table__
        partner = connection.execute(
            select(services.c.name).where(services.c.id == service_id)
        ).scalar_one()
        outcome = OUTCOME_OF_STATE[state]
        for match in evidence:
            if match.get("list") in victims:
                record(connection, partner, f"detection:{ident}", str(match["list"]),
                       int(match["entry"]), outcome)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Posted:
    recorded: int
    quarantined: list[tuple[int, str]]  # (index in the batch, why)


class Feedback:
    """Outcomes on the victim lists ``lists`` (their names), and their counts."""

    def __init__(self, engine: Engine, store: ListStore, lists: Collection[str]) -> None:
        self.engine = engine
        self.store = store
        self.lists = list(lists)

    def post(
        self, partner: str, records: Sequence[Mapping[str, Any]], lists: Collection[str]
    ) -> Posted:
        """Record a partner's outcomes (``{"signal", "value", "outcome", "reference"}`` each)
        for matches on the victim lists among ``lists`` (those the partner's key may use). A
        record that cannot be recorded (malformed, an unknown outcome, a reference that is not
        text or holds control characters, a hash matching none of those lists: for that one
        reason, whatever the cause) is quarantined with the reason and logged; the rest are
        recorded."""
        usable = [name for name in self.lists if name in lists]
        quarantined: list[tuple[int, str]] = []
        accepted: list[tuple[str, str, int, Outcome]] = []
        for index, item in enumerate(records):
            try:
                accepted.extend(self._entries(index, item, usable))
            except (InvalidHash, ValueError) as error:
                quarantined.append((index, str(error)))
                log.warning("feedback of %s quarantined: %s", partner, error)
        with self.engine.begin() as connection:
            for reference, name, entry, outcome in accepted:
                record(connection, partner, reference, name, entry, outcome)
        return Posted(len(records) - len(quarantined), quarantined)

    def _entries(
        self, index: int, item: Mapping[str, Any], lists: Sequence[str]
    ) -> list[tuple[str, str, int, Outcome]]:
        where = f"records.{index}"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected an object")
        submitted = one_hash({"signal": item.get("signal"), "value": item.get("value"),
                              "quality": 100}, where)  # fmt: skip
        try:
            outcome = Outcome(str(item.get("outcome", "")))
        except ValueError:
            raise ValueError(f"{where}: outcome {item.get('outcome')!r}: expected one of "
                             f"{', '.join(o.value for o in Outcome)}") from None  # fmt: skip
        reference = item.get("reference", "")
        reference = reference.strip() if isinstance(reference, str) else ""
        if not reference or len(reference) > 500 or any(map(_control, reference)):
            raise ValueError(f"{where}: reference: expected your own id for the item as text "
                             "(1-500 characters, no control characters)")  # fmt: skip
        found = []
        for name in lists:
            try:
                entry = self.store.entry(name, submitted.signal, submitted.value)
            except ListError:
                continue
            found.append((reference, name, entry.id, outcome))
        if not found:  # one reason, whatever the cause: membership is not told
            raise ValueError(f"{where}: {submitted.signal} {submitted.value[:80]}: "
                             f"{NOT_MATCHED}")  # fmt: skip
        return found

    def counts(self, list_name: str, entries: Collection[int]) -> dict[str, Counter[Outcome]]:
        """Per partner, how many of its items (uploads: its references) matched ``entries``
        with each outcome: an item matching several of the entries counts once, with its
        latest outcome."""
        table = VictimFeedbackRow.__table__
        found: dict[str, Counter[Outcome]] = {}
        if not entries:
            return found
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table.c.partner, table.c.reference, table.c.outcome)
                .where(table.c.list_name == list_name, table.c.entry_id.in_(sorted(entries)))
                .order_by(table.c.at, table.c.id)
            )
            latest = {(partner, reference): outcome for partner, reference, outcome in rows}
        for (partner, _), outcome in latest.items():
            found.setdefault(partner, Counter())[Outcome(outcome)] += 1
        return found
