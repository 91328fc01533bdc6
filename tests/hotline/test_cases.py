"""What the hotline's desk reads, on SQLite and PostgreSQL, over a small hand-made set: reports,
a case with all that is known of it, the analysts' queue (oldest first, the first analyst of a
four-eyes item), an item with its assessments, the dashboard's figures (the share triaged
without anyone viewing it) and the audited viewing of an item."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from hashguard.errors import NotFound
from hashguard.hotline.cases import Cases, UnknownCase, UnknownItem
from hashguard.hotline.intake import Intake
from hashguard.hotline.model import AssessmentState, CaseState, ItemState
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineAssessmentRow,
    HotlineCaseRow,
    HotlineFetchRow,
    HotlineItemRow,
    HotlineOutboxRow,
    HotlineRouteRow,
    HotlineTraceRow,
    TakedownNoticeRow,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAGE = "https://site-a.example/gallery"
LABELS = {"iccam": "baseline", "age": "prepubescent"}
LEGALITY = {"NL": "illegal", "GB": "illegal"}


def add(engine: Engine, table: type, **values: Any) -> int:
    with engine.begin() as connection:
        return int(connection.execute(insert(table).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def add_item(engine: Engine, case_id: int, n: int, state: ItemState, **values: Any) -> int:
    fields: dict[str, Any] = {
        "case_id": case_id, "fetch_id": None, "url": f"https://cdn.example/{n}.jpg",
        "kind": "image", "hashes": {"md5": f"{n:032x}"}, "quality": 90, "state": state.value,
        "assessment_id": None, "labels": {}, "legality": {}, "triage": {},
        "created_at": T0 + timedelta(minutes=n), "decided_at": None,
    }  # fmt: skip
    fields.update(values)
    return add(engine, HotlineItemRow, **fields)


class Desk:
    """Two reports, three cases; case A crawled, traced, routed, with items in every state."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        intake = Intake(engine, reports_per_hour=10, retain=timedelta(days=30), clock=lambda: T0)
        self.first = intake.report([PAGE, "https://site-b.example/"], "a forum",
                                   contact="reporter@example.org")  # fmt: skip
        self.second = intake.report([PAGE, "https://site-c.example/"], "a chat app")
        self.a, self.b = self.first.cases
        self.c = self.second.cases[1]
        with engine.begin() as connection:
            for case_id, state in ((self.a, CaseState.ROUTED), (self.b, CaseState.UNREACHABLE)):
                row = HotlineCaseRow.__table__.update().where(HotlineCaseRow.id == case_id)
                connection.execute(row.values(state=state))
        self.page_fetch = add(
            engine, HotlineFetchRow, case_id=self.a, url=PAGE, final_url=PAGE + "/", at=T0,
            status=200, content_type="text/html", size=5120, kind="page", outcome="ok",
            detail="the page was fetched", hashes={}, quality=None,
        )  # fmt: skip
        triaged = {"labels": LABELS, "legality": LEGALITY, "triage": {"assessment": 1}}
        self.auto = [add_item(engine, self.a, n, ItemState.AUTO, **triaged) for n in (1, 2, 3)]
        self.assessed = add_item(engine, self.a, 4, ItemState.ASSESSED, labels=LABELS,
                                 legality=LEGALITY, decided_at=T0)  # fmt: skip
        self.pending = add_item(
            engine, self.a, 5, ItemState.PENDING, labels=LABELS, legality=LEGALITY
        )  # as the first analyst left it (four eyes)
        self.queued = add_item(engine, self.a, 6, ItemState.QUEUED, kind="video")
        self.failed = add_item(engine, self.a, 7, ItemState.FAILED)
        self.older = add_item(engine, self.c, 0, ItemState.QUEUED)  # oldest of the queue
        add(engine, HotlineAssessmentRow, item_id=self.pending, labels=LABELS, legality=LEGALITY,
            state=AssessmentState.PENDING.value, first_by="analyst-1", first_at=T0,
            second_by=None, second_at=None, list_name=None)  # fmt: skip
        for at, country in ((T0, "DE"), (T0 + timedelta(hours=1), "NL")):
            add(engine, HotlineTraceRow, case_id=self.a, at=at, country=country,
                hoster="hoster-a", cdn=False, trace={"host": "site-a.example"})  # fmt: skip
        add(engine, HotlineRouteRow, case_id=self.a, at=T0, kind="none", target="",
            actions=[], reason="not yet assessed")  # fmt: skip
        add(engine, HotlineRouteRow, case_id=self.a, at=T0 + timedelta(hours=1),
            kind="domestic", target="hoster-a", actions=["notice", "police"],
            reason="hosted in NL, the hotline's country")  # fmt: skip
        add(engine, HotlineRouteRow, case_id=self.b, at=T0, kind="international",
            target="icse", actions=["international"], reason="hosted nowhere covered")  # fmt: skip
        add(engine, TakedownNoticeRow, case_id=self.a, kind="notice", hoster="hoster-a",
            abuse_email="abuse@hoster-a.example", abuse_api=None, cdn=False, urls=[PAGE],
            items=[], legal_basis="", reference=f"case-{self.a}", issued_by="hotline",
            state="queued", report_id="0b7d1a52-94b5-4c55-9d09-3c8a7f0e6a11", document="",
            reported_at=T0, created_at=T0, dispute_reason="", outcome="", outcome_reason="",
            renotices=0, escalations=0, rechecks=0, last_error="")  # fmt: skip
        add(engine, HotlineOutboxRow, case_id=self.a, kind="police", target="police-nl",
            payload=json.dumps({"url": PAGE}), idempotency_key="k1", created_at=T0, attempts=0,
            next_attempt_at=T0, delivered_at=None, last_error="")  # fmt: skip


