"""The takedown scheduler, the clock moved by the test: a hoster's website on a loopback address
serves (or stops serving) a generated image, a real SMTP server on loopback receives the notices;
each pass composes, checks (early, after a claim, at the deadline), verifies, re-notices,
escalates, reminds and re-checks as the rules say, and two schedulers on one database do each
notice's work once."""

import ipaddress
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select

from hashguard.hotline import outbox
from hashguard.hotline.crawl import Crawl, CrawlLimits, crawl
from hashguard.hotline.hosters import Hoster, HosterRegistry
from hashguard.hotline.model import OutboxKind
from hashguard.hotline.partners import Partner
from hashguard.net.fetch import UrlFetcher
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineReportRow,
    TakedownCheckRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
    utc,
)
from hashguard.takedown import signing
from hashguard.takedown.delivery import Deliveries, SmtpSettings
from hashguard.takedown.model import EscalationStep, NoticeState, Timing
from hashguard.takedown.notice import Sender
from hashguard.takedown.notices import Notices
from hashguard.takedown.scheduler import Scheduler, partner_status
from hashguard.transparency import keys

from support.decoding import servers_decodes
from support.hotline_items import hashes_of
from support.media import jpeg
from support.smtp import Mailbox, smtp_server
from support.waiting import eventually
from support.website import Page, Website, resolving

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ADDRESS = "127.0.0.7"
PICTURE = jpeg(3, 320, 240)
LADDER = (
    EscalationStep("upstream", timedelta(hours=48), "upstream"),
    EscalationStep("registrar", timedelta(hours=48), "abuse@registrar.example"),
    EscalationStep("regulator", timedelta(hours=72), "https://regulator.example/api/notices"),
)
TIMING = Timing(ladder=LADDER)
FILES = Hoster("Files BV", "NL", (), (ipaddress.ip_network("127.0.0.7/32"),),
               "abuse@files.example", "https://files.example/api/abuse", False,
               upstream="Transit")  # fmt: skip
TRANSIT = Hoster("Transit", "NL", (64520,), (), "abuse@transit.example", None, False)
LONELY = Hoster("Lonely", "NL", (64530,), (), "abuse@lonely.example", None, False)
REGISTRY = HosterRegistry([FILES, TRANSIT, LONELY])
SENDER = Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


