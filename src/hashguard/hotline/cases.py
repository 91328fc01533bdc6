"""What the hotline's desk, API and command line show of reports, cases and items: URLs, states,
fetch records, hashes, labels, traces, routes, notices and what waits in the outbox. Never
content: the desk fetches an item again from its URL when an analyst reveals it, and
``record_view`` puts every such viewing in the audit log.

Labels an analyst gave an item that still waits (pending a second analyst under four eyes, or
queued again after a disagreement) are not shown: the next analyst chooses without seeing them.

``figures`` are the dashboard's: how much arrived, and how much of it triage decided without
anyone viewing it (``auto_share``).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Engine, func, or_, select

from hashguard.errors import NotFound
from hashguard.hotline.hashes import derived_of, signal_hashes, stability_of
from hashguard.hotline.model import WAITING, AssessmentState, ItemState
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineAssessmentRow,
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineFetchRow,
    HotlineItemRow,
    HotlineOutboxRow,
    HotlineReportRow,
    HotlineRouteRow,
    HotlineTraceRow,
    TakedownNoticeRow,
    utc,
)


class UnknownCase(NotFound):
    """No case has the id given."""


class UnknownItem(NotFound):
    """No item has the id given."""


@dataclass(frozen=True, slots=True)
class ReportShown:
    """A report as the desk lists it; of its contact only whether there is one."""

    id: int
    reference: str
    source: str  # public, or partner:NAME
    created_at: datetime
    language: str
    seen_where: str
    description: str
    has_contact: bool
    cases: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CaseReport:
    reference: str
    source: str
    seen_where: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FetchShown:
    id: int
    url: str
    final_url: str
    at: datetime
    status: int | None
    content_type: str
    size: int
    kind: str
    outcome: str
    detail: str
    hashes: dict[str, str]
    quality: int | None


@dataclass(frozen=True, slots=True)
class AssessmentShown:
    id: int
    state: str  # pending, final, disagreed
    labels: dict[str, Any]
    legality: dict[str, Any]
    first_by: str
    first_at: datetime
    second_by: str | None
    second_at: datetime | None
    list_name: str | None


@dataclass(frozen=True, slots=True)
class ItemShown:
    id: int
    case_id: int
    case_url: str
    url: str
    kind: str
    state: str
    hashes: dict[str, str]  # signal -> canonical value
    quality: int | None
    labels: dict[str, Any]
    legality: dict[str, Any]
    triage: dict[str, Any]  # what triage found: the assessment or known list that matched
    assessment_id: int | None
    created_at: datetime
    decided_at: datetime | None
    first_analyst: str | None  # pending (four eyes): who assessed it first
    assessments: tuple[AssessmentShown, ...] = ()  # filled by ``item`` only
    derived: dict[str, str] = field(default_factory=dict)  # derived PDQ hashes by name
    stability: int | None = None  # of its PDQ hash, where it was measured


@dataclass(frozen=True, slots=True)
class TraceShown:
    at: datetime
    country: str | None
    hoster: str | None
    cdn: bool
    trace: dict[str, Any]  # Trace.as_json()


@dataclass(frozen=True, slots=True)
class RouteShown:
    at: datetime
    kind: str
    target: str
    actions: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class NoticeShown:
    id: int
    hoster: str
    abuse_email: str | None
    abuse_api: str | None
    cdn: bool
    urls: tuple[str, ...]
    state: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxShown:
    id: int
    kind: str
    target: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str


@dataclass(frozen=True, slots=True)
class CaseShown:
    id: int
    url: str
    host: str
    state: str
    created_at: datetime
    updated_at: datetime
    attempts: int
    last_error: str
    reports: tuple[CaseReport, ...]
    fetches: tuple[FetchShown, ...]
    items: tuple[ItemShown, ...]
    trace: TraceShown | None  # the latest
    route: RouteShown | None  # the latest
    notices: tuple[NoticeShown, ...]
    outbox: tuple[OutboxShown, ...]


@dataclass(frozen=True, slots=True)
class Figures:
    reports: int
    cases: int
    items: int
    auto: int  # triaged without anyone viewing them
    assessed: int  # by analysts
    queued: int
    pending: int  # assessed once, waiting for a second analyst
    failed: int
    auto_share: float | None  # auto / (auto + assessed + queued + pending); None when none
    cases_by_state: dict[str, int]
    routes_by_kind: dict[str, int]


class Cases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def reports(self, limit: int = 50, offset: int = 0) -> list[ReportShown]:
        """Reports, newest first."""
        reports, links = HotlineReportRow.__table__, HotlineCaseReportRow.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(reports).order_by(reports.c.id.desc()).limit(limit).offset(offset)
            ).all()
            named: dict[int, list[int]] = {row.id: [] for row in rows}
            for link in connection.execute(
                select(links.c.report_id, links.c.case_id)
                .where(links.c.report_id.in_(list(named)))
                .order_by(links.c.case_id)
            ):
                named[link.report_id].append(link.case_id)
        return [
            ReportShown(
                row.id,
                row.reference,
                row.source,
                utc(row.created_at),
                row.language,
                row.seen_where,
                row.description,
                row.contact is not None,
                tuple(named[row.id]),
            )
            for row in rows
        ]

    def case(self, case_id: int) -> CaseShown:
        """The case ``case_id`` with all that is known of it. Raises UnknownCase."""
        cases, reports = HotlineCaseRow.__table__, HotlineReportRow.__table__
        links, fetches = HotlineCaseReportRow.__table__, HotlineFetchRow.__table__
        items, traces = HotlineItemRow.__table__, HotlineTraceRow.__table__
        routes, notices = HotlineRouteRow.__table__, TakedownNoticeRow.__table__
        outbox = HotlineOutboxRow.__table__
        with self.engine.connect() as connection:
            case = connection.execute(select(cases).where(cases.c.id == case_id)).one_or_none()
            if case is None:
                raise UnknownCase(f"no hotline case {case_id}")
            named = connection.execute(
                select(
                    reports.c.reference,
                    reports.c.source,
                    reports.c.seen_where,
                    reports.c.created_at,
                )
                .join(links, links.c.report_id == reports.c.id)
                .where(links.c.case_id == case_id)
                .order_by(reports.c.id)
            ).all()
            fetched = connection.execute(
                select(fetches).where(fetches.c.case_id == case_id).order_by(fetches.c.id)
            ).all()
            held = connection.execute(
                select(items).where(items.c.case_id == case_id).order_by(items.c.id)
            ).all()
            trace = connection.execute(
                select(traces).where(traces.c.case_id == case_id).order_by(traces.c.id.desc())
            ).first()
            route = connection.execute(
                select(routes).where(routes.c.case_id == case_id).order_by(routes.c.id.desc())
            ).first()
            queued = connection.execute(
                select(notices).where(notices.c.case_id == case_id).order_by(notices.c.id)
            ).all()
            sent = connection.execute(
                select(outbox).where(outbox.c.case_id == case_id).order_by(outbox.c.id)
            ).all()
            first = self._first_analysts(connection, [row.id for row in held])
        return CaseShown(
            case.id, case.url, case.host, case.state, utc(case.created_at),
            utc(case.updated_at), case.attempts, case.last_error,
            tuple(CaseReport(r.reference, r.source, r.seen_where, utc(r.created_at))
                  for r in named),
            tuple(_fetch(row) for row in fetched),
            tuple(_item(row, case.url, first.get(row.id)) for row in held),
            None if trace is None else TraceShown(utc(trace.at), trace.country, trace.hoster,
                                                  bool(trace.cdn), dict(trace.trace)),
            None if route is None else RouteShown(utc(route.at), route.kind, route.target,
                                                  tuple(route.actions), route.reason),
            tuple(NoticeShown(n.id, n.hoster, n.abuse_email, n.abuse_api, bool(n.cdn),
                              tuple(n.urls), n.state, utc(n.created_at)) for n in queued),
            tuple(OutboxShown(o.id, o.kind, o.target, utc(o.created_at), o.attempts,
                              utc(o.next_attempt_at), _maybe_utc(o.delivered_at), o.last_error)
                  for o in sent),
        )  # fmt: skip

    def queue(self, limit: int = 50, analyst: str | None = None) -> list[ItemShown]:
        """Items waiting for an analyst (queued, or pending a second one), oldest first; with
        ``analyst``, only those that analyst may assess (see ``barred``)."""
        items, cases = HotlineItemRow.__table__, HotlineCaseRow.__table__
        chosen = (select(items, cases.c.url.label("case_url"))
                  .join(cases, cases.c.id == items.c.case_id)
                  .where(items.c.state.in_([state.value for state in WAITING])))  # fmt: skip
        if analyst is not None:
            chosen = chosen.where(items.c.id.not_in(_took_part(analyst)))
        with self.engine.connect() as connection:
            rows = connection.execute(
                chosen.order_by(items.c.created_at, items.c.id).limit(limit)
            ).all()
            first = self._first_analysts(connection, [row.id for row in rows])
        return [_item(row, row.case_url, first.get(row.id)) for row in rows]

    def item(self, item_id: int) -> ItemShown:
        """The item ``item_id`` with its assessments. Raises UnknownItem."""
        items, cases = HotlineItemRow.__table__, HotlineCaseRow.__table__
        assessments = HotlineAssessmentRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(
                select(items, cases.c.url.label("case_url"))
                .join(cases, cases.c.id == items.c.case_id)
                .where(items.c.id == item_id)
            ).one_or_none()
            if row is None:
                raise UnknownItem(f"no hotline item {item_id}")
            given = connection.execute(
                select(assessments)
                .where(assessments.c.item_id == item_id)
                .order_by(assessments.c.id)
            ).all()
            first = self._first_analysts(connection, [item_id])
        blind = row.state in WAITING  # the next analyst chooses without seeing others' labels
        shown = tuple(
            AssessmentShown(a.id, a.state, {} if blind else dict(a.labels),
                            {} if blind else dict(a.legality), a.first_by, utc(a.first_at),
                            a.second_by, _maybe_utc(a.second_at), a.list_name)
            for a in given
        )  # fmt: skip
        return _item(row, row.case_url, first.get(item_id), shown)

    def barred(self, item_id: int, analyst: str) -> str:
        """Why ``analyst`` may not assess (nor view) item ``item_id``, or "" when they may: an
        item waits for no analyst once decided; under four eyes the first analyst of a pending
        assessment waits for another, and both analysts of a disagreed one leave the item to
        two others. Raises UnknownItem."""
        items = HotlineItemRow.__table__
        with self.engine.connect() as connection:
            state = connection.execute(
                select(items.c.state).where(items.c.id == item_id)
            ).scalar_one_or_none()
            if state is None:
                raise UnknownItem(f"no hotline item {item_id}")
            if state not in WAITING:
                return f"item {item_id} is {state}: it is not waiting for an analyst"
            took_part = connection.execute(
                _took_part(analyst, AssessmentRow.state).where(
                    AssessmentRow.item_id == item_id)
            ).scalars().all()  # fmt: skip
        if AssessmentState.DISAGREED.value in took_part:
            return (f"item {item_id}: {analyst} took part in an assessment of it that was "
                    "disagreed; two other analysts decide it now")  # fmt: skip
        if took_part:
            return (f"item {item_id}: {analyst} has assessed it already; four eyes need a "
                    "second analyst")  # fmt: skip
        return ""

    def figures(self) -> Figures:
        """The dashboard's figures."""
        items, cases = HotlineItemRow.__table__, HotlineCaseRow.__table__
        routes = HotlineRouteRow.__table__
        with self.engine.connect() as connection:
            reports = connection.execute(select(func.count()).select_from(HotlineReportRow))
            report_count = int(reports.scalar_one())
            by_item = _counts(connection, items.c.state)
            by_case = _counts(connection, cases.c.state)
            by_route = _counts(connection, routes.c.kind)
        auto, assessed = by_item.get(ItemState.AUTO, 0), by_item.get(ItemState.ASSESSED, 0)
        queued, pending = by_item.get(ItemState.QUEUED, 0), by_item.get(ItemState.PENDING, 0)
        triaged = auto + assessed + queued + pending
        return Figures(
            report_count, sum(by_case.values()), sum(by_item.values()), auto, assessed, queued,
            pending, by_item.get(ItemState.FAILED, 0), auto / triaged if triaged else None,
            by_case, by_route,
        )  # fmt: skip

    def record_view(self, item_id: int, analyst: str) -> None:
        """Put ``analyst``'s viewing of item ``item_id`` in the audit log (the desk calls
        this each time an analyst reveals an item). Raises UnknownItem."""
        items = HotlineItemRow.__table__
        with self.engine.begin() as connection:
            case_id = connection.execute(
                select(items.c.case_id).where(items.c.id == item_id)
            ).scalar_one_or_none()
            if case_id is None:
                raise UnknownItem(f"no hotline item {item_id}")
            audit.append(connection, analyst, "hotline.item.viewed", f"item:{item_id}",
                         {"item": item_id, "case": case_id})  # fmt: skip

    def _first_analysts(self, connection: Any, item_ids: list[int]) -> dict[int, str]:
        """For each of ``item_ids`` pending a second analyst, the first one."""
        if not item_ids:
            return {}
        assessments = HotlineAssessmentRow.__table__
        rows = connection.execute(
            select(assessments.c.item_id, assessments.c.first_by)
            .where(
                assessments.c.item_id.in_(item_ids),
                assessments.c.state == AssessmentState.PENDING.value,
            )
            .order_by(assessments.c.id)
        ).all()
        return {row.item_id: row.first_by for row in rows}


