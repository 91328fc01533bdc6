"""The notices as operators, hosters and authorities see and act on them, on SQLite and
PostgreSQL: lists and filters, one notice with its timeline; a hoster sees and acts on its own
notices only (another's is as missing); acknowledgement, claims (never taken alone), disputes;
the origin a CDN names; removal orders and their outcome; withdrawal; every change an event and
an audit entry, and refused with a reason where the state does not allow it."""

import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, create_engine, insert, select, update
from sqlalchemy.exc import OperationalError

from hashguard.errors import Invalid, NotFound
from hashguard.hotline.hosters import Hoster, HosterRegistry
from hashguard.store import audit
from hashguard.store.tables import (
    AuditEventRow,
    TakedownCheckRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
)
from hashguard.takedown import signing
from hashguard.takedown.delivery import Deliveries, SmtpSettings
from hashguard.takedown.model import NoticeKind, NoticeState, Timing
from hashguard.takedown.notice import Sender, validate
from hashguard.takedown.notices import NoticeRefused, Notices, UnknownNotice
from hashguard.transparency import keys

from support.notice_rows import item
from support.smtp import smtp_server

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHA = "a" * 64
SENDER = Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
TIMING = Timing(notice=timedelta(hours=24), order=timedelta(hours=1),
                retry=timedelta(minutes=30))  # fmt: skip


def hoster(name: str, network: str, *, cdn: bool = False, api: str | None = None) -> Hoster:
    slug = name.lower().replace(" ", "-")
    return Hoster(name, "NL", (), (ipaddress.ip_network(network),), f"abuse@{slug}.test", api,
                  cdn)  # fmt: skip