class World:
    """A hoster's website, the hotline's crawl of it, notices and a scheduler on ``engine``."""

    def __init__(self, engine: Engine, mailbox: Mailbox, timing: Timing = TIMING) -> None:
        self.engine = engine
        self.mailbox = mailbox
        self.clock = Clock()
        self.pages: dict[str, Page] = {}
        self.site = Website(self.pages, ADDRESS)
        self.names = {"files.test": ADDRESS}
        self.fetcher = UrlFetcher((), [ipaddress.ip_network("127.0.0.0/8")],
                                  resolve=resolving(self.names), any_host=True,
                                  cross_host_redirects=True)  # fmt: skip
        self.key = Ed25519PrivateKey.generate()
        self.timing = timing
        # the abuse desks' mail on loopback; their APIs (files.example) are never reached
        self.deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port),
                                     clock=self.clock, timeout=2.0)  # fmt: skip
        self.notices = Notices(engine, timing, REGISTRY, SENDER, self.key, self.deliveries,
                               clock=self.clock)  # fmt: skip
        self.scheduler = self.new_scheduler()
        self.page = f"http://files.test:{self.site.port}/gallery"
        self.image = f"http://files.test:{self.site.port}/p/1.jpg"
        self.serve()

    def new_scheduler(self, **options: Any) -> Scheduler:
        return Scheduler(self.engine, self.notices, self.deliveries, self.crawl, self.timing,
                         REGISTRY, clock=self.clock, **options)  # fmt: skip

    def crawl(self, url: str) -> Crawl:
        return crawl(
            url, self.fetcher, CrawlLimits(timeout=5.0), clock=self.clock, decodes=servers_decodes()
        )

    def serve(self, image: bytes | None = PICTURE, page: bool = True) -> None:
        self.pages.clear()
        if page:
            body = b'<!doctype html><html><body><img src="/p/1.jpg"></body></html>'
            self.pages["/gallery"] = Page(body)
        if image is not None:
            self.pages["/p/1.jpg"] = Page(image, "image/jpeg")

    def queue(self, hoster: Hoster = FILES, **values: Any) -> int:
        """A notice as routing queues it."""
        fields: dict[str, Any] = {
            "case_id": None, "kind": "notice", "parent_id": None, "previous_id": None,
            "hoster": hoster.name, "country": "NL", "abuse_email": hoster.abuse_email,
            "abuse_api": hoster.abuse_api, "cdn": False, "urls": [self.image, self.page],
            "items": [{"url": self.image, "kind": "image", "hashes": hashes_of(PICTURE),
                       "labels": {"iccam": "baseline"}}],
            "legal_basis": "", "reference": "case-1", "issued_by": "hotline", "state": "queued",
            "report_id": str(uuid.uuid4()), "document": "",
            "reported_at": T0 - timedelta(hours=3), "created_at": T0, "dispute_reason": "",
            "outcome": "", "outcome_reason": "", "renotices": 0, "escalations": 0,
            "rechecks": 0, "next_action_at": T0, "last_error": "",
        }  # fmt: skip
        fields.update(values)
        with self.engine.begin() as connection:
            inserted = connection.execute(insert(TakedownNoticeRow).values(**fields))
            return int(inserted.inserted_primary_key[0])  # type: ignore[index]

    def row(self, notice_id: int) -> Any:
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(table).where(table.c.id == notice_id)).one()

    def rows(self) -> list[Any]:
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(table).order_by(table.c.id)).all()

    def events(self, notice_id: int, *kinds: str) -> list[dict[str, Any]]:
        table = TakedownEventRow.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table).where(table.c.notice_id == notice_id)
                                       .order_by(table.c.id)).all()  # fmt: skip
        return [{"kind": e.kind, "at": utc(e.at), **e.detail} for e in found
                if not kinds or e.kind in kinds]  # fmt: skip

    def checks(self, notice_id: int) -> list[tuple[str, str, str]]:
        table = TakedownCheckRow.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table).where(table.c.notice_id == notice_id)
                                       .order_by(table.c.id)).all()  # fmt: skip
        return [(c.url.rsplit("/", 1)[-1], c.purpose, c.outcome) for c in found]

    def deliveries_of(self, notice_id: int) -> list[tuple[str, str, str, str]]:
        table = TakedownDeliveryRow.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table).where(table.c.notice_id == notice_id)
                                       .order_by(table.c.id)).all()  # fmt: skip
        return [(d.purpose, d.step, d.channel, d.target) for d in found]

    def close(self) -> None:
        self.site.close()


@pytest.fixture
def world(engine: Engine) -> Iterator[World]:
    with smtp_server() as mailbox:
        made = World(engine, mailbox)
        yield made
        made.close()


def _composed(world: World, hoster: Hoster = FILES) -> int:
    """A notice composed and delivered by e-mail at T0: its deadline 24 h later, its first
    look at the first early check, an hour after it was sent."""
    notice = world.queue(hoster)
    done = world.scheduler.run_once()  # composed, then delivered
    assert done.composed == 1
    row = world.row(notice)
    assert row.state == "open" and utc(row.sent_at) == T0
    assert utc(row.deadline_at) == T0 + timedelta(hours=24)
    assert utc(row.next_action_at) == T0 + timedelta(hours=1)
    return notice


NOTICE_SENT = [("notice", "", "smtp", "abuse@files.example"),
               ("notice", "", "api", "https://files.example/api/abuse")]  # fmt: skip