@pytest.fixture
def desk(engine: Engine) -> Desk:
    return Desk(engine)


def test_reports_are_listed_newest_first_with_their_cases_and_no_contact(desk: Desk) -> None:
    shown = Cases(desk.engine).reports()
    assert [r.reference for r in shown] == [desk.second.reference, desk.first.reference]
    assert shown[1].cases == tuple(sorted((desk.a, desk.b))) and shown[1].has_contact
    assert shown[0].cases == tuple(sorted((desk.a, desk.c))) and not shown[0].has_contact
    assert "reporter@example.org" not in repr(shown)
    assert [r.reference for r in Cases(desk.engine).reports(limit=1, offset=1)] == [
        desk.first.reference]  # fmt: skip


def test_a_case_shows_its_reports_fetches_items_latest_trace_and_route_notices_outbox(
    desk: Desk,
) -> None:
    case = Cases(desk.engine).case(desk.a)
    assert (case.url, case.host, case.state) == (PAGE, "site-a.example", CaseState.ROUTED)
    assert [(r.reference, r.seen_where) for r in case.reports] == [
        (desk.first.reference, "a forum"), (desk.second.reference, "a chat app")]  # fmt: skip
    [fetch] = case.fetches
    assert (fetch.final_url, fetch.status, fetch.size, fetch.outcome) == (PAGE + "/", 200, 5120,
                                                                           "ok")  # fmt: skip
    assert fetch.at == T0
    assert [i.state for i in case.items] == ["auto"] * 3 + ["assessed", "pending", "queued",
                                                            "failed"]  # fmt: skip
    auto = case.items[0]
    assert (auto.labels, auto.legality, auto.triage) == (LABELS, LEGALITY, {"assessment": 1})
    assert auto.case_url == PAGE and auto.hashes == {"md5": f"{1:032x}"}
    assert case.items[4].first_analyst == "analyst-1"
    assert case.trace is not None and (case.trace.country, case.trace.at) == (
        "NL", T0 + timedelta(hours=1))  # fmt: skip
    assert case.route is not None and (case.route.kind, case.route.actions) == (
        "domestic", ("notice", "police"))  # fmt: skip
    [notice] = case.notices
    assert (notice.hoster, notice.urls, notice.state) == ("hoster-a", (PAGE,), "queued")
    [sent] = case.outbox
    assert (sent.kind, sent.target, sent.delivered_at) == ("police", "police-nl", None)
    bare = Cases(desk.engine).case(desk.c)
    assert (bare.state, bare.fetches, bare.trace, bare.route) == ("new", (), None, None)


