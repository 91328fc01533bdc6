"""The pipeline end to end on loopback, on SQLite and PostgreSQL: real websites (HTTP servers
serving generated images), the real crawl; two pipelines on one database crawl each case once;
items triaged, analysts assess the rest, the case is routed (a notice queued, the police's report
in the outbox); a case with nothing illegal routed with no actions; an unreachable page."""

import ipaddress
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Engine, select

from hashguard.errors import Invalid
from hashguard.hotline import outbox
from hashguard.hotline.assessment import Assessments
from hashguard.hotline.crawl import Crawl, crawl
from hashguard.hotline.intake import Intake
from hashguard.hotline.model import CaseState, ItemState
from hashguard.hotline.partners import check_referral, referral_payload
from hashguard.hotline.pipeline import Pipeline
from hashguard.hotline.referrals import Referrals
from hashguard.hotline.routing import Route
from hashguard.hotline.triage import CurrentMatcher, Triage, Verdict
from hashguard.hotline.vocabulary import default
from hashguard.matching.query import Query
from hashguard.media.budget import DecodeBusy
from hashguard.net.fetch import UrlFetcher
from hashguard.store.lists import ListStore
from hashguard.store.tables import (
    HotlineCaseRow,
    HotlineFetchRow,
    HotlineItemRow,
    HotlineRouteRow,
    TakedownNoticeRow,
)

from support.decoding import servers_decodes
from support.hotline_items import (
    BASELINE,
    NOT_ILLEGAL,
    Tracer,
    case_state,
    events,
    hashes_of,
    new_case,
    queued_item,
)
from support.loopback import Loopback
from support.media import jpeg


def route(trace: Any, legality: Any) -> Route:
    return Route("domestic", trace.hoster.name, ("notice", "police"), "hosted at home")


PAGES = {
    "/page-a": b'<html><img src="/a.jpg"><img src="/b.jpg"></html>',
    "/page-b": b'<html><picture><img src="/c.jpg"></picture></html>',
}
IMAGES = {"/a.jpg": jpeg(51), "/b.jpg": jpeg(52), "/c.jpg": jpeg(51, quality=45)}


