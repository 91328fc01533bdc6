"""Assessment: an analyst labels an item from the vocabulary; the legality per country follows
from the labels (never typed); a final assessment lists the item's hashes so the same image is
never shown again.

Without four eyes an assessment is final at once. With four eyes the first analyst's labels wait
(``pending``) for a second, different analyst: the same labels make it final; other labels make
it ``disagreed`` and send the item back to the queue, where two analysts other than those two
decide it afresh (neither of them may assess it again). One analyst assessing an item twice is
refused.

A final assessment puts the item's hashes on the hotline's illegal list (illegal at home) or on
its assessed-not-illegal list, both made on first use, each hash under the source reference
``assessment:ID`` with the analysts as ``assessed_by`` and the labels as entry labels; the
item's derived PDQ hashes (crops, when the crawl computed them) too, each labelled besides
``derived:NAME`` (``derived:crop-10``), and each PDQ value with its stability where it was
measured. Withdrawing the reference takes them all. Then every
queued item whose hashes now match is triaged at once (the same image reported at another URL is
decided without anyone viewing it), and a case whose last undecided item this was becomes
``assessed``: ``assessed(case_id)`` is told, for the pipeline to route it.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from hashguard.errors import Conflict, NotFound
from hashguard.hotline.hashes import derived_of, stability_of
from hashguard.hotline.model import DECIDED, AssessmentState, CaseState, ItemState
from hashguard.hotline.triage import Triage, entry_labels, query_of, reference
from hashguard.hotline.vocabulary import Vocabulary
from hashguard.lists.model import Category, ListPolicy, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.signals.derived import label as derived_label
from hashguard.store import audit
from hashguard.store.list_errors import ListError, ListExists
from hashguard.store.lists import ListStore
from hashguard.store.tables import HotlineAssessmentRow, HotlineCaseRow, HotlineItemRow

ACTOR: Final = "hotline"
ILLEGAL: Final = "illegal"
PDQ: Final = "pdq"  # the signal of derived hashes
LEGAL_BASIS: Final = "assessed by the hotline's analysts"


class AssessmentRefused(Conflict):
    """An assessment that cannot be made now; the message says why."""


class ListMisconfigured(AssessmentRefused, ListError):
    """A list named for the hotline's hashes exists with another category."""


@dataclass(frozen=True, slots=True)
class Assessment:
    id: int
    item_id: int
    state: AssessmentState
    labels: dict[str, str]
    legality: dict[str, str]
    analysts: tuple[str, ...]
    list_name: str | None  # where the item's hashes were listed (final only)
    triaged: tuple[int, ...] = ()  # queued items decided by it at once (final only)