def test_a_claim_is_checked_at_once_and_removal_verified_with_evidence(world: World) -> None:
    notice = _composed(world)
    world.clock.move(minutes=30)
    assert world.scheduler.tick().handled == 0  # nothing due before the first early check
    world.notices.claim_removed(notice, "Files BV", "hoster:files")  # but the page still shows it
    done = world.scheduler.tick()
    assert (done.checks, done.present, done.verified) == (2, 1, 0)
    assert world.checks(notice) == [("1.jpg", "claimed", "present"),
                                    ("gallery", "claimed", "present")]  # fmt: skip
    row = world.row(notice)
    assert row.state == "open" and row.renotices == 0  # before the deadline: no re-notice
    assert utc(row.next_action_at) == T0 + timedelta(hours=1) and row.lease_until is None
    world.clock.move(minutes=30)
    assert world.scheduler.tick().present == 1  # the early check: still there
    world.clock.move(minutes=30)
    world.serve(image=None)  # the image removed; the page stays, without it
    world.pages["/gallery"] = Page(b"<!doctype html><html><body>Removed</body></html>")
    world.notices.claim_removed(notice, "Files BV", "hoster:files")
    done = world.scheduler.tick()
    assert (done.checks, done.verified) == (2, 1)
    row = world.row(notice)
    assert row.state == "removed"
    assert utc(row.verified_at) == T0 + timedelta(hours=1, minutes=30)
    assert utc(row.next_action_at) == utc(row.verified_at) + timedelta(days=1)
    assert world.checks(notice)[2:] == [("1.jpg", "scheduled", "present"),
                                        ("gallery", "scheduled", "present"),
                                        ("1.jpg", "claimed", "gone"),
                                        ("gallery", "claimed", "changed")]  # fmt: skip
    [verified] = world.events(notice, "verified")
    assert len(verified["checks"]) == 2
    assert [e["outcome"] for e in verified["evidence"]] == ["gone", "changed"]
    assert verified["evidence"][0]["status"] == 404
    assert world.deliveries_of(notice) == NOTICE_SENT  # nothing more was sent
    actions = [e.action for e in audit.events(world.engine, limit=100,
                                              subjects=[f"notice:{notice}"])]  # fmt: skip
    assert "takedown.verified" in actions and "takedown.checked" in actions


def test_content_kept_past_the_deadline_is_re_noticed_and_escalated_step_by_step(
    world: World,
) -> None:
    notice = _composed(world)
    world.clock.move(hours=24)  # the deadline
    done = world.scheduler.tick()
    assert (done.present, done.renotices, done.escalations) == (1, 1, 0)
    assert world.checks(notice) == [("1.jpg", "deadline", "present"),
                                    ("gallery", "deadline", "present")]  # fmt: skip
    row = world.row(notice)
    assert (row.state, row.renotices, row.escalations) == ("open", 1, 0)
    assert utc(row.next_action_at) == T0 + timedelta(hours=48)
    renotices = [d for d in world.deliveries_of(notice) if d[0] == "renotice"]
    assert renotices == [("renotice", "", "smtp", "abuse@files.example"),
                         ("renotice", "", "api", "https://files.example/api/abuse")]  # fmt: skip
    world.clock.move(hours=24)
    done = world.scheduler.tick()
    assert (done.renotices, done.escalations) == (1, 0)
    assert world.row(notice).renotices == 2
    world.clock.move(hours=24)  # 48 h past the deadline: re-notice 3, two steps at once
    done = world.scheduler.tick()
    assert (done.renotices, done.escalations) == (1, 2)
    assert world.checks(notice)[-1] == ("gallery", "renotice", "present")
    escalated = world.events(notice, "escalated")
    assert [(e["step"], e["destination"]) for e in escalated] == [
        ("upstream", "upstream"),
        ("registrar", "abuse@registrar.example"),
    ]
    steps = [d for d in world.deliveries_of(notice) if d[0] == "escalation"]
    assert steps == [("escalation", "upstream", "smtp", "abuse@transit.example"),
                     ("escalation", "registrar", "smtp", "abuse@registrar.example")]  # fmt: skip
    assert utc(world.row(notice).next_action_at) == T0 + timedelta(hours=96)
    world.clock.move(hours=24)
    done = world.scheduler.tick()
    assert (done.renotices, done.escalations) == (1, 1)
    assert [d for d in world.deliveries_of(notice) if d[1] == "regulator"] == [
        ("escalation", "regulator", "api", "https://regulator.example/api/notices")
    ]
    row = world.row(notice)
    assert (row.renotices, row.escalations) == (4, 3)
    assert utc(row.next_action_at) == T0 + timedelta(hours=120)  # re-notices go on
    body = json.loads(next(p for p in _payloads(world, notice) if '"escalation"' in p))
    assert body["step"] == "regulator" and body["evidence"]["evidence"][0]["outcome"] == "present"
    assert signing.verify(body["notice"]) == keys.public_hex(world.key)


def _payloads(world: World, notice_id: int) -> list[str]:
    table = TakedownDeliveryRow.__table__
    with world.engine.connect() as connection:
        return list(connection.execute(select(table.c.payload).where(
            table.c.notice_id == notice_id, table.c.channel == "api")).scalars())  # fmt: skip