def test_an_unknown_case_or_item_is_not_found(desk: Desk) -> None:
    cases = Cases(desk.engine)
    with pytest.raises(UnknownCase, match="no hotline case 999"):
        cases.case(999)
    for call in (cases.item, lambda i: cases.record_view(i, "analyst-1")):
        with pytest.raises(UnknownItem, match="no hotline item 999") as unknown:
            call(999)
        assert isinstance(unknown.value, NotFound)


def test_the_queue_holds_queued_and_pending_items_oldest_first(desk: Desk) -> None:
    queue = Cases(desk.engine).queue()
    assert [(i.id, i.state) for i in queue] == [
        (desk.older, "queued"), (desk.pending, "pending"), (desk.queued, "queued")]  # fmt: skip
    assert [i.case_url for i in queue] == ["https://site-c.example/", PAGE, PAGE]
    assert [i.first_analyst for i in queue] == [None, "analyst-1", None]
    assert queue[2].kind == "video"
    assert [i.id for i in Cases(desk.engine).queue(limit=1)] == [desk.older]


def test_an_item_shows_its_assessments_but_not_the_labels_of_one_pending(desk: Desk) -> None:
    item = Cases(desk.engine).item(desk.pending)
    assert (item.state, item.first_analyst, item.case_url) == ("pending", "analyst-1", PAGE)
    assert item.labels == {} and item.legality == {}  # the second analyst chooses unbiased
    [assessment] = item.assessments
    assert (assessment.state, assessment.first_by, assessment.labels, assessment.legality) == (
        "pending", "analyst-1", {}, {})  # fmt: skip
    assert assessment.first_at == T0 and assessment.second_by is None
    [waiting] = [i for i in Cases(desk.engine).queue() if i.id == desk.pending]
    assert waiting.labels == {} and waiting.legality == {}


def test_the_figures_count_what_arrived_and_the_share_triaged_automatically(
    desk: Desk,
) -> None:
    figures = Cases(desk.engine).figures()
    assert (figures.reports, figures.cases, figures.items) == (2, 3, 8)
    assert (figures.auto, figures.assessed, figures.queued, figures.pending, figures.failed) == (
        3, 1, 2, 1, 1)  # fmt: skip
    assert figures.auto_share == pytest.approx(3 / 7)  # failed items are no one's work
    assert figures.cases_by_state == {"routed": 1, "unreachable": 1, "new": 1}
    assert figures.routes_by_kind == {"none": 1, "domestic": 1, "international": 1}


def test_with_nothing_triaged_the_share_is_none(engine: Engine) -> None:
    figures = Cases(engine).figures()
    assert (figures.reports, figures.items, figures.auto_share) == (0, 0, None)
    assert figures.cases_by_state == {} and figures.routes_by_kind == {}


def test_every_viewing_of_an_item_is_audited(desk: Desk) -> None:
    cases = Cases(desk.engine)
    cases.record_view(desk.queued, "analyst-1")
    cases.record_view(desk.queued, "analyst-2")
    viewed = audit.events(desk.engine, limit=100, action="hotline.item.viewed")
    subject = f"item:{desk.queued}"
    assert [(e.actor, e.subject) for e in viewed] == [
        ("analyst-1", subject),
        ("analyst-2", subject),
    ]
    assert json.loads(viewed[0].details) == {"item": desk.queued, "case": desk.a}