class Assessments:
    def __init__(
        self,
        engine: Engine,
        lists: ListStore,
        triage: Triage,
        vocabulary: Vocabulary,
        *,
        home: str,
        four_eyes: bool,
        organisation: str = "hotline",
        assessed: Callable[[int], None] = lambda case_id: None,
    ) -> None:
        """``home``: the hotline's country (its legality decides the list); ``organisation``:
        the hotline as its lists' owner and entries' submitter; ``assessed``: told each case
        id that became ``assessed`` (the pipeline routes it)."""
        self.engine = engine
        self.lists = lists
        self.triage = triage
        self.vocabulary = vocabulary
        self.home = home.upper()
        self.four_eyes = four_eyes
        self.organisation = organisation
        self.assessed = assessed

    def assess(self, item_id: int, labels: Mapping[str, str], analyst: str) -> Assessment:
        """``analyst`` assesses the item with ``labels``; the assessment after it. Raises
        LabelError (Invalid) for labels the vocabulary refuses, NotFound for no such item, and
        AssessmentRefused for an item not waiting for an analyst, or an analyst assessing an
        item a second time (four eyes)."""
        if not analyst.strip():
            raise AssessmentRefused("an assessment needs the analyst's name")
        checked = self.vocabulary.check(labels)
        legality = self.vocabulary.legality(checked, self.home)
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            item = self._item(connection, item_id)
            self._may_assess(connection, item, analyst)
            second: tuple[str, datetime] | None = None
            analysts: tuple[str, ...]
            if item.state == ItemState.PENDING.value:
                pending = self._pending(connection, item)
                if not self.four_eyes:
                    raise AssessmentRefused(f"item {item.id} is being assessed by "
                                            f"{pending.first_by}")  # fmt: skip
                if dict(pending.labels) != checked:
                    return self._disagree(connection, item, pending, checked, analyst, now)
                ident, analysts = int(pending.id), (pending.first_by, analyst)
                second = (analyst, now)
            else:  # the item is claimed (pending) while its hashes are listed
                ident = self._insert(connection, item, checked, legality, analyst, now)
                analysts = (analyst,)
                self._set_item(connection, item, ItemState.PENDING, checked, legality, ident)
                if self.four_eyes:
                    audit.append(connection, analyst, "hotline.assessed", f"item:{item.id}",
                                 {"assessment": ident, "state": "pending", "labels": checked,
                                  "legality": legality})  # fmt: skip
                    return Assessment(ident, item.id, AssessmentState.PENDING, checked, legality,
                                      analysts, None)  # fmt: skip
        return self._finish(item, ident, checked, legality, analysts, second)

    # --- the steps --------------------------------------------------------------------------

    def _item(self, connection: Connection, item_id: int) -> Any:
        table = HotlineItemRow.__table__
        # Taken for update (PostgreSQL's row lock; SQLite: the write lock of this transaction).
        connection.execute(update(HotlineItemRow).where(table.c.id == item_id)
                           .values(state=table.c.state))  # fmt: skip
        item = connection.execute(select(table).where(table.c.id == item_id)).one_or_none()
        if item is None:
            raise NotFound(f"no hotline item number {item_id}")
        return item

    def _may_assess(self, connection: Connection, item: Any, analyst: str) -> None:
        if item.state not in (ItemState.QUEUED.value, ItemState.PENDING.value):
            raise AssessmentRefused(f"item {item.id} is {item.state}: it is not waiting for an "
                                    "analyst")  # fmt: skip
        table = HotlineAssessmentRow.__table__
        earlier = connection.execute(
            select(table.c.state, table.c.first_by, table.c.second_by).where(
                table.c.item_id == item.id,
                table.c.state.in_([AssessmentState.PENDING.value,
                                   AssessmentState.DISAGREED.value]))
        ).all()  # fmt: skip
        for row in earlier:
            if analyst in (row.first_by, row.second_by):
                why = ("has assessed it already; four eyes need a second analyst"
                       if row.state == AssessmentState.PENDING.value else
                       "took part in an assessment of it that was disagreed; two other "
                       "analysts decide it now")  # fmt: skip
                raise AssessmentRefused(f"item {item.id}: {analyst} {why}")

    def _pending(self, connection: Connection, item: Any) -> Any:
        table = HotlineAssessmentRow.__table__
        return connection.execute(
            select(table).where(table.c.item_id == item.id,
                                table.c.state == AssessmentState.PENDING.value)
            .order_by(table.c.id.desc()).limit(1)
        ).one()  # fmt: skip

    def _insert(
        self,
        connection: Connection,
        item: Any,
        labels: dict[str, str],
        legality: dict[str, str],
        analyst: str,
        now: datetime,
    ) -> int:
        return int(connection.execute(insert(HotlineAssessmentRow).values(
            item_id=item.id, labels=labels, legality=legality,
            state=AssessmentState.PENDING.value, first_by=analyst, first_at=now, second_by=None,
            second_at=None, list_name=None,
        )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip

    def _set_item(
        self,
        connection: Connection,
        item: Any,
        state: ItemState,
        labels: Mapping[str, str],
        legality: Mapping[str, str],
        assessment_id: int | None,
        now: datetime | None = None,
    ) -> None:
        connection.execute(
            update(HotlineItemRow).where(HotlineItemRow.__table__.c.id == item.id)
            .values(state=state.value, labels=dict(labels), legality=dict(legality),
                    assessment_id=assessment_id, decided_at=now)
        )  # fmt: skip

    def _disagree(
        self,
        connection: Connection,
        item: Any,
        pending: Any,
        labels: dict[str, str],
        analyst: str,
        now: datetime,
    ) -> Assessment:
        connection.execute(
            update(HotlineAssessmentRow).where(HotlineAssessmentRow.id == pending.id)
            .values(state=AssessmentState.DISAGREED.value, second_by=analyst, second_at=now)
        )  # fmt: skip
        self._set_item(connection, item, ItemState.QUEUED, {}, {}, None)
        audit.append(connection, analyst, "hotline.assessed", f"item:{item.id}",
                     {"assessment": pending.id, "state": "disagreed",
                      "labels": dict(pending.labels), "other_labels": labels})  # fmt: skip
        return Assessment(int(pending.id), item.id, AssessmentState.DISAGREED,
                          dict(pending.labels), dict(pending.legality),
                          (pending.first_by, analyst), None)  # fmt: skip

    def _finish(
        self,
        item: Any,
        ident: int,
        labels: dict[str, str],
        legality: dict[str, str],
        analysts: tuple[str, ...],
        second: tuple[str, datetime] | None,
    ) -> Assessment:
        """Make the assessment final where it is still pending (the item assessed, the case
        perhaps too) and list the item's hashes, in one transaction: an analyst who lost the
        race to another writes nothing. Then triage the queue again."""
        illegal = legality.get(self.home) == ILLEGAL
        list_name = self.triage.illegal_list if illegal else self.triage.not_illegal_list
        table = HotlineAssessmentRow.__table__
        won = False
        try:
            self._made(list_name)
            with self.engine.begin() as connection:
                won = bool(connection.execute(
                    update(HotlineAssessmentRow)
                    .where(table.c.id == ident, table.c.state == AssessmentState.PENDING.value)
                    .values(state=AssessmentState.FINAL.value, list_name=list_name,
                            second_by=second[0] if second else None,
                            second_at=second[1] if second else None)
                ).rowcount)  # fmt: skip
                if won:
                    self._list(connection, list_name, item.hashes, labels, ident, analysts)
                    self._set_item(connection, item, ItemState.ASSESSED, labels, legality,
                                   ident, datetime.now(UTC))  # fmt: skip
                    audit.append(connection, analysts[-1], "hotline.assessed",
                                 f"item:{item.id}",
                                 {"assessment": ident, "state": "final", "labels": labels,
                                  "legality": legality, "analysts": list(analysts),
                                  "list": list_name})  # fmt: skip
        except Exception:
            if second is None:  # nothing half done: the assessment goes, the item is queued
                with self.engine.begin() as connection:
                    connection.execute(delete(HotlineAssessmentRow)
                                       .where(HotlineAssessmentRow.id == ident))  # fmt: skip
                    self._set_item(connection, item, ItemState.QUEUED, {}, {}, None)
            raise  # four eyes: the assessment still waits for the second analyst
        if not won:
            raise AssessmentRefused(f"item {item.id} was decided by another analyst meanwhile")
        self.lists.committed()
        triaged = self.triage.queued()
        for case_id in self._cases_decided({item.case_id, *self._cases_of(triaged)}):
            self.assessed(case_id)
        return Assessment(ident, item.id, AssessmentState.FINAL, labels, legality, analysts,
                          list_name, tuple(triaged))  # fmt: skip

    def _list(
        self,
        connection: Connection,
        name: str,
        hashes: Mapping[str, Any],
        labels: Mapping[str, str],
        ident: int,
        analysts: tuple[str, ...],
    ) -> None:
        source = Source(self.organisation, self.home, reference(ident))
        provenance = Provenance(self.organisation, ", ".join(analysts), (source,))
        listed = entry_labels(labels)
        records = [
            Submission(hashed.name, hashed.text, listed, provenance,
                       stability=stability_of(hashes, hashed.name))
            for hashed in query_of(hashes)
        ]  # fmt: skip
        # The derived hashes (crops) as entries of the same item: under the same reference, so
        # that withdrawing the assessment takes them all.
        records += [
            Submission(PDQ, value, listed | {derived_label(crop)}, provenance,
                       stability=stability_of(hashes, crop))
            for crop, value in derived_of(hashes).items()
        ]  # fmt: skip
        self.lists.apply(name, records, ACTOR, connection=connection)

    def _made(self, name: str) -> None:
        """The list ``name``, made on first use: the hotline's own assessments, four eyes as
        the deployment has them."""
        category = (Category.KNOWN_CSAM if name == self.triage.illegal_list
                    else Category.FALSE_POSITIVES)  # fmt: skip
        try:
            self.lists.create(name, self.organisation, category, jurisdictions=(self.home,),
                              legal_basis=LEGAL_BASIS, policy=ListPolicy(four_eyes=self.four_eyes),
                              actor=ACTOR)  # fmt: skip
        except ListExists:
            held = self.lists.get(name).category
            if held is not category:
                raise ListMisconfigured(
                    f"list {name} is of category {held}, not {category}: the hotline's "
                    "assessments go to lists of their own"
                ) from None

    def _cases_of(self, item_ids: list[int]) -> set[int]:
        if not item_ids:
            return set()
        table = HotlineItemRow.__table__
        with self.engine.connect() as connection:
            return set(connection.execute(
                select(table.c.case_id).where(table.c.id.in_(item_ids))).scalars())  # fmt: skip

    def _cases_decided(self, case_ids: set[int]) -> list[int]:
        """Of ``case_ids``, those triaged whose items are all decided now, made ``assessed``."""
        return [case_id for case_id in sorted(case_ids) if mark_assessed(self.engine, case_id)]


def mark_assessed(engine: Engine, case_id: int) -> bool:
    """Make the case ``assessed`` if it is ``triaged`` and none of its items waits for an
    analyst; whether it became so."""
    items, cases = HotlineItemRow.__table__, HotlineCaseRow.__table__
    undecided = (
        select(func.count())
        .where(items.c.case_id == case_id, items.c.state.not_in([s.value for s in DECIDED]))
        .scalar_subquery()
    )
    with engine.begin() as connection:
        changed = connection.execute(
            update(HotlineCaseRow)
            .where(cases.c.id == case_id, cases.c.state == CaseState.TRIAGED.value,
                   undecided == 0)
            .values(state=CaseState.ASSESSED.value, updated_at=datetime.now(UTC))
        ).rowcount  # fmt: skip
    return bool(changed)