def test_an_upstream_step_without_an_upstream_is_recorded_failed_and_the_ladder_goes_on(
    world: World,
) -> None:
    notice = world.queue(LONELY)
    world.scheduler.run_once()
    world.clock.move(hours=96)  # late: every step is due at once, one re-notice
    done = world.scheduler.tick()
    assert (done.renotices, done.escalations) == (1, 3)
    escalated = world.events(notice, "escalated")
    assert escalated[0]["step"] == "upstream" and escalated[0]["deliveries"] == []
    assert escalated[0]["error"] == "the registry names no upstream for Lonely"
    assert [d[1] for d in world.deliveries_of(notice) if d[0] == "escalation"] == [
        "registrar",
        "regulator",
    ]
    row = world.row(notice)
    assert row.escalations == 3
    assert utc(row.next_action_at) == world.clock() + timedelta(hours=24)  # a late re-notice


def test_an_inconclusive_check_is_tried_again_and_never_counts_as_removal(world: World) -> None:
    notice = _composed(world)
    world.pages["/p/1.jpg"] = Page(b"busy", "text/plain", 503)
    world.pages["/gallery"] = Page(b"busy", "text/plain", 503)
    world.clock.move(hours=24)
    done = world.scheduler.tick()
    assert (done.inconclusive, done.verified) == (1, 0)
    row = world.row(notice)
    assert row.state == "open"
    assert utc(row.next_action_at) == world.clock() + TIMING.retry
    assert world.scheduler.tick().handled == 0
    world.clock.move(hours=1)
    world.names.clear()  # the domain is gone
    done = world.scheduler.tick()
    assert done.verified == 1
    # the deadline's check, done again: the first could not tell
    assert world.checks(notice)[-2:] == [("1.jpg", "deadline", "gone"),
                                         ("gallery", "deadline", "gone")]  # fmt: skip


def test_a_hoster_answering_503_for_days_is_re_noticed_and_escalated(world: World) -> None:
    """Checks that cannot tell never stop the ladder: removal is not verified, so the
    re-notices and escalations go on as if the content were there."""
    notice = _composed(world)
    world.pages["/p/1.jpg"] = Page(b"busy", "text/plain", 503)
    world.pages["/gallery"] = Page(b"busy", "text/plain", 503)
    world.clock.move(hours=24)
    for _ in range(4 * 24):  # a pass an hour for four days past the deadline
        world.scheduler.tick()
        world.clock.move(hours=1)
    world.scheduler.tick()
    row = world.row(notice)
    assert (row.state, row.renotices, row.escalations) == ("open", 5, 3)
    assert {outcome for _, _, outcome in world.checks(notice)} == {"inconclusive"}
    assert [e["step"] for e in world.events(notice, "escalated")] == [
        "upstream", "registrar", "regulator"]  # fmt: skip
    assert [e["at"] for e in world.events(notice, "renotice")] == [
        T0 + timedelta(hours=24 * day) for day in range(1, 6)]  # fmt: skip


def test_a_check_that_can_never_succeed_keeps_the_ladder_going(world: World) -> None:
    """A URL the crawler refuses for good (here: not http) is unverifiable: never a removal,
    re-noticed and escalated like content still there, not tried again every hour."""
    notice = world.queue(urls=[world.image, "ftp://files.test/1.jpg"])
    world.scheduler.run_once()
    world.serve(image=None, page=False)
    world.clock.move(hours=24)
    done = world.scheduler.tick()
    assert (done.verified, done.present, done.renotices) == (0, 1, 1)
    assert world.checks(notice)[-2:] == [("1.jpg", "deadline", "gone"),
                                         ("1.jpg", "deadline", "unverifiable")]  # fmt: skip
    assert utc(world.row(notice).next_action_at) == T0 + timedelta(hours=48)
    world.clock.move(hours=48)
    done = world.scheduler.tick()
    assert (done.renotices, done.escalations) == (1, 2)