def website(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
    if path in PAGES:
        return 200, "text/html", PAGES[path]
    if path in IMAGES:
        return 200, "image/jpeg", IMAGES[path]
    return 404, "text/plain", b"not here"


def crawling(fetcher: UrlFetcher) -> Callable[[str], Crawl]:
    """Crawls through ``fetcher`` within a decode budget as the server's."""
    decodes = servers_decodes()
    return lambda url: crawl(url, fetcher, decodes=decodes)


def pipeline_of(engine: Engine, lists: ListStore, triage: Triage, tracer: Tracer) -> Pipeline:
    fetcher = UrlFetcher((), networks=[ipaddress.ip_network("127.0.0.0/8")], any_host=True)
    return Pipeline(engine, crawl=crawling(fetcher), tracer=tracer, route=route,
                    triage=triage, home="NL", referral_payload=lambda *args: {})  # fmt: skip


def items_of(engine: Engine, case_id: int) -> list[Any]:
    table = HotlineItemRow.__table__
    with engine.connect() as connection:
        return list(connection.execute(
            select(table).where(table.c.case_id == case_id).order_by(table.c.id)))  # fmt: skip


def case_of(engine: Engine, case_id: int) -> Any:
    table = HotlineCaseRow.__table__
    with engine.connect() as connection:
        return connection.execute(select(table).where(table.c.id == case_id)).one()


def test_two_pipelines_crawl_each_case_once_and_route_it_once_assessed(engine: Engine) -> None:
    site = Loopback(website)
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    tracer = Tracer()
    first, second = (pipeline_of(engine, lists, triage, tracer) for _ in range(2))
    try:
        case_a = new_case(engine, site.url + "/page-a")
        case_b = new_case(engine, site.url + "/page-b")
        gone = new_case(engine, site.url + "/gone")
        done: list[int] = []
        runs = [threading.Thread(target=lambda p=p: done.append(p.run_once(10)))
                for p in (first, second)]  # fmt: skip
        for run in runs:
            run.start()
        for run in runs:
            run.join()
        assert sum(done) == 3
        assert sorted(site.fetched) == ["/a.jpg", "/b.jpg", "/c.jpg", "/gone", "/page-a",
                                        "/page-b"]  # each fetched once  # fmt: skip
    finally:
        site.close()
    assert case_state(engine, gone) == "unreachable"
    assert [i.state for i in items_of(engine, case_a)] == ["queued", "queued"]
    assert [i.state for i in items_of(engine, case_b)] == ["queued"]

    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False,
                       assessed=lambda case_id: first.wake())  # fmt: skip
    a_jpg, b_jpg = items_of(engine, case_a)
    done_a = desk.assess(a_jpg.id, BASELINE, "ana")
    # c.jpg is a.jpg re-encoded: decided at once, and page-b with it, nobody viewing it.
    [c_jpg] = items_of(engine, case_b)
    assert done_a.triaged == (c_jpg.id,) and case_state(engine, case_b) == "assessed"
    assert not events(engine, "hotline.item.viewed")
    desk.assess(b_jpg.id, NOT_ILLEGAL, "ana")
    assert case_state(engine, case_a) == "assessed"
    assert first.run_once(10) == 2 and second.run_once(10) == 0
    assert case_state(engine, case_a) == case_state(engine, case_b) == "routed"
    with engine.connect() as connection:
        routes = connection.execute(select(HotlineRouteRow.__table__)).all()
        notices = connection.execute(select(TakedownNoticeRow.__table__)
                                     .order_by(TakedownNoticeRow.id)).all()  # fmt: skip
    assert sorted((r.case_id, r.kind) for r in routes) == [(case_a, "domestic"),
                                                           (case_b, "domestic")]  # fmt: skip
    notice_a = next(n for n in notices if n.case_id == case_a)
    assert notice_a.hoster == "hoster-nl" and notice_a.abuse_email == "abuse@hoster-nl.test"
    assert notice_a.urls == [a_jpg.url, site.url + "/page-a"]  # the illegal item, the page
    assert notice_a.state == "queued" and notice_a.kind == "notice"
    assert [item["url"] for item in notice_a.items] == [a_jpg.url]
    assert notice_a.items[0]["labels"] == BASELINE and "pdq" in notice_a.items[0]["hashes"]
    police = [m for m in outbox.messages(engine) if m.kind == "police"]
    assert sorted(m.case_id for m in police) == [case_a, case_b]
    assert police[0].payload["items"][0]["labels"] == BASELINE
    assert len(events(engine, "hotline.routed")) == 2


def test_a_case_with_nothing_illegal_is_routed_with_no_actions(engine: Engine) -> None:
    site = Loopback(website)
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    pipeline = pipeline_of(engine, lists, triage, Tracer())
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    try:
        case = new_case(engine, site.url + "/page-b")
        assert pipeline.run_once() == 1
        [item] = items_of(engine, case)
        desk.assess(item.id, NOT_ILLEGAL, "ana")
        assert pipeline.run_once() == 1
    finally:
        site.close()
    with engine.connect() as connection:
        [routed] = connection.execute(select(HotlineRouteRow.__table__)).all()
    assert routed.kind == "none" and routed.actions == []
    assert case_state(engine, case) == "routed" and outbox.messages(engine) == []


def test_the_workers_take_a_reported_case_when_woken_and_stop(engine: Engine) -> None:
    site = Loopback(website)
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    tracer = Tracer()
    pipeline = pipeline_of(engine, lists, triage, tracer)
    crawling = threading.Event()
    crawler = pipeline.crawl

    def watched(url: str) -> Any:
        crawling.set()
        return crawler(url)

    pipeline.crawl = watched
    pipeline.poll = 600.0  # only a wake-up makes the workers look in time
    pipeline.start()
    try:
        case = new_case(engine, site.url + "/page-b")
        pipeline.wake()
        assert crawling.wait(60)
    finally:
        pipeline.stop(timeout=60)  # each worker ends after the case in its hands
        site.close()
    assert case_state(engine, case) == "triaged"
    assert tracer.traced == [site.url + "/page-b"]


