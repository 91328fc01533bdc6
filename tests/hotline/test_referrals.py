"""Referrals received from a partner hotline, on SQLite and PostgreSQL: one report per referral
however often it is sent, a case for its URL, items by their hashes (nothing crawled), triaged at
once: what this hotline assessed before is decided without anyone viewing it."""

from datetime import timedelta

from sqlalchemy import Engine, func, select

from hashguard.hotline.assessment import Assessments
from hashguard.hotline.model import ItemState
from hashguard.hotline.partners import check_referral, referral_payload
from hashguard.hotline.referrals import Referrals
from hashguard.hotline.routing import Route
from hashguard.hotline.triage import CurrentMatcher, Triage
from hashguard.hotline.vocabulary import default
from hashguard.store.lists import ListStore
from hashguard.store.tables import HotlineFetchRow, HotlineItemRow, HotlineReportRow

from support.hotline_items import BASELINE, case_state, events, hashes_of, new_case, queued_item
from support.media import jpeg


class SenderTrace:
    """The partner's trace as it sends it (hotline.trace's Trace.as_json)."""

    def as_json(self) -> dict[str, object]:
        return {"url": "https://site-de.test/page", "host": "site-de.test",
                "at": "2026-12-01T10:00:00Z", "country": "NL", "cdn": False,
                "hoster": {"name": "hoster-nl"}, "dns": {}, "addresses": [], "databases": [],
                "unresolved": []}  # fmt: skip


def test_a_referral_received_twice_is_one_report_and_known_images_are_auto(
    engine: Engine,
) -> None:
    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    desk = Assessments(engine, lists, triage, default(), home="NL", four_eyes=False)
    known = jpeg(41)
    earlier = new_case(engine, "https://elsewhere.test/page")
    desk.assess(queued_item(engine, earlier, "https://elsewhere.test/a.jpg", hashes_of(known)),
                BASELINE, "ana")  # fmt: skip
    items = [
        {"url": "https://site-de.test/1.jpg", "hashes": hashes_of(jpeg(41, quality=50)),
         "labels": BASELINE, "legality": {"DE": "illegal"}, "assessment": "assessment:9"},
        {"url": "https://site-de.test/2.jpg", "hashes": hashes_of(jpeg(42)),
         "labels": BASELINE, "legality": {"DE": "illegal"}, "assessment": "assessment:10"},
    ]  # fmt: skip
    route = Route("partner", "meldpunt-nl", ("referral",), "hosted in NL, where a partner works")
    payload = referral_payload("https://site-de.test/page", items, SenderTrace(), route,
                               "case-3", hotline="hotline-de", country="DE")  # fmt: skip
    referrals = Referrals(engine, triage, retain=timedelta(days=365))
    first = referrals.receive("hotline-de", check_referral(payload))
    again = referrals.receive("hotline-de", check_referral(payload))
    assert (first.new, first.states) == (True, (ItemState.AUTO, ItemState.QUEUED))
    assert (again.reference, again.new, again.states) == (first.reference, False, first.states)
    reference = first.reference

    reports, cases = HotlineReportRow.__table__, HotlineItemRow.__table__
    with engine.connect() as connection:
        [report] = connection.execute(select(reports).where(reports.c.reference == reference))
        received = connection.execute(
            select(cases).where(cases.c.url.like("https://site-de.test/%")).order_by(cases.c.id)
        ).all()
        referred = HotlineFetchRow.outcome == "referred"
        fetches = connection.execute(
            select(func.count()).select_from(HotlineFetchRow).where(referred)
        ).scalar_one()
    assert report.source == "partner:hotline-de" and report.partner_reference == payload["referral"]
    assert report.contact is None
    assert [item.state for item in received] == ["auto", "queued"]  # nothing doubled
    assert received[0].labels == BASELINE and received[0].triage["list"] == "hotline-illegal"
    assert received[1].labels == {}  # the partner's labels are not this hotline's assessment
    assert fetches == 2
    case_id = received[0].case_id
    assert case_state(engine, case_id) == "triaged"  # not crawled; one item for the analysts
    assert not events(engine, "hotline.item.viewed")


def test_a_trace_time_of_no_moment_in_utc_is_taken_as_received(engine: Engine) -> None:
    """The sender's trace time with a zone that takes it past year 1 (or 9999) in UTC: the
    trace is kept as received now, its page readable."""
    from datetime import UTC, datetime

    from hashguard.hotline.cases import Cases
    from hashguard.store.tables import HotlineTraceRow

    lists = ListStore(engine)
    triage = Triage(lists, CurrentMatcher(lists, ("hotline-illegal", "hotline-not-illegal")))
    items = [{"url": "https://site-de.test/1.jpg", "hashes": hashes_of(jpeg(43)),
              "labels": BASELINE, "legality": {"DE": "illegal"}, "assessment": "a:1"}]  # fmt: skip
    route = Route("partner", "meldpunt-nl", ("referral",), "hosted in NL, where a partner works")
    payload = referral_payload("https://site-de.test/page", items, SenderTrace(), route,
                               "case-4", hotline="hotline-de", country="DE")  # fmt: skip
    payload["trace"]["at"] = "0001-01-01T00:00:00+14:00"
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    referrals = Referrals(engine, triage, retain=timedelta(days=365), clock=lambda: now)
    received = referrals.receive("hotline-de", check_referral(payload))
    with engine.connect() as connection:
        [(case_id, at)] = connection.execute(select(HotlineTraceRow.case_id, HotlineTraceRow.at))
    assert at.replace(tzinfo=UTC) == now
    shown = Cases(engine).case(case_id)
    assert shown.trace is not None and shown.trace.at == now and received.new