def test_removed_content_is_re_checked_and_its_return_is_a_new_notice(world: World) -> None:
    notice = _composed(world)
    world.serve(image=None, page=False)
    world.clock.move(hours=24)
    assert world.scheduler.tick().verified == 1
    verified_at = T0 + timedelta(hours=24)
    world.clock.move(days=1)
    done = world.scheduler.tick()
    assert (done.rechecks, done.reappeared) == (1, 0)
    row = world.row(notice)
    assert (row.state, row.rechecks) == ("removed", 1)
    assert utc(row.next_action_at) == verified_at + timedelta(days=7)
    world.serve(image=jpeg(3, 300, 225, quality=40))  # uploaded again, re-encoded
    world.clock.move(days=6)
    done = world.scheduler.tick()
    assert (done.rechecks, done.reappeared) == (1, 1)
    old = world.row(notice)
    assert old.state == "removed" and old.next_action_at is None
    new = world.rows()[-1]
    assert (new.previous_id, new.state, new.hoster) == (notice, "queued", "Files BV")
    assert list(new.urls) == list(old.urls)
    assert [event["notice"] for event in world.events(notice, "reappeared")] == [new.id]
    assert world.checks(notice)[-2:] == [("1.jpg", "recheck", "present"),
                                         ("gallery", "recheck", "present")]  # fmt: skip
    done = world.scheduler.tick()  # the new notice is composed and sent
    assert done.composed == 1 and world.row(new.id).state == "open"
    # composing it names no reappearance again: the old notice says it once
    assert [event["notice"] for event in world.events(notice, "reappeared")] == [new.id]


def test_rechecks_end_after_the_last(world: World) -> None:
    notice = _composed(world)
    world.serve(image=None, page=False)
    world.clock.move(hours=24)
    world.scheduler.tick()
    for days in (1, 6, 23):
        world.clock.move(days=days)
        assert world.scheduler.tick().rechecks == 1
    row = world.row(notice)
    assert (row.rechecks, row.next_action_at) == (3, None)
    world.clock.move(days=365)
    assert world.scheduler.tick().handled == 0


def _order(world: World, reference: str) -> int:
    """An order for the gallery page, composed, its baseline taken and delivered at T0."""
    order = world.notices.issue_order([world.page], "CSA Regulation Art 14", reference,
                                      "authority:police", hoster="Files BV").id  # fmt: skip
    done = world.scheduler.run_once()
    assert (done.composed, done.checks, done.present) == (1, 1, 1)
    assert world.checks(order) == [("gallery", "scheduled", "present")]
    return order


def test_an_order_is_reminded_at_half_its_time_and_at_its_deadline(world: World) -> None:
    order = _order(world, "ORD-1")
    assert world.scheduler.tick().checks == 0  # delivered: the deadline runs from now
    assert utc(world.row(order).next_action_at) == T0 + timedelta(hours=1)
    world.clock.move(hours=12)
    done = world.scheduler.tick()
    assert (done.reminders, done.present) == (1, 1)  # and the early check: still there
    assert [e["reminder"] for e in world.events(order, "reminder")] == [1]
    assert utc(world.row(order).next_action_at) == T0 + timedelta(hours=23, minutes=30)
    world.clock.move(hours=12)
    done = world.scheduler.tick()
    assert (done.reminders, done.present, done.renotices) == (1, 1, 1)  # still served
    assert [e["reminder"] for e in world.events(order, "reminder")] == [1, 2]
    reminded = [d for d in world.deliveries_of(order) if d[0] == "reminder"]
    assert len(reminded) == 4  # two reminders, by e-mail and to the API
    world.notices.confirm_order(order, "Files BV", "hoster:files")
    world.serve(image=None, page=False)
    world.clock.move(hours=1)
    assert world.scheduler.tick().verified == 1
    assert len(world.events(order, "reminder")) == 2


def test_a_confirmed_order_gets_no_reminder(world: World) -> None:
    order = _order(world, "ORD-2")
    world.notices.confirm_order(order, "Files BV", "hoster:files")
    world.clock.move(hours=12)
    done = world.scheduler.tick()  # the confirmation is checked: the page still answers
    assert (done.reminders, done.present) == (0, 1)
    assert world.events(order, "reminder") == []


def test_an_order_is_verified_against_what_its_url_served_when_issued(world: World) -> None:
    """An order names URLs, no hashes: what they served as it was issued is its baseline;
    the same later is still there, other content (or none) is removal."""
    order = _order(world, "ORD-3")
    [checked] = world.events(order, "checked")
    assert checked["baseline"] == 1 and checked["purpose"] == "scheduled"
    [item] = world.row(order).items
    assert item["baseline"] == world.page and item["url"] == world.image
    assert item["hashes"]["sha256"] == hashes_of(PICTURE)["sha256"]
    world.clock.move(hours=1)
    assert world.scheduler.tick().present == 1  # the same picture: there
    world.serve(image=jpeg(8, 320, 240))  # the hoster put another picture in its place
    world.clock.move(hours=5)
    done = world.scheduler.tick()
    assert done.verified == 1
    assert world.checks(order)[-1] == ("gallery", "scheduled", "changed")
    assert utc(world.row(order).verified_at) == T0 + timedelta(hours=6)
    assert len(world.row(order).items) == 1  # the baseline is taken once