def test_a_reported_url_that_is_an_image_is_one_fetch_and_one_item(engine: Engine) -> None:
    site = Loopback(website)
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    try:
        case = new_case(engine, site.url + "/a.jpg")
        assert pipeline_of(engine, lists, triage, Tracer()).run_once(1) == 1
    finally:
        site.close()
    [item] = items_of(engine, case)
    table = HotlineFetchRow.__table__
    with engine.connect() as connection:
        fetches = connection.execute(select(table).where(table.c.case_id == case)).all()
    assert [(f.id, f.kind, f.outcome) for f in fetches] == [(item.fetch_id, "image", "ok")]
    assert item.kind == "image" and item.state == "queued" and "pdq" in item.hashes


class Clock:
    """The pipeline's clock, moved on by the test (leases and retries without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def triage_of(lists: ListStore) -> Triage:
    return Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))


def test_an_accented_media_url_is_escaped_and_its_case_referred(engine: Engine) -> None:
    """An item URL with spaces and accents (urljoin never escapes them) is sent as a browser
    sends it: the partner's referral is made (it raised, and stopped every instance's crawl)."""
    site = Loopback(lambda path, headers, body: (
        (200, "text/html; charset=utf-8", '<img src="/foto été 1.jpg">'.encode()) if path == "/page"
        else (200, "image/jpeg", IMAGES["/a.jpg"])))  # fmt: skip
    lists = ListStore(engine)
    triage = triage_of(lists)
    fetcher = UrlFetcher((), networks=[ipaddress.ip_network("127.0.0.0/8")], any_host=True)

    def to_partner(trace: Any, legality: Any) -> Route:
        return Route("partner", "de-hotline", ("referral",), "hosted in DE, a partner's")

    payload = partial(referral_payload, hotline="nl", country="NL")
    pipeline = Pipeline(engine, crawl=crawling(fetcher), tracer=Tracer(),
                        route=to_partner, triage=triage, home="NL",
                        referral_payload=payload)  # fmt: skip
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    try:
        case = new_case(engine, site.url + "/page")
        assert pipeline.run_once() == 1
        assert site.fetched == ["/page", "/foto%20%C3%A9t%C3%A9%201.jpg"]
        [item] = items_of(engine, case)
        desk.assess(item.id, BASELINE, "ana")
        assert pipeline.run_once() == 1
    finally:
        site.close()
    assert case_state(engine, case) == "routed"
    [referral] = outbox.messages(engine)
    assert referral.payload["items"][0]["url"] == site.url + "/foto%20%C3%A9t%C3%A9%201.jpg"


def test_a_case_that_cannot_be_routed_waits_while_the_others_go_on(engine: Engine) -> None:
    site = Loopback(website)
    lists = ListStore(engine)
    triage = triage_of(lists)
    clock = Clock()
    tried: list[str] = []
    broken = [True]

    def routes(trace: Any, legality: Any) -> Route:
        tried.append(trace.url)
        if broken[0]:
            raise Invalid("the routing rules have no row for IE")
        return route(trace, legality)

    fetcher = UrlFetcher((), networks=[ipaddress.ip_network("127.0.0.0/8")], any_host=True)
    pipeline = Pipeline(engine, crawl=crawling(fetcher), tracer=Tracer(),
                        route=routes, triage=triage, home="NL",
                        referral_payload=lambda *args: {}, clock=clock)  # fmt: skip
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    try:
        stuck = new_case(engine, site.url + "/page-b")
        assert pipeline.run_once() == 1
        [item] = items_of(engine, stuck)
        desk.assess(item.id, BASELINE, "ana")  # assessed: routing it fails
        reported = new_case(engine, site.url + "/page-a")
        assert pipeline.run_once() == 2  # the failing case tried, the new one crawled all the same
        assert case_state(engine, reported) == "triaged"
        assert (case_state(engine, stuck), tried) == ("assessed", [site.url + "/page-b"])
        assert "the routing rules have no row for IE" in case_of(engine, stuck).last_error
        assert pipeline.run_once() == 0  # not tried again at once: the workers wait, no spin
        assert len(tried) == 1
        clock.advance(6)
        broken[0] = False
        assert pipeline.run_once() == 1
    finally:
        site.close()
    assert case_state(engine, stuck) == "routed" and case_of(engine, stuck).last_error == ""


def test_a_crawl_that_never_finishes_is_given_up_with_its_error(engine: Engine) -> None:
    lists = ListStore(engine)
    clock = Clock()

    def crashing(url: str) -> Any:
        raise RuntimeError("the crawler broke on this page")

    pipeline = Pipeline(engine, crawl=crashing, tracer=Tracer(), route=route,
                        triage=triage_of(lists), home="NL", referral_payload=lambda *args: {},
                        clock=clock, attempts=2)  # fmt: skip
    case = new_case(engine, "https://site.test/page")
    for _ in range(2):
        assert pipeline.run_once() == 1 and case_state(engine, case) == "crawling"
        assert pipeline.run_once() == 0  # under its lease
        clock.advance(6)  # the lease ran out
    assert pipeline.run_once() == 0
    assert case_state(engine, case) == "unreachable"
    assert case_of(engine, case).last_error == (
        "given up after 2 crawls that did not finish; the last: the crawl failed: the crawler "
        "broke on this page")  # fmt: skip


def test_a_crawl_the_busy_server_could_not_decode_is_not_one_of_the_cases_attempts(
    engine: Engine,
) -> None:
    """The decode budget stayed full: the server was busy, not the page. The case is crawled
    again after its lease, however often that happens, and never given up for it."""
    lists = ListStore(engine)
    clock = Clock()
    busy = [True]

    def crawling_when_free(url: str) -> Any:
        if busy[0]:
            raise DecodeBusy("the server is decoding as much as it may; try again in 5 s", 5)
        raise RuntimeError("the crawler broke on this page")

    pipeline = Pipeline(engine, crawl=crawling_when_free, tracer=Tracer(), route=route,
                        triage=triage_of(lists), home="NL", referral_payload=lambda *args: {},
                        clock=clock, attempts=2)  # fmt: skip
    case = new_case(engine, "https://site.test/page")
    for _ in range(4):  # twice the attempts the case is given
        assert pipeline.run_once() == 1 and case_state(engine, case) == "crawling"
        assert case_of(engine, case).last_error.startswith("not crawled now: the server is")
        clock.advance(6)  # the lease ran out
    busy[0] = False  # free again: the case still has both its attempts
    for _ in range(2):
        assert pipeline.run_once() == 1 and case_state(engine, case) == "crawling"
        clock.advance(6)
    assert pipeline.run_once() == 0 and case_state(engine, case) == "unreachable"


def test_a_closed_case_reported_again_is_crawled_again(engine: Engine) -> None:
    """Reported while it failed (by its owner, say), the URL is not closed for good."""
    live = [False]
    site = Loopback(lambda path, headers, body: website(path, headers, body) if live[0]
                    else (404, "text/plain", b"not yet"))  # fmt: skip
    lists = ListStore(engine)
    pipeline = pipeline_of(engine, lists, triage_of(lists), Tracer())
    intake = Intake(engine, reports_per_hour=100, retain=timedelta(days=30),
                    networks=[ipaddress.ip_network("127.0.0.0/8")])  # fmt: skip
    try:
        [case] = intake.report([site.url + "/page-a"], "my own site").cases
        assert pipeline.run_once() == 1 and case_state(engine, case) == "unreachable"
        live[0] = True
        assert intake.report([site.url + "/page-a"], "a forum").cases == (case,)
        assert case_state(engine, case) == "new"
        assert pipeline.run_once() == 1
    finally:
        site.close()
    assert case_state(engine, case) == "triaged"
    assert [i.state for i in items_of(engine, case)] == ["queued", "queued"]


def referral_of(url: str, item_url: str, image: bytes, referral: str) -> Any:
    """A partner's referral of the page ``url`` with one image, checked as received."""
    return check_referral({
        "version": 1, "referral": referral * 16,
        "from": {"hotline": "DE hotline", "country": "DE", "reference": "case-9"}, "url": url,
        "items": [{"url": item_url, "hashes": hashes_of(image), "labels": BASELINE,
                   "legality": {"DE": "illegal"}, "assessment": "assessment:1"}],
        "trace": {"at": "2026-12-01T10:00:00Z", "country": "NL"}, "reason": "hosted in NL",
    })  # fmt: skip