ALPHA = hoster("Alpha", "198.51.100.0/25", api="https://api.alpha.test/notices")
BETA = hoster("Beta", "198.51.100.128/25")
EDGE = hoster("Edge CDN", "203.0.113.0/24", cdn=True)
REGISTRY = HosterRegistry([ALPHA, BETA, EDGE])


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def __call__(self) -> datetime:
        return self.at

    def move(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass(frozen=True)
class Traced:
    hoster: Hoster | None
    country: str | None = "NL"
    cdn: bool = False


class Desk:
    """Notices in every state, made as routing and the scheduler leave them."""

    def __init__(self, engine: Engine, registry: HosterRegistry = REGISTRY,
                 smtp: SmtpSettings | None = None) -> None:  # fmt: skip
        self.engine = engine
        self.clock = Clock()
        self.traced: dict[str, Traced] = {}
        self.key = Ed25519PrivateKey.generate()
        self.deliveries = Deliveries(engine, smtp, clock=self.clock)
        self.notices = Notices(engine, TIMING, registry, SENDER, self.key, self.deliveries,
                               clock=self.clock, trace=self.trace)  # fmt: skip
        self.open = self.add(ALPHA, deadline_at=T0 + timedelta(hours=24))
        self.late = self.add(ALPHA, deadline_at=T0 - timedelta(hours=1))  # overdue
        self.queued = self.add(ALPHA, state=NoticeState.QUEUED, deadline_at=None)
        past = T0 - timedelta(hours=5)  # past, but not open
        self.removed = self.add(ALPHA, state=NoticeState.REMOVED, verified_at=T0, deadline_at=past)
        self.betas = self.add(BETA, deadline_at=T0 + timedelta(hours=24))
        self.cdn = self.add(EDGE, kind=NoticeKind.CDN, cdn=True,
                            deadline_at=T0 + timedelta(hours=24))  # fmt: skip

    def trace(self, url: str) -> Traced:
        return self.traced[url]

    def add(self, to: Hoster, *, kind: NoticeKind = NoticeKind.NOTICE,
            state: NoticeState = NoticeState.OPEN, **values: Any) -> int:  # fmt: skip
        n = len(self.rows()) + 1
        fields: dict[str, Any] = {
            "case_id": None, "kind": kind.value, "parent_id": None, "previous_id": None,
            "hoster": to.name, "country": to.country, "abuse_email": to.abuse_email,
            "abuse_api": to.abuse_api, "cdn": False,
            "urls": [f"https://site.example/{n}.jpg", "https://site.example/"],
            "items": [{"url": f"https://site.example/{n}.jpg", "kind": "image",
                       "hashes": {"sha256": SHA}, "labels": {"iccam": "baseline"}}],
            "legal_basis": "", "reference": f"case-{n}", "issued_by": "hotline",
            "state": state.value, "report_id": f"00000000-0000-4000-8000-{n:012d}",
            "document": "", "reported_at": T0 - timedelta(hours=2),
            "created_at": T0 - timedelta(hours=1),
            "sent_at": None if state is NoticeState.QUEUED else T0 - timedelta(hours=1),
            "dispute_reason": "", "outcome": "", "outcome_reason": "", "renotices": 0,
            "escalations": 0, "rechecks": 0, "next_action_at": values.get("deadline_at"),
            "last_error": "",
        }  # fmt: skip
        fields.update(values)
        with self.engine.begin() as connection:
            inserted = connection.execute(insert(TakedownNoticeRow).values(**fields))
            return int(inserted.inserted_primary_key[0])  # type: ignore[index]

    def rows(self) -> list[Any]:
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            return connection.execute(select(table).order_by(table.c.id)).all()

    def row(self, notice_id: int) -> Any:
        return next(row for row in self.rows() if row.id == notice_id)

    def events(self, notice_id: int) -> list[tuple[str, str, dict[str, Any]]]:
        table = TakedownEventRow.__table__
        with self.engine.connect() as connection:
            query = select(table).where(table.c.notice_id == notice_id).order_by(table.c.id)
            return [(e.kind, e.actor, e.detail) for e in connection.execute(query)]

    def audited(self, notice_id: int) -> list[tuple[str, str]]:
        found = audit.events(self.engine, limit=1000, subjects=[f"notice:{notice_id}"])
        return [(e.action, e.actor) for e in found]


@pytest.fixture
def desk(engine: Engine) -> Desk:
    return Desk(engine)


# --- reading ------------------------------------------------------------------------------------


def test_an_operator_lists_every_notice_newest_first_filtered_and_in_pages(desk: Desk) -> None:
    notices = desk.notices
    everything = [desk.cdn, desk.betas, desk.removed, desk.queued, desk.late, desk.open]
    assert [n.id for n in notices.list()] == everything
    assert [n.id for n in notices.list(hoster="Alpha", state="open")] == [desk.late, desk.open]
    assert [n.id for n in notices.list(kind="cdn")] == [desk.cdn]
    assert [n.id for n in notices.list(overdue=True)] == [desk.late]
    assert desk.late not in [n.id for n in notices.list(overdue=False)]
    assert len(notices.list(overdue=False)) == 5
    first = notices.list(limit=2)
    assert [n.id for n in first] == everything[:2]
    assert [n.id for n in notices.list(limit=2, before=first[-1].id)] == everything[2:4]
    late = notices.list(overdue=True)[0]
    assert late.overdue and late.state == "open" and late.hoster == "Alpha"
    assert not notices.get(desk.removed).notice.overdue  # past its deadline, but removed
    desk.clock.move(hours=25)
    assert {n.id for n in notices.list(overdue=True)} == {desk.late, desk.open, desk.betas,
                                                          desk.cdn}  # fmt: skip


def test_list_refuses_unknown_states_and_kinds_and_limits_out_of_range(desk: Desk) -> None:
    with pytest.raises(Invalid, match="state 'gone': expected one of queued, open"):
        desk.notices.list(state="gone")
    with pytest.raises(Invalid, match="kind 'letter'"):
        desk.notices.list(kind="letter")
    for limit in (0, 1001):
        with pytest.raises(Invalid, match=f"limit {limit}: expected 1 to 1000"):
            desk.notices.list(limit=limit)


def test_a_notice_shows_its_document_timeline_checks_and_deliveries(desk: Desk) -> None:
    document = '{"report_id": "x", "urls": ["https://site.example/1.jpg"]}'
    copied = {c: v for c, v in desk.row(desk.open)._mapping.items() if c != "id"}
    with desk.engine.begin() as connection:
        connection.execute(insert(TakedownNoticeRow.__table__).values(
            **{**copied, "report_id": "00000000-0000-4000-8000-999999999999",
               "document": document}))  # fmt: skip
        connection.execute(insert(TakedownCheckRow).values(
            notice_id=desk.open, url="https://site.example/1.jpg", at=T0, purpose="deadline",
            outcome="present", status=200, detail="served the same image",
            hashes=[{"sha256": SHA}]))  # fmt: skip
        connection.execute(insert(TakedownDeliveryRow).values(
            notice_id=desk.open, purpose="notice", step="", channel="smtp",
            target="abuse@alpha.test", payload="the message", idempotency_key="k" * 64,
            created_at=T0, attempts=1, next_attempt_at=T0, delivered_at=T0, last_error="",
            reply=""))  # fmt: skip
    desk.notices.acknowledge(desk.open, "Alpha", "alpha-key")
    detail = desk.notices.get(desk.open)
    assert detail.document is None  # not composed
    assert [(e.kind, e.actor) for e in detail.events] == [("acknowledged", "alpha-key")]
    [check] = detail.checks
    assert (check.outcome, check.status, check.at) == ("present", 200, T0)
    assert check.hashes == ({"sha256": SHA},)
    [delivery] = detail.deliveries
    assert (delivery.channel, delivery.target) == ("smtp", "abuse@alpha.test")
    assert delivery.delivered_at == T0
    shown = detail.as_json()
    assert shown["notice"]["urls"] == ["https://site.example/1.jpg", "https://site.example/"]
    assert shown["notice"]["acknowledged_at"] == T0.isoformat()
    assert shown["notice"]["reported_at"] == (T0 - timedelta(hours=2)).isoformat()
    assert shown["deliveries"][0]["delivered_at"] == T0.isoformat()
    assert "payload" not in shown["deliveries"][0]
    composed = desk.notices.list(limit=1)[0]
    assert desk.notices.get(composed.id).document == {
        "report_id": "x", "urls": ["https://site.example/1.jpg"]}  # fmt: skip


# --- a hoster sees its own ----------------------------------------------------------------------


def test_a_hoster_sees_and_acts_on_its_own_notices_only(desk: Desk) -> None:
    notices = desk.notices
    assert [n.id for n in notices.list(hoster="Beta")] == [desk.betas]
    assert notices.get(desk.betas, "Beta").notice.hoster == "Beta"
    with pytest.raises(UnknownNotice) as theirs:
        notices.get(desk.open, "Beta")
    with pytest.raises(UnknownNotice) as missing:
        notices.get(10_000, "Beta")
    assert str(theirs.value) == f"no notice {desk.open}"  # as a missing one: nothing leaks
    assert str(missing.value) == "no notice 10000" and isinstance(missing.value, NotFound)
    before = desk.row(desk.open)
    for act in (lambda: notices.acknowledge(desk.open, "Beta", "beta"),
                lambda: notices.claim_removed(desk.open, "Beta", "beta"),
                lambda: notices.dispute(desk.open, "Beta", "beta", "not ours"),
                lambda: notices.origin(desk.cdn, "Beta", "beta", "198.51.100.7")):  # fmt: skip
        with pytest.raises(UnknownNotice, match="no notice"):
            act()
    assert desk.row(desk.open) == before and desk.events(desk.open) == []
    for wrong in (0, -3, 2**63, True):
        with pytest.raises(UnknownNotice):
            notices.get(wrong)  # type: ignore[arg-type]


# --- a hoster's actions -------------------------------------------------------------------------


def test_acknowledging_sets_the_time_once_with_an_event_and_audit_entry(desk: Desk) -> None:
    shown = desk.notices.acknowledge(desk.open, "Alpha", "alpha-key")
    assert shown.acknowledged_at == T0 and shown.state == "open"
    desk.clock.move(hours=1)
    again = desk.notices.acknowledge(desk.open, "Alpha", "alpha-key")
    assert again.acknowledged_at == T0
    assert desk.events(desk.open) == [("acknowledged", "alpha-key", {})]
    assert desk.audited(desk.open) == [("takedown.acknowledged", "alpha-key")]
    queued = desk.notices.acknowledge(desk.queued, "Alpha", "alpha-key")  # an order told early
    assert queued.acknowledged_at == T0 + timedelta(hours=1) and queued.state == "queued"
    with pytest.raises(NoticeRefused, match=f"notice {desk.removed} is removed: it cannot be "
                                            "acknowledged"):  # fmt: skip
        desk.notices.acknowledge(desk.removed, "Alpha", "alpha-key")
    assert audit.verify(desk.engine) >= 2


def opens_now(engine: Engine, notice_id: int) -> bool:
    """Whether another writer (as the scheduler opening a queued notice) can change the notice
    at once, on its own connection: False when a transaction holds it locked."""
    url = engine.url
    sqlite = url.get_backend_name() == "sqlite"
    other = create_engine(url, connect_args={"timeout": 0} if sqlite else {})
    table = TakedownNoticeRow.__table__
    try:
        with other.begin() as connection:
            if not sqlite:
                connection.exec_driver_sql("SET LOCAL lock_timeout = '50ms'")
            connection.execute(update(table).where(table.c.id == notice_id)
                               .values(state=NoticeState.OPEN.value))  # fmt: skip
        return True
    except OperationalError:  # SQLite: database is locked; PostgreSQL: lock timeout
        return False
    finally:
        other.dispose()


def test_a_writer_that_moves_while_a_hoster_acts_waits_for_the_action_to_end(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler opening a queued notice just as its hoster acknowledges it: the hoster's
    action holds the notice from its read to its commit (so it is not refused as changed
    meanwhile), and the scheduler's change goes in after it."""
    tried: list[bool] = []
    refuse = Notices._refuse_unless

    def meanwhile(row: Any, states: Any, action: str) -> None:
        tried.append(opens_now(desk.engine, row.id))
        refuse(row, states, action)

    monkeypatch.setattr(Notices, "_refuse_unless", staticmethod(meanwhile))
    shown = desk.notices.acknowledge(desk.queued, "Alpha", "alpha-key")
    assert tried == [False]
    assert (shown.state, shown.acknowledged_at) == ("queued", T0)
    assert opens_now(desk.engine, desk.queued)
    assert desk.row(desk.queued).state == "open" and desk.events(desk.queued) == [
        ("acknowledged", "alpha-key", {})]  # fmt: skip


def test_a_claim_leaves_the_notice_open_and_asks_for_a_check_now(desk: Desk) -> None:
    desk.clock.move(hours=3)
    claimed = desk.notices.claim_removed(desk.open, "Alpha", "alpha-key", note=" deleted ")
    now = T0 + timedelta(hours=3)
    assert claimed.state == "open" and claimed.claimed_at == now
    assert claimed.verified_at is None  # never taken alone
    row = desk.row(desk.open)
    assert row.next_action_at.replace(tzinfo=UTC) == now  # the scheduler re-checks now
    desk.clock.move(hours=1)
    desk.notices.claim_removed(desk.open, "Alpha", "alpha-key")  # again, after a check
    assert desk.events(desk.open) == [("claimed", "alpha-key", {"note": "deleted"}),
                                      ("claimed", "alpha-key", {})]  # fmt: skip
    assert desk.audited(desk.open) == [("takedown.claimed", "alpha-key")] * 2
    for notice_id, state in ((desk.queued, "queued"), (desk.removed, "removed")):
        with pytest.raises(NoticeRefused, match=f"is {state}: it cannot be claimed removed"):
            desk.notices.claim_removed(notice_id, "Alpha", "alpha-key")
    with pytest.raises(Invalid, match="the note has 2001 characters"):
        desk.notices.claim_removed(desk.open, "Alpha", "alpha-key", note="x" * 2001)


def test_a_dispute_needs_a_reason_and_keeps_the_notice_open(desk: Desk) -> None:
    for reason, why in (("", "a dispute needs a reason"), ("  \n", "a dispute needs a reason"),
                        ("x" * 2001, "the reason has 2001 characters; at most 2000")):  # fmt: skip
        with pytest.raises(Invalid, match=why):
            desk.notices.dispute(desk.open, "Alpha", "alpha-key", reason)
    disputed = desk.notices.dispute(desk.open, "Alpha", "alpha-key", "  a medical textbook  ")
    assert (disputed.state, disputed.disputed_at, disputed.dispute_reason) == (
        "open", T0, "a medical textbook")  # fmt: skip
    assert desk.events(desk.open) == [("disputed", "alpha-key",
                                       {"reason": "a medical textbook"})]  # fmt: skip
    assert desk.audited(desk.open) == [("takedown.disputed", "alpha-key")]
    with pytest.raises(NoticeRefused, match="is removed"):
        desk.notices.dispute(desk.removed, "Alpha", "alpha-key", "why")


# --- a CDN names the origin ---------------------------------------------------------------------


def test_the_origin_a_cdn_names_gets_a_queued_notice_and_the_cdn_notice_is_forwarded(
    desk: Desk,
) -> None:
    desk.clock.move(minutes=30)
    at = T0 + timedelta(minutes=30)
    shown = desk.notices.origin(desk.cdn, "Edge CDN", "edge-key", " 198.51.100.7 ")
    assert shown.id == desk.cdn and shown.state == "forwarded"
    cdn, origin = desk.row(desk.cdn), desk.rows()[-1]
    assert cdn.next_action_at is None and cdn.last_error == ""
    assert (origin.kind, origin.parent_id, origin.hoster, origin.state) == (
        "notice", desk.cdn, "Alpha", "queued")  # fmt: skip
    assert (origin.abuse_email, origin.abuse_api) == (ALPHA.abuse_email, ALPHA.abuse_api)
    assert (origin.urls, origin.items, origin.case_id) == (cdn.urls, cdn.items, cdn.case_id)
    assert origin.reported_at == cdn.reported_at  # the clock runs from the report
    assert origin.next_action_at.replace(tzinfo=UTC) == at and origin.report_id != cdn.report_id
    assert desk.events(desk.cdn) == [("origin", "edge-key", {
        "address": "198.51.100.7", "hoster": "Alpha", "notice": origin.id})]  # fmt: skip
    assert desk.audited(desk.cdn) == [("takedown.origin", "edge-key")]
    with pytest.raises(UnknownNotice):
        desk.notices.get(origin.id, "Edge CDN")  # the origin's notice is Alpha's
    assert desk.notices.get(origin.id, "Alpha").notice.parent_id == desk.cdn
    with pytest.raises(NoticeRefused, match="is forwarded"):
        desk.notices.origin(desk.cdn, "Edge CDN", "edge-key", "198.51.100.8")


def test_an_origin_no_hoster_is_known_for_is_recorded_for_an_analyst(desk: Desk) -> None:
    shown = desk.notices.origin(desk.cdn, None, "scheduler", "2001:db8::7")
    assert shown.state == "open" and shown.last_error == "origin 2001:db8::7: no hoster known"
    assert desk.events(desk.cdn) == [("origin", "scheduler", {
        "address": "2001:db8::7", "hoster": None, "notice": None})]  # fmt: skip
    own = desk.notices.origin(desk.cdn, None, "scheduler", "203.0.113.9")  # the CDN's own
    assert own.last_error == "origin 203.0.113.9: Edge CDN is a CDN, not an origin"
    assert len(desk.rows()) == 6  # no notice queued
    with pytest.raises(Invalid, match=r"origin 'origin\.example' is not an IP address"):
        desk.notices.origin(desk.cdn, None, "scheduler", "origin.example")
    with pytest.raises(NoticeRefused, match=f"notice {desk.open} is not a CDN notice"):
        desk.notices.origin(desk.open, None, "scheduler", "198.51.100.7")


# --- removal orders -----------------------------------------------------------------------------


def test_an_authority_issues_an_order_to_a_named_or_traced_hoster(desk: Desk) -> None:
    order = desk.notices.issue_order(["HTTPS://Site.Example/a/../x.jpg#top"], " Art 14 CSAR ",
                                     "ATKM-2026-17", "authority-key", hoster="Beta")  # fmt: skip
    assert (order.kind, order.state, order.hoster, order.case_id) == ("order", "queued", "Beta",
                                                                      None)  # fmt: skip
    assert order.urls == ("https://site.example/x.jpg",)
    assert (order.legal_basis, order.reference) == ("Art 14 CSAR", "ATKM-2026-17")
    assert order.reported_at == T0
    row = desk.row(order.id)
    assert (row.issued_by, row.abuse_email, row.next_action_at.replace(tzinfo=UTC)) == (
        "authority-key", BETA.abuse_email, T0)  # fmt: skip
    assert desk.audited(order.id) == [("takedown.order", "authority-key")]
    desk.traced = {"https://a.example/1.jpg": Traced(ALPHA),
                   "https://a.example/2.jpg": Traced(ALPHA)}  # fmt: skip
    traced = desk.notices.issue_order(list(desk.traced), "Art 14 CSAR", "ATKM-2026-18",
                                      "authority-key")  # fmt: skip
    assert traced.hoster == "Alpha" and traced.urls == tuple(desk.traced)
    assert desk.notices.get(traced.id, "Alpha").notice.kind == "order"


@pytest.mark.parametrize(("urls", "basis", "reference", "to", "traced", "why"), [
    ([], "basis", "ref", "Beta", {}, "an order needs the URLs"),
    (["ftp://a.example/x"], "basis", "ref", "Beta", {}, "only http and https"),
    (["https://a.example/x"], " ", "ref", "Beta", {}, "an order needs a legal basis"),
    (["https://a.example/x"], "b" * 2001, "ref", "Beta", {}, "the legal basis has 2001"),
    (["https://a.example/x"], "basis", "", "Beta", {}, "an order needs its reference"),
    (["https://a.example/x"], "basis", "ref", "Gamma", {}, "unknown hoster 'Gamma'"),
    (["https://a.example/x"], "basis", "ref", None, {"https://a.example/x": Traced(None)},
     "no hoster in the registry is known for https://a.example/x"),
    (["https://a.example/x"], "basis", "ref", None, {"https://a.example/x": Traced(EDGE)},
     "is behind a CDN"),
    (["https://a.example/x", "https://b.example/y"], "basis", "ref", None,
     {"https://a.example/x": Traced(ALPHA), "https://b.example/y": Traced(BETA)},
     "hosted by Alpha, Beta: issue one order per hoster"),
    (["https://a.example/x"], "basis", "ref", "Edge CDN", {},
     "Edge CDN is a CDN: an order goes to the hoster of the origin server"),
    (["https://a.example/x"], "basis", "O-1\r\nBcc: someone@example.org", "Alpha", {},
     "reference holds a control character"),
    (["https://a.example/x"], "Art 14\x00", "O-1", "Alpha", {},
     "legal basis holds a control character"),
])  # fmt: skip
def test_an_order_is_refused_with_a_reason(
    desk: Desk,
    urls: list[str],
    basis: str,
    reference: str,
    to: str | None,
    traced: dict[str, Traced],
    why: str,
) -> None:
    desk.traced = traced
    count = len(desk.rows())
    with pytest.raises(Invalid, match=why):
        desk.notices.issue_order(urls, basis, reference, "authority-key", hoster=to)
    assert len(desk.rows()) == count


def test_without_a_tracer_an_order_must_name_its_hoster(engine: Engine) -> None:
    key = Ed25519PrivateKey.generate()
    notices = Notices(engine, Timing(), REGISTRY, SENDER, key, Deliveries(engine, None))
    with pytest.raises(Invalid, match="name the hoster: no tracer"):
        notices.issue_order(["https://a.example/x"], "basis", "ref", "authority-key")


def test_an_order_is_confirmed_or_declined_once(desk: Desk) -> None:
    first = desk.notices.issue_order(["https://a.example/1"], "basis", "O-1", "authority-key",
                                     hoster="Alpha")  # fmt: skip
    second = desk.notices.issue_order(["https://a.example/2"], "basis", "O-2", "authority-key",
                                      hoster="Alpha")  # fmt: skip
    desk.clock.move(hours=2)
    now = T0 + timedelta(hours=2)
    with pytest.raises(UnknownNotice):
        desk.notices.confirm_order(first.id, "Beta", "beta-key")
    confirmed = desk.notices.confirm_order(first.id, "Alpha", "alpha-key")
    assert (confirmed.outcome, confirmed.outcome_at, confirmed.state) == ("confirmed", now,
                                                                          "queued")  # fmt: skip
    assert confirmed.claimed_at == now  # re-checked like a claim: never taken alone
    with pytest.raises(Invalid, match="an inability needs a reason"):
        desk.notices.inability(second.id, "Alpha", "alpha-key", "")
    unable = desk.notices.inability(second.id, "Alpha", "alpha-key", "the URL is not ours")
    assert (unable.outcome, unable.outcome_reason) == ("inability", "the URL is not ours")
    assert unable.claimed_at is None
    for order in (first, second):
        with pytest.raises(NoticeRefused, match=f"order {order.id} has its outcome already"):
            desk.notices.confirm_order(order.id, "Alpha", "alpha-key")
        with pytest.raises(NoticeRefused, match="has its outcome already"):
            desk.notices.inability(order.id, "Alpha", "alpha-key", "changed our mind")
    with pytest.raises(NoticeRefused, match=f"notice {desk.open} is not a removal order"):
        desk.notices.confirm_order(desk.open, "Alpha", "alpha-key")
    assert desk.events(first.id) == [("confirmed", "alpha-key", {})]
    assert desk.events(second.id) == [("inability", "alpha-key",
                                       {"reason": "the URL is not ours"})]  # fmt: skip
    assert desk.audited(second.id) == [("takedown.order", "authority-key"),
                                       ("takedown.inability", "alpha-key")]  # fmt: skip


# --- an operator's actions ----------------------------------------------------------------------


def test_an_operator_withdraws_an_open_notice_with_a_reason(desk: Desk) -> None:
    with pytest.raises(Invalid, match="a withdrawal needs a reason"):
        desk.notices.withdraw(desk.open, "analyst-1", "")
    withdrawn = desk.notices.withdraw(desk.open, "analyst-1", "the dispute is upheld")
    assert (withdrawn.state, withdrawn.withdrawn_at) == ("withdrawn", T0)
    assert desk.row(desk.open).next_action_at is None  # nothing more scheduled
    assert desk.events(desk.open) == [("withdrawn", "analyst-1",
                                       {"reason": "the dispute is upheld"})]  # fmt: skip
    assert desk.audited(desk.open) == [("takedown.withdrawn", "analyst-1")]
    assert desk.notices.withdraw(desk.queued, "analyst-1", "a mistake").state == "withdrawn"
    for notice_id, state in ((desk.open, "withdrawn"), (desk.removed, "removed")):
        with pytest.raises(NoticeRefused, match=f"is {state}: it cannot be withdrawn"):
            desk.notices.withdraw(notice_id, "analyst-1", "again")
    with pytest.raises(NoticeRefused, match="is withdrawn"):
        desk.notices.claim_removed(desk.open, "Alpha", "alpha-key")
    with pytest.raises(UnknownNotice):
        desk.notices.withdraw(10_000, "analyst-1", "why")


def test_every_change_is_in_the_verified_audit_chain(desk: Desk) -> None:
    desk.notices.acknowledge(desk.open, "Alpha", "alpha-key")
    desk.notices.dispute(desk.open, "Alpha", "alpha-key", "reason")
    desk.notices.withdraw(desk.open, "analyst-1", "upheld")
    with desk.engine.connect() as connection:
        actions = connection.execute(select(AuditEventRow.action)
                                     .order_by(AuditEventRow.seq)).scalars().all()  # fmt: skip
    assert actions[-3:] == ["takedown.acknowledged", "takedown.disputed", "takedown.withdrawn"]
    assert audit.verify(desk.engine) == len(actions)


# --- composing ----------------------------------------------------------------------------------


def deliveries_of(engine: Engine, notice_id: int) -> list[Any]:
    table = TakedownDeliveryRow.__table__
    with engine.connect() as connection:
        return connection.execute(select(table).where(table.c.notice_id == notice_id)
                                  .order_by(table.c.id)).all()  # fmt: skip


def test_a_queued_notice_is_signed_opened_and_sent_to_every_contact(desk: Desk) -> None:
    url = "https://site.example/q.jpg"
    queued = desk.add(ALPHA, state=NoticeState.QUEUED, next_action_at=T0, items=[item(url)],
                      urls=[url])  # fmt: skip
    later = desk.add(ALPHA, state=NoticeState.QUEUED, next_action_at=T0 + timedelta(hours=1))
    desk.clock.move(minutes=5)
    at = T0 + timedelta(minutes=5)
    assert desk.notices.compose_queued() == 2  # desk.queued (due: no time set) and this one
    row = desk.row(queued)
    deadline = at + timedelta(hours=24)
    assert row.state == "open" and row.last_error == ""
    assert (row.deadline_at.replace(tzinfo=UTC), row.next_action_at.replace(tzinfo=UTC)) == (
        deadline, at + timedelta(hours=1))  # fmt: skip
    document = desk.notices.get(queued, "Alpha").document
    assert document is not None and document["report_id"] == row.report_id
    assert signing.verify(document, keys.public_hex(desk.key))
    validate(document)
    assert document["hashguard_items"][0]["hashes"]["sha256"] == item(url)["hashes"]["sha256"]
    smtp, api = deliveries_of(desk.engine, queued)
    assert (smtp.channel, smtp.target, smtp.purpose) == ("smtp", ALPHA.abuse_email, "notice")
    assert "notice.json" in smtp.payload and smtp.next_attempt_at.replace(tzinfo=UTC) == at
    assert (api.channel, api.target) == ("api", ALPHA.abuse_api)
    assert json.loads(api.payload)["notice"] == document
    composed = {"deadline": deadline.isoformat(), "deliveries": [smtp.id, api.id], "previous": None}
    assert desk.events(queued) == [("composed", "hotline", composed)]
    assert desk.audited(queued) == [("takedown.composed", "hotline")]
    assert desk.row(later).state == "queued"  # not due yet
    assert desk.notices.compose_queued() == 0  # composed once: nothing sent twice
    assert len(deliveries_of(desk.engine, queued)) == 2
    desk.clock.move(hours=1)
    assert desk.notices.compose_queued(limit=1) == 1 and desk.row(later).state == "open"


def test_an_order_gets_the_order_deadline(desk: Desk) -> None:
    order = desk.notices.issue_order(["https://site.example/o.jpg"], "Art 14 CSAR", "O-9",
                                     "authority-key", hoster="Beta")  # fmt: skip
    desk.notices.compose_queued()
    shown = desk.notices.get(order.id).notice
    assert (shown.state, shown.deadline_at) == ("open", T0 + timedelta(hours=1))
    [delivery] = deliveries_of(desk.engine, order.id)  # Beta has no API
    assert delivery.target == BETA.abuse_email


def test_a_notice_without_an_abuse_contact_opens_and_says_so(desk: Desk) -> None:
    nobody = desk.add(Hoster("Nobody", None, (), (), None, None, False), state=NoticeState.QUEUED)
    unknown = desk.add(ALPHA, state=NoticeState.QUEUED, hoster="", abuse_email=None,
                       abuse_api=None)  # fmt: skip
    desk.notices.compose_queued()
    for notice_id, whom in ((nobody, "Nobody"), (unknown, "an unknown hoster")):
        row = desk.row(notice_id)
        assert (row.state, row.last_error) == ("open", f"no abuse contact for {whom}")
        assert [kind for kind, _, _ in desk.events(notice_id)] == ["composed", "delivery-failed"]
        assert deliveries_of(desk.engine, notice_id) == []


def test_a_notice_that_cannot_be_composed_waits_with_the_reason(desk: Desk) -> None:
    broken = desk.add(ALPHA, state=NoticeState.QUEUED, urls=[], next_action_at=T0)
    assert desk.notices.compose_queued() == 1  # desk.queued only
    row = desk.row(broken)
    assert row.state == "queued" and row.last_error.startswith("cannot be composed: urls:")
    assert row.next_action_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=30)
    assert desk.events(broken) == [] and deliveries_of(desk.engine, broken) == []


def test_a_notice_whose_e_mail_cannot_be_made_waits_and_the_others_go_on(desk: Desk) -> None:
    # a reference with a line break, as an order stored before references were checked: the
    # e-mail's subject cannot carry it
    broken = desk.add(ALPHA, state=NoticeState.QUEUED, kind=NoticeKind.ORDER,
                      reference="O-1\r\nBcc: x@example.org", legal_basis="Art 14",
                      next_action_at=T0)  # fmt: skip
    after = desk.add(BETA, state=NoticeState.QUEUED, next_action_at=T0)
    assert desk.notices.compose_queued() == 2  # desk.queued and the one after the broken one
    row = desk.row(broken)
    assert row.state == "queued" and row.last_error.startswith("cannot be composed: ")
    assert row.next_action_at.replace(tzinfo=UTC) == T0 + timedelta(minutes=30)
    assert desk.events(broken) == [] and deliveries_of(desk.engine, broken) == []
    assert desk.row(after).state == "open"


def flipped(pdq: str, bits: int) -> str:
    return f"{int(pdq, 16) ^ ((1 << bits) - 1):064x}"


def test_content_back_at_a_hoster_that_removed_it_is_a_reappearance(desk: Desk) -> None:
    first, second = item("https://site.example/r1.jpg", 1), item("https://site.example/r2.jpg", 2)
    pdq = second["hashes"]["pdq"]
    gone = desk.add(ALPHA, state=NoticeState.REMOVED, items=[first], verified_at=T0)
    gone_pdq = desk.add(ALPHA, state=NoticeState.REMOVED, verified_at=T0,
                        items=[{**second, "hashes": {"pdq": pdq}}])  # fmt: skip
    exact = desk.add(ALPHA, state=NoticeState.QUEUED, items=[
        {**first, "url": "https://other.example/x.jpg"}])  # fmt: skip
    near = desk.add(ALPHA, state=NoticeState.QUEUED, items=[
        {"url": "https://site.example/n.jpg", "kind": "image", "labels": {},
         "hashes": {"pdq": flipped(pdq, 31), "md5": "0" * 32}}])  # fmt: skip
    far = desk.add(ALPHA, state=NoticeState.QUEUED, items=[
        {"url": "https://site.example/f.jpg", "kind": "image", "labels": {},
         "hashes": {"pdq": flipped(pdq, 32)}}])  # fmt: skip
    elsewhere = desk.add(BETA, state=NoticeState.QUEUED, items=[first])  # another hoster
    desk.notices.compose_queued()
    assert desk.row(exact).previous_id == gone
    assert desk.row(near).previous_id == gone_pdq
    assert desk.row(far).previous_id is None and desk.row(elsewhere).previous_id is None
    assert desk.events(gone) == [("reappeared", "hotline", {
        "notice": exact, "url": "https://other.example/x.jpg", "signal": "sha256"})]  # fmt: skip
    assert desk.events(gone_pdq) == [("reappeared", "hotline", {
        "notice": near, "url": "https://site.example/n.jpg", "signal": "pdq"})]  # fmt: skip
    assert desk.audited(gone) == [("takedown.reappeared", "hotline")]
    assert desk.notices.get(exact).notice.previous_id == gone


def test_composed_notices_reach_the_abuse_desk_by_smtp(engine: Engine) -> None:
    with smtp_server() as mailbox:
        desk = Desk(engine, smtp=SmtpSettings(mailbox.host, mailbox.port))
        desk.notices.compose_queued()
        assert desk.deliveries.deliver_due() >= 1
        assert mailbox.wait_for(1)
        [message] = [m for m in mailbox.messages if m["To"] == ALPHA.abuse_email]
        [attached] = [part for part in message.iter_attachments()
                      if part.get_filename() == "notice.json"]  # fmt: skip
        document = json.loads(attached.get_content())
        assert document["report_id"] == desk.row(desk.queued).report_id
        assert signing.verify(document, keys.public_hex(desk.key))
        assert desk.row(desk.queued).sent_at is not None


def test_an_operator_resends_an_open_notice_to_the_contacts_known_now(engine: Engine) -> None:
    moved = hoster("Alpha", "198.51.100.0/25")  # its API gone, its e-mail the same
    desk = Desk(engine)
    desk.notices.compose_queued()
    desk.notices = Notices(engine, TIMING, HosterRegistry([moved, BETA, EDGE]), SENDER,
                           desk.key, desk.deliveries, clock=desk.clock)  # fmt: skip
    before = len(deliveries_of(engine, desk.queued))
    desk.clock.move(hours=2)
    shown = desk.notices.resend(desk.queued, "analyst-1")
    added = deliveries_of(engine, desk.queued)[before:]
    assert [(d.channel, d.target) for d in added] == [("smtp", moved.abuse_email)]
    assert desk.row(desk.queued).abuse_api is None and shown.state == "open"
    assert desk.events(desk.queued)[-1] == ("resent", "analyst-1",
                                            {"deliveries": [added[0].id]})  # fmt: skip
    assert desk.audited(desk.queued)[-1] == ("takedown.resent", "analyst-1")
    with pytest.raises(NoticeRefused, match="is removed: it cannot be sent again"):
        desk.notices.resend(desk.removed, "analyst-1")
    nobody = desk.add(Hoster("Nobody", None, (), (), None, None, False))
    with pytest.raises(NoticeRefused, match="no abuse contact for Nobody"):
        desk.notices.resend(nobody, "analyst-1")


def test_a_hoster_reads_what_was_sent_to_it_not_where_else_the_hotline_turned(
    desk: Desk,
) -> None:
    with desk.engine.begin() as connection:
        for n, (purpose, target) in enumerate((("notice", "abuse@alpha.test"),
                                               ("escalation", "regulator@atkm.test"))):  # fmt: skip
            connection.execute(insert(TakedownDeliveryRow).values(
                notice_id=desk.open, purpose=purpose, step="regulator" if n else "",
                channel="smtp", target=target, payload="", idempotency_key=str(n) * 64,
                created_at=T0, attempts=0, next_attempt_at=T0, delivered_at=None,
                last_error="", reply=""))  # fmt: skip
            connection.execute(insert(TakedownEventRow).values(
                notice_id=desk.open, at=T0, kind="escalated", actor="scheduler",
                detail={"step": "regulator", "destination": "regulator@atkm.test"}))  # fmt: skip
    desk.notices.origin(desk.cdn, None, "scheduler", "198.51.100.7")
    operator, alpha = desk.notices.get(desk.open), desk.notices.get(desk.open, "Alpha")
    assert [d.target for d in operator.deliveries] == ["abuse@alpha.test", "regulator@atkm.test"]
    assert [d.target for d in alpha.deliveries] == ["abuse@alpha.test"]
    assert operator.events[0].detail["destination"] == "regulator@atkm.test"
    assert alpha.events[0].detail == {"step": "regulator"}
    [origin] = desk.notices.get(desk.cdn, "Edge CDN").events
    assert origin.detail == {"address": "198.51.100.7"}  # not the origin's hoster or notice


def test_a_hoster_reads_no_staff_identity_escalation_ticket_or_mail_server(desk: Desk) -> None:
    with desk.engine.begin() as connection:
        connection.execute(
            insert(TakedownDeliveryRow).values(
                notice_id=desk.open,
                purpose="notice",
                step="",
                channel="smtp",
                target="abuse@alpha.test",
                payload="",
                idempotency_key="n" * 64,
                created_at=T0,
                attempts=1,
                next_attempt_at=T0,
                delivered_at=None,
                last_error="mail.hotline.internal:25 refused abuse@alpha.test: 550 no",
                reply="",
            )
        )
        for purpose, ticket in (("notice", "ALPHA-1"), ("escalation", "REGULATOR-77")):
            connection.execute(
                insert(TakedownEventRow).values(
                    notice_id=desk.open,
                    at=T0,
                    kind="sent",
                    actor="scheduler",
                    detail={"channel": "api", "purpose": purpose, "ticket": ticket},
                )
            )
    desk.notices.acknowledge(desk.open, "Alpha", "key:4 (alpha desk)")
    desk.notices.withdraw(desk.open, "key:9 (Anna Analyst)", "a mistake")
    order = desk.notices.issue_order(
        ["https://a.example/o"], "Art 14", "O-3", "key:12 (ATKM, P. de Vries)", hoster="Alpha"
    )
    desk.notices.inability(order.id, "Alpha", "key:4 (alpha desk)", "not ours")
    with desk.engine.begin() as connection:
        connection.execute(insert(TakedownEventRow).values(
            notice_id=order.id, at=T0, kind="reminder", actor="key:12 (ATKM, P. de Vries)",
            detail={}))  # fmt: skip
    alpha = desk.notices.get(desk.open, "Alpha")
    assert [(e.kind, e.actor, e.detail.get("ticket")) for e in alpha.events] == [
        ("sent", "hotline", "ALPHA-1"), ("sent", "hotline", None),
        ("acknowledged", "Alpha", None), ("withdrawn", "hotline", None)]  # fmt: skip
    [delivery] = alpha.deliveries
    assert "mail.hotline.internal" not in delivery.last_error and delivery.last_error
    assert "mail.hotline.internal" in desk.notices.get(desk.open).deliveries[0].last_error
    assert "Anna" in desk.notices.get(desk.open).events[-1].actor  # the operator sees who
    ordered = desk.notices.get(order.id, "Alpha")
    assert [(e.kind, e.actor) for e in ordered.events] == [
        ("inability", "Alpha"),
        ("reminder", "authority"),
    ]
    assert "Vries" not in json.dumps(ordered.as_json()) and "key:" not in json.dumps(
        ordered.as_json())  # fmt: skip