def test_an_orders_page_without_media_is_compared_by_its_own_digest(world: World) -> None:
    world.pages["/gallery"] = Page(b"<!doctype html><html><body><p>words</p></body></html>")
    order = _order(world, "ORD-4")
    [item] = world.row(order).items
    assert (item["kind"], item["url"], item["baseline"]) == ("page", world.page, world.page)
    world.clock.move(hours=1)
    assert world.scheduler.tick().present == 1
    world.pages["/gallery"] = Page(b"<!doctype html><html><body>Removed</body></html>")
    world.clock.move(hours=5)
    assert world.scheduler.tick().verified == 1


def test_removal_without_a_claim_is_seen_at_the_next_early_check(world: World) -> None:
    """A hoster that removes without saying so: its removal is verified at the first check
    after it (1, 6, 12 hours after sending, half an hour before the deadline), not at the
    deadline, so its time to removal is measured, not the deadline's."""
    notice = _composed(world)
    world.clock.move(hours=1)
    assert world.scheduler.tick().present == 1
    assert utc(world.row(notice).next_action_at) == T0 + timedelta(hours=6)
    world.clock.move(hours=2)
    assert world.scheduler.tick().handled == 0  # between checks: nothing
    world.serve(image=None, page=False)
    world.clock.move(hours=3)
    assert world.scheduler.tick().verified == 1
    row = world.row(notice)
    assert row.state == "removed" and utc(row.verified_at) == T0 + timedelta(hours=6)
    assert world.checks(notice)[-2:] == [("1.jpg", "scheduled", "gone"),
                                         ("gallery", "scheduled", "gone")]  # fmt: skip


def test_content_kept_is_checked_once_per_early_slot_and_at_the_deadline(world: World) -> None:
    notice = _composed(world)
    for _ in range(48):  # a pass every half hour until the deadline
        world.clock.move(minutes=30)
        world.scheduler.tick()
    purposes = [purpose for _, purpose, _ in world.checks(notice)]
    assert purposes == ["scheduled"] * 8 + ["deadline"] * 2  # 1, 6, 12, 23.5 h: two URLs each
    times = [e["at"] for e in world.events(notice, "checked")][::2]
    assert times == [T0 + timedelta(hours=h) for h in (1, 6, 12, 23.5, 24)]


def test_an_undelivered_notice_is_overdue_at_the_deadline_it_states(world: World) -> None:
    """The deadline is the one the signed notice states: a hoster whose abuse desk cannot be
    reached is not spared the re-notices and the ladder (they exist for hosters out of reach)."""
    notice = world.queue()
    world.mailbox.refusals.extend(["451 try again later"] * 50)
    world.scheduler.run_once()  # composed; the mail refused
    composed = world.row(notice)
    assert composed.sent_at is None
    world.clock.at = utc(composed.deadline_at)
    done = world.scheduler.tick()
    assert (done.present, done.renotices) == (1, 1)  # still there, and overdue all the same
    assert world.row(notice).sent_at is None
    assert [event["renotice"] for event in world.events(notice, "renotice")] == [1]


def test_a_long_check_renews_its_lease_so_no_other_instance_takes_the_notice(
    world: World,
) -> None:
    """Many URLs take long to check: the lease is renewed as they are, so another instance
    never takes the notice meanwhile and each URL is checked once."""
    for n in range(4):
        world.pages[f"/p/copy-{n}.jpg"] = Page(PICTURE, "image/jpeg")
    urls = [f"http://files.test:{world.site.port}/p/copy-{n}.jpg" for n in range(4)]
    notice = world.queue(urls=urls)
    world.scheduler.run_once()
    world.clock.move(hours=24)
    other = world.new_scheduler(lease=timedelta(minutes=5))
    slow = world.new_scheduler(lease=timedelta(minutes=5))
    others: list[Any] = []

    def fetch(url: str) -> Crawl:
        world.clock.move(minutes=3)  # each URL takes three minutes
        others.append(other.tick())
        return world.crawl(url)

    slow.fetch = fetch
    done = slow.tick()
    assert (done.handled, done.lost, done.renotices) == (1, 0, 1)
    assert [tick.handled for tick in others] == [0, 0, 0, 0]
    assert len(world.checks(notice)) == 4
    assert world.row(notice).renotices == 1 and world.row(notice).lease_until is None