def test_a_referral_of_a_routed_case_routes_its_new_items(engine: Engine) -> None:
    """Routed with nothing illegal, then a partner refers an image on the same page: assessed
    illegal here, the case is routed again, for that item only."""
    site = Loopback(website)
    lists = ListStore(engine)
    triage = triage_of(lists)
    pipeline = pipeline_of(engine, lists, triage, Tracer())
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    referrals = Referrals(engine, triage, retain=timedelta(days=30),
                          networks=[ipaddress.ip_network("127.0.0.0/8")])  # fmt: skip
    url = site.url + "/page-b"
    try:
        case = new_case(engine, url)
        assert pipeline.run_once() == 1
        [first] = items_of(engine, case)
        desk.assess(first.id, NOT_ILLEGAL, "ana")
        assert pipeline.run_once() == 1 and case_state(engine, case) == "routed"
        referred = site.url + "/referred.jpg"
        referrals.receive("de-hotline", referral_of(url, referred, jpeg(61), "ab"))
        assert case_state(engine, case) == "triaged"
        new = items_of(engine, case)[-1]
        desk.assess(new.id, BASELINE, "ana")
        assert case_state(engine, case) == "assessed"
        assert pipeline.run_once() == 1
    finally:
        site.close()
    assert case_state(engine, case) == "routed"
    with engine.connect() as connection:
        routes = connection.execute(select(HotlineRouteRow.kind).order_by(HotlineRouteRow.id))
        [notice] = connection.execute(select(TakedownNoticeRow.__table__)).all()
        assert [r.kind for r in routes] == ["none", "domestic"]
    assert notice.urls == [referred, url]
    [police] = outbox.messages(engine)
    assert [i["url"] for i in police.payload["items"]] == [referred]