AssessmentRow: Final = HotlineAssessmentRow.__table__.c


def _took_part(analyst: str, *columns: Any) -> Any:
    """The items (or ``columns``) of the assessments ``analyst`` took part in that bar them
    from assessing the item again: pending (their labels wait for another analyst) or
    disagreed."""
    return select(*(columns or (AssessmentRow.item_id,))).where(
        AssessmentRow.state.in_([AssessmentState.PENDING.value,
                                 AssessmentState.DISAGREED.value]),
        or_(AssessmentRow.first_by == analyst, AssessmentRow.second_by == analyst),
    )  # fmt: skip


def _counts(connection: Any, column: Any) -> dict[str, int]:
    rows = connection.execute(select(column, func.count()).group_by(column)).all()
    return {str(value): int(count) for value, count in rows}


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def _fetch(row: Any) -> FetchShown:
    return FetchShown(row.id, row.url, row.final_url, utc(row.at), row.status,
                      row.content_type, row.size, row.kind, row.outcome, row.detail,
                      dict(row.hashes), row.quality)  # fmt: skip


def _item(
    row: Any,
    case_url: str,
    first_analyst: str | None,
    assessments: tuple[AssessmentShown, ...] = (),
) -> ItemShown:
    pending = row.state == ItemState.PENDING.value
    blind = row.state in WAITING  # a pending item's labels are the first analyst's
    return ItemShown(row.id, row.case_id, case_url, row.url, row.kind, row.state,
                     signal_hashes(row.hashes), row.quality, {} if blind else dict(row.labels),
                     {} if blind else dict(row.legality),
                     dict(row.triage), row.assessment_id, utc(row.created_at),
                     _maybe_utc(row.decided_at), first_analyst if pending else None,
                     assessments, derived_of(row.hashes),
                     stability_of(row.hashes))  # fmt: skip