def test_two_schedulers_do_each_notices_work_once(world: World) -> None:
    ids = [world.queue(report_id=str(uuid.uuid4())) for _ in range(6)]
    world.scheduler.run_once()
    world.clock.move(hours=24)
    others = [world.new_scheduler() for _ in range(2)]
    start = threading.Barrier(2)
    ticks: list[Any] = []

    def run(scheduler: Scheduler) -> None:
        start.wait()
        ticks.append(scheduler.tick())

    threads = [threading.Thread(target=run, args=(s,)) for s in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(n for t in ticks for n in t.notices) == ids
    for notice in ids:
        assert len(world.checks(notice)) == 2  # each URL checked once
        assert world.row(notice).renotices == 1
        assert len(world.events(notice, "renotice")) == 1


def test_a_notice_under_another_instances_lease_is_left_to_it(world: World) -> None:
    notice = _composed(world)
    world.clock.move(hours=24)
    table = TakedownNoticeRow.__table__
    with world.engine.begin() as connection:  # another instance claimed it a moment ago
        until = world.clock() + timedelta(minutes=5)
        connection.execute(table.update().where(table.c.id == notice)
                           .values(lease_until=until, next_action_at=until))  # fmt: skip
    assert world.scheduler.tick().handled == 0
    world.clock.move(minutes=6)  # it died: the lease ran out, the notice is due again
    assert world.scheduler.tick().notices == [notice]
    assert world.row(notice).renotices == 1


def test_a_withdrawal_during_the_checks_wins(world: World) -> None:
    notice = _composed(world)
    world.clock.move(hours=24)
    fetch = world.scheduler.fetch

    def withdrawing(url: str) -> Crawl:
        if url == world.page:
            world.notices.withdraw(notice, "analyst:ann", "a mistake")
        return fetch(url)

    world.scheduler.fetch = withdrawing
    done = world.scheduler.tick()
    assert (done.lost, done.renotices) == (1, 0)
    row = world.row(notice)
    assert row.state == "withdrawn" and row.renotices == 0
    assert world.checks(notice) == []  # the pass's work rolled back
    assert world.deliveries_of(notice) == NOTICE_SENT  # nothing more enqueued


def test_a_cdn_naming_the_origin_in_its_reply_forwards_the_notice(world: World) -> None:
    edge = Hoster("Edge", None, (64540,), (), None, "https://edge.example/abuse", True)
    world.notices.hosters = HosterRegistry([*REGISTRY, edge])
    notice = world.queue(edge, kind="cdn", cdn=True)
    world.scheduler.tick()
    world.scheduler.reply(notice, '{"ticket": "T-1", "origin": "127.0.0.7"}')
    row = world.row(notice)
    assert row.state == NoticeState.FORWARDED.value
    origin = world.rows()[-1]
    assert (origin.parent_id, origin.hoster, origin.state) == (notice, "Files BV", "queued")
    world.scheduler.reply(notice, "not json")  # nothing to take, nothing raised
    world.scheduler.reply(999999, '{"origin": "127.0.0.7"}')


def test_a_partner_is_told_when_the_case_it_referred_is_verified_removed(world: World) -> None:
    case = _partner_case(world.engine, "Hotline DE", "5f0c2b8e9a7d41c3b6e2f1a0d9c8b7a6")
    scheduler = world.new_scheduler(status=partner_status(world.key))
    notice = world.queue(case_id=case)
    scheduler.run_once()
    world.serve(image=None, page=False)
    world.clock.move(hours=24)
    assert scheduler.tick().verified == 1
    [message] = outbox.messages(world.engine, case)
    assert (message.kind, message.target) == (OutboxKind.STATUS.value, "Hotline DE")
    payload = message.payload
    assert signing.verify(payload) == keys.public_hex(world.key)
    assert payload["referral"] == "5f0c2b8e9a7d41c3b6e2f1a0d9c8b7a6"
    assert payload["url"] == "https://files.example/gallery"
    assert payload["status"] == "removed"
    assert payload["verified_at"] == (T0 + timedelta(hours=24)).isoformat()
    assert [e["outcome"] for e in payload["evidence"]["evidence"]] == ["gone", "gone"]
    assert payload["evidence"]["report_id"] == world.row(notice).report_id
    partner = Partner("Hotline DE", ("DE",), "https://hotline-de.example/", None)
    assert partner.status_url(payload["referral"]) == (
        "https://hotline-de.example/v1/hotline/referrals/5f0c2b8e9a7d41c3b6e2f1a0d9c8b7a6/status"
    )


def _partner_case(engine: Engine, partner: str, referral: str) -> int:
    with engine.begin() as connection:
        case = connection.execute(insert(HotlineCaseRow).values(
            url="https://files.example/gallery", url_key=uuid.uuid4().hex * 2,
            host="files.example", state="routed", created_at=T0, updated_at=T0, attempts=0,
            last_error="",
        )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        report = connection.execute(insert(HotlineReportRow).values(
            reference="R-1", token_digest=uuid.uuid4().hex * 2, source=f"partner:{partner}",
            partner_reference=referral, seen_where="referred", description="", contact=None,
            language="en", created_at=T0, purpose="report", retain_until=T0 + timedelta(days=90),
        )).inserted_primary_key[0]  # type: ignore[index]  # fmt: skip
        connection.execute(insert(HotlineCaseReportRow).values(case_id=case, report_id=report))
    return int(case)


def test_the_thread_runs_passes_until_stopped(world: World) -> None:
    notice = world.queue()
    world.scheduler.poll = 0.05
    world.scheduler.start()
    try:
        eventually(lambda: world.row(notice).state == "open")
    finally:
        world.scheduler.stop()
    assert world.scheduler._thread is None
    assert world.events(notice)[0]["kind"] == "composed"


def test_an_orders_baseline_is_never_taken_after_delivery(world: World) -> None:
    """The order's page answers 503 as it is issued: no baseline. Delivered, the hoster puts a
    "removed" page in its place: that is never the baseline (else the order would be
    escalated for ever); the URL is unverifiable, and gone once it answers 404."""
    world.pages["/gallery"] = Page(b"busy", "text/plain", 503)
    order = world.notices.issue_order([world.page], "CSA Regulation Art 14", "ORD-5",
                                      "authority:police", hoster="Files BV").id  # fmt: skip
    done = world.scheduler.run_once()
    assert (done.composed, done.inconclusive) == (1, 1)
    assert utc(world.row(order).sent_at) == T0
    world.pages["/gallery"] = Page(b"<!doctype html><html><body>Removed</body></html>")
    world.clock.move(hours=1)
    assert world.scheduler.tick().present == 1  # unverifiable: the ladder would go on
    assert world.checks(order)[-1] == ("gallery", "scheduled", "unverifiable")
    assert list(world.row(order).items) == []
    assert all("baseline" not in event for event in world.events(order, "checked"))
    world.clock.move(hours=23)
    done = world.scheduler.tick()
    assert (done.verified, done.renotices) == (0, 1)
    assert list(world.row(order).items) == []
    world.pages["/gallery"] = Page(b"gone", "text/plain", 404)
    world.clock.move(hours=1)
    world.notices.confirm_order(order, "Files BV", "hoster:files")
    assert world.scheduler.tick().verified == 1


def test_a_removed_orders_re_check_takes_no_baseline(world: World) -> None:
    """An order whose page was already gone as it was issued is verified with no baseline; a
    parking page there later is not the content back (no new notice): inconclusive, and the
    re-checks go on at their times."""
    world.pages.clear()
    order = world.notices.issue_order([world.page], "CSA Regulation Art 14", "ORD-6",
                                      "authority:police", hoster="Files BV").id  # fmt: skip
    assert world.scheduler.run_once().verified == 1
    world.pages["/gallery"] = Page(b"<!doctype html><html><body>Parked</body></html>")
    world.clock.move(days=1)
    done = world.scheduler.tick()
    assert (done.rechecks, done.reappeared, done.inconclusive) == (1, 0, 1)
    row = world.row(order)
    assert (row.state, row.rechecks, list(row.items)) == ("removed", 1, [])
    assert utc(row.next_action_at) == T0 + timedelta(days=7)
    assert world.checks(order)[-1] == ("gallery", "recheck", "inconclusive")
    assert len(world.rows()) == 1