class Racing(Triage):
    """Triage with an analyst's assessment landing between matching and recording."""

    meanwhile: list[Callable[[], Any]]

    def decide_all(self, queries: Sequence[Query]) -> list[Verdict]:
        found = super().decide_all(queries)
        while self.meanwhile:
            self.meanwhile.pop()()
        return found


def test_an_item_assessed_while_its_case_was_crawled_is_not_queued(engine: Engine) -> None:
    """The analyst's final assessment re-triages the queue before the crawl's items are in it:
    they are triaged again once written, so nobody is shown the same image twice."""
    site = Loopback(website)
    lists = ListStore(engine)
    triage = Racing(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    triage.meanwhile = []
    pipeline = pipeline_of(engine, lists, triage, Tracer())
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    referrals = Referrals(engine, triage, retain=timedelta(days=30))
    earlier = new_case(engine, "https://elsewhere.test/page", CaseState.TRIAGED)
    same = queued_item(engine, earlier, "https://elsewhere.test/c.jpg", hashes_of(IMAGES["/c.jpg"]))
    other = queued_item(engine, earlier, "https://elsewhere.test/x.jpg", hashes_of(jpeg(62)))
    try:
        case = new_case(engine, site.url + "/page-b")
        triage.meanwhile.append(lambda: desk.assess(same, BASELINE, "ana"))
        assert pipeline.run_once() == 1
    finally:
        site.close()
    [item] = items_of(engine, case)
    assert item.state == "auto" and item.labels == BASELINE
    assert case_state(engine, case) == "routed"  # decided at once: routed at once
    # A partner's referral of the same image: likewise.
    triage.meanwhile.append(lambda: desk.assess(other, BASELINE, "ana"))
    received = referrals.receive("de-hotline", referral_of(
        "https://site-nl.test/page", "https://site-nl.test/x.jpg", jpeg(62), "cd"))  # fmt: skip
    assert received.states == (ItemState.AUTO,)
