"""The pipeline end to end on loopback, on SQLite and PostgreSQL: real websites (HTTP servers
serving generated images), the real crawl; two pipelines on one database crawl each case once;
items triaged, analysts assess the rest, the case is routed (a notice queued, the police's report
in the outbox); a case with nothing illegal routed with no actions; an unreachable page."""

import ipaddress
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from hashguard.hotline import outbox
from hashguard.hotline.assessment import Assessments
from hashguard.hotline.crawl import crawl
from hashguard.hotline.pipeline import Pipeline
from hashguard.hotline.routing import Route
from hashguard.hotline.triage import CurrentMatcher, Triage
from hashguard.hotline.vocabulary import default
from hashguard.net.fetch import UrlFetcher
from hashguard.store.lists import ListStore
from hashguard.store.tables import (
    HotlineFetchRow,
    HotlineItemRow,
    HotlineNoticeRow,
    HotlineRouteRow,
)

from support.hotline_items import BASELINE, NOT_ILLEGAL, case_state, events, new_case
from support.loopback import Loopback
from support.media import jpeg


@dataclass(frozen=True)
class Hoster:
    name: str = "hoster-nl"
    abuse_email: str | None = "abuse@hoster-nl.test"
    abuse_api: str | None = None


@dataclass(frozen=True)
class Trace:
    """Stands in for hotline.trace's Trace (tested there, with a DNS server)."""

    url: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    hoster: Hoster | None = Hoster()
    country: str | None = "NL"
    cdn: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "country": self.country, "hoster": {"name": "hoster-nl"},
                "cdn": self.cdn, "at": self.at.isoformat()}  # fmt: skip


class Tracer:
    def __init__(self) -> None:
        self.traced: list[str] = []

    def trace(self, url: str) -> Trace:
        self.traced.append(url)
        return Trace(url)


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


def pipeline_of(engine: Engine, lists: ListStore, triage: Triage, tracer: Tracer) -> Pipeline:
    fetcher = UrlFetcher((), networks=[ipaddress.ip_network("127.0.0.0/8")], any_host=True)
    return Pipeline(engine, crawl=lambda url: crawl(url, fetcher), tracer=tracer, route=route,
                    triage=triage, home="NL", referral_payload=lambda *args: {})  # fmt: skip


def items_of(engine: Engine, case_id: int) -> list[Any]:
    table = HotlineItemRow.__table__
    with engine.connect() as connection:
        return list(connection.execute(
            select(table).where(table.c.case_id == case_id).order_by(table.c.id)))  # fmt: skip


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
        notices = connection.execute(select(HotlineNoticeRow.__table__)
                                     .order_by(HotlineNoticeRow.id)).all()  # fmt: skip
    assert sorted((r.case_id, r.kind) for r in routes) == [(case_a, "domestic"),
                                                           (case_b, "domestic")]  # fmt: skip
    notice_a = next(n for n in notices if n.case_id == case_a)
    assert notice_a.hoster == "hoster-nl" and notice_a.abuse_email == "abuse@hoster-nl.test"
    assert notice_a.urls == [a_jpg.url, site.url + "/page-a"]  # the illegal item, the page
    assert notice_a.state == "queued"
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
