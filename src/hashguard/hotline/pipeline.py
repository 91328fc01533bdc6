"""The pipeline: report -> crawl -> triage -> trace -> route, for every case, on worker threads.

A case is claimed atomically (an UPDATE that names its old state, checked by its row count: of
several instances on one database exactly one crawls it), under a lease: a case whose crawler
died (or whose crawl raised) is taken again once the lease runs out, up to ``attempts``
crawls: then it is given up as ``unreachable``, with the last error. The crawl and the trace
run outside any transaction (websites and DNS are slow); what they found is written in one
transaction: the fetch records, an item per medium (``failed`` when it could not be fetched or
hashed), each item's triage, the trace, and the case ``triaged`` (or ``unreachable`` when the
page itself failed). Items left queued are triaged again once written (an assessment made
while the case was crawled re-triaged the queue without them). A case whose items are all
decided is ``assessed`` and routed at once; one that waits for analysts is routed when the last
of them decides (``Assessments`` marks it, the workers route it, tracing its host again: where
it is hosted now). A case that cannot be routed (no trace, a rule or a referral failing) keeps
the error and waits ``retry`` before it is tried again; the workers go on with the others.

Routing: the legality per country is illegal where any item is illegal; ``route(trace,
legality)`` says where the case goes; its actions become a queued notice to the hoster
("notice"), a report to the police ("police"), a referral to the partner hotline ("referral")
or a report to the international endpoint ("international"), each in the outbox. Nothing
illegal: a route of kind none, no actions. The case is then ``routed``, audited. A closed case
reported again (intake) or referred again (referrals) comes back; its next route covers the
items made since its last one.
"""

import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, insert, or_, select, update

from hashguard.hotline import outbox
from hashguard.hotline.assessment import ILLEGAL, mark_assessed
from hashguard.hotline.crawl import Crawl, FetchRecord
from hashguard.hotline.hashes import signal_hashes, stored
from hashguard.hotline.model import DECIDED, CaseState, ItemState, OutboxKind
from hashguard.hotline.routing import Route
from hashguard.hotline.trace import Trace, Tracer
from hashguard.hotline.triage import Triage, Verdict, query_of
from hashguard.media.budget import DecodeBusy
from hashguard.store import audit
from hashguard.store.tables import (
    HotlineCaseRow,
    HotlineFetchRow,
    HotlineItemRow,
    HotlineRouteRow,
    HotlineTraceRow,
    TakedownNoticeRow,
)

log = logging.getLogger("hashguard.hotline")

ACTOR: Final = "hotline"
OK: Final = "ok"
NOT_ILLEGAL: Final = "not-illegal"
POLICE: Final = "police"
INTERNATIONAL: Final = "international"


# (case URL, items, trace, route, the case's reference here) -> the referral's JSON
ReferralPayload = Callable[[str, Sequence[Mapping[str, Any]], Any, Any, str], dict[str, Any]]


# What a case with nothing illegal gets: no route asked, no actions.
_NO_ROUTE: Final = Route("none", "", (), "no item was assessed illegal in any country")


def _now() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        *,
        crawl: Callable[[str], Crawl],
        tracer: Tracer,
        route: Callable[[Any, Mapping[str, str]], Route],
        triage: Triage,
        home: str,
        referral_payload: ReferralPayload,
        destination_of: outbox.DestinationOf | None = None,
        police: str = POLICE,
        international: str = INTERNATIONAL,
        clock: Callable[[], datetime] = _now,
        lease: timedelta = timedelta(minutes=5),
        attempts: int = 3,
        retry: timedelta = timedelta(minutes=5),
        threads: int = 2,
        poll: float = 5.0,
    ) -> None:
        """``destination_of`` resolves the outbox's targets (without it nothing is delivered
        here); ``police`` and ``international`` name those endpoints as outbox targets;
        ``attempts``: crawls of a case begun before it is given up as unreachable (a crawler
        that dies or raises leaves it to be taken again when its lease runs out); ``retry``:
        how long a case whose routing failed waits before it is routed again; ``poll``:
        seconds between looks for work when nothing wakes the workers."""
        self.engine = engine
        self.crawl = crawl
        self.tracer = tracer
        self.route = route
        self.triage = triage
        self.home = home.upper()
        self.referral_payload = referral_payload
        self.destination_of = destination_of
        self.police = police
        self.international = international
        self.clock = clock
        self.lease = lease
        self.attempts = attempts
        self.retry = retry
        self.threads = threads
        self.poll = poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []

    # --- one pass ---------------------------------------------------------------------------

    def run_once(self, limit: int = 10) -> int:
        """Route the cases assessed meanwhile, then claim, crawl, triage and trace up to
        ``limit`` due cases (routing those decided at once); the number of cases handled."""
        done = 0
        while done < limit and self._route_one():
            done += 1
        while done < limit:
            claimed = self._claim()
            if claimed is None:
                break
            self._process(*claimed)
            done += 1
        return done

    def _claim(self) -> tuple[int, str, datetime] | None:
        """A due case claimed for this instance: (id, URL, lease end), or None. A case whose
        crawls ran out of attempts is given up (``unreachable``, with the last error)."""
        cases = HotlineCaseRow.__table__
        now = self.clock()
        expired = (cases.c.state == CaseState.CRAWLING.value) & (cases.c.lease_until < now)
        due = or_(cases.c.state == CaseState.NEW.value, expired)
        with self.engine.connect() as connection:
            candidates = connection.execute(
                select(cases.c.id, cases.c.url, cases.c.state, cases.c.lease_until,
                       cases.c.attempts, cases.c.last_error)
                .where(due).order_by(cases.c.id).limit(20)
            ).all()  # fmt: skip
        until = now + self.lease
        for case in candidates:
            held = (cases.c.lease_until.is_(None) if case.lease_until is None
                    else cases.c.lease_until == case.lease_until)  # fmt: skip
            claimed = cases.c.id == case.id, cases.c.state == case.state, held
            if case.attempts >= self.attempts:
                self._give_up(case, claimed, now)
                continue
            with self.engine.begin() as connection:
                taken = connection.execute(
                    update(HotlineCaseRow)
                    .where(*claimed)
                    .values(state=CaseState.CRAWLING.value, lease_until=until, updated_at=now,
                            attempts=cases.c.attempts + 1)
                ).rowcount  # fmt: skip
            if taken == 1:
                return int(case.id), str(case.url), until
        return None

    def _give_up(self, case: Any, claimed: Sequence[Any], now: datetime) -> None:
        why = (f"given up after {case.attempts} crawls that did not finish"
               + (f"; the last: {case.last_error}" if case.last_error else ""))  # fmt: skip
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(HotlineCaseRow).where(*claimed)
                .values(state=CaseState.UNREACHABLE.value, lease_until=None, updated_at=now,
                        last_error=why[:1000])
            ).rowcount  # fmt: skip
            if taken == 1:
                log.warning("hotline case %d: %s", case.id, why)
                audit.append(connection, ACTOR, "hotline.crawled", f"case:{case.id}",
                             {"state": CaseState.UNREACHABLE.value, "items": 0,
                              "page": "gave-up", "attempts": case.attempts})  # fmt: skip

    def _process(self, case_id: int, url: str, lease: datetime) -> None:
        try:
            crawled = self.crawl(url)
        except DecodeBusy as busy:  # the server was busy, not the page: tried again later,
            log.warning("hotline case %d: not crawled now: %s", case_id, busy)
            self._failed(case_id, lease, f"not crawled now: {busy}", counted=False)
            return  # and this crawl is not one of the attempts the case is given
        except Exception as error:  # a crawler bug: the case is tried again after its lease
            log.exception("hotline case %d: the crawl failed", case_id)
            self._failed(case_id, lease, f"the crawl failed: {error}")
            return
        trace = self._trace(case_id, url)
        records = list(crawled.items)
        queries = [query_of(r.hashes) if r.outcome == OK else None for r in records]
        hashed = [index for index, query in enumerate(queries) if query is not None]
        found = self.triage.decide_all([query for query in queries if query is not None])
        verdicts = dict(zip(hashed, found, strict=True))
        now = self.clock()
        cases = HotlineCaseRow.__table__
        with self.engine.begin() as connection:
            held = connection.execute(
                update(HotlineCaseRow)
                .where(cases.c.id == case_id, cases.c.state == CaseState.CRAWLING.value,
                       cases.c.lease_until == lease)
                .values(updated_at=now)
            ).rowcount  # fmt: skip
            if held != 1:  # the lease ran out and another instance took the case
                log.warning("hotline case %d: lost its claim while crawling; left to the other",
                            case_id)  # fmt: skip
                return
            page = self._fetch(connection, case_id, crawled.page)
            queued: list[int] = []
            for index, record in enumerate(records):
                # a reported URL that is itself media: its one fetch is the page and the item
                fetch_id = (page if record is crawled.page
                            else self._fetch(connection, case_id, record))  # fmt: skip
                item_id = int(connection.execute(insert(HotlineItemRow).values(
                    case_id=case_id, fetch_id=fetch_id, url=record.url, kind=record.kind,
                    hashes=stored(record.hashes, record.derived, record.stability),
                    quality=record.quality, state=ItemState.QUEUED.value, assessment_id=None,
                    labels={}, legality={}, triage={}, created_at=now, decided_at=None,
                )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip
                verdict = verdicts.get(index, Verdict(ItemState.FAILED))
                self.triage.record(connection, item_id, verdict, now)
                if verdict.state is ItemState.QUEUED:
                    queued.append(item_id)
            if trace is not None:
                self._store_trace(connection, case_id, trace)
            reachable = crawled.page.outcome == OK
            state = CaseState.TRIAGED if reachable else CaseState.UNREACHABLE
            connection.execute(
                update(HotlineCaseRow).where(cases.c.id == case_id)
                .values(state=state.value, lease_until=None, updated_at=now,
                        last_error="" if reachable else crawled.page.detail)
            )  # fmt: skip
            audit.append(connection, ACTOR, "hotline.crawled", f"case:{case_id}",
                         {"state": state.value, "items": len(records),
                          "page": crawled.page.outcome})  # fmt: skip
        if queued:  # an assessment made since they were matched re-triaged the queue without them
            self.triage.queued(queued)
        if reachable and mark_assessed(self.engine, case_id):
            self.route_case(case_id, trace)

    def _failed(self, case_id: int, lease: datetime, why: str, counted: bool = True) -> None:
        """A crawl that did not finish: the case is tried again once its lease runs out, and
        given up after ``attempts`` counted ones."""
        cases = HotlineCaseRow.__table__
        attempts = cases.c.attempts if counted else cases.c.attempts - 1
        with self.engine.begin() as connection:
            connection.execute(
                update(HotlineCaseRow)
                .where(cases.c.id == case_id, cases.c.lease_until == lease)
                .values(last_error=why[:1000], updated_at=self.clock(), attempts=attempts)
            )  # fmt: skip

    def _trace(self, case_id: int, url: str) -> Any:
        try:
            return self.tracer.trace(url)
        except Exception:  # a tracer bug: the case goes on untraced (routing traces again)
            log.exception("hotline case %d: the trace failed", case_id)
            return None

    @staticmethod
    def _fetch(connection: Connection, case_id: int, record: FetchRecord) -> int:
        return int(connection.execute(insert(HotlineFetchRow).values(
            case_id=case_id, url=record.url, final_url=record.final_url, at=record.at,
            status=record.status, content_type=record.content_type[:200], size=record.size,
            kind=record.kind, outcome=record.outcome, detail=record.detail,
            hashes=dict(record.hashes), quality=record.quality,
        )).inserted_primary_key[0])  # type: ignore[index]  # fmt: skip

    @staticmethod
    def _store_trace(connection: Connection, case_id: int, trace: Trace) -> None:
        connection.execute(insert(HotlineTraceRow).values(
            case_id=case_id, at=trace.at, country=trace.country,
            hoster=trace.hoster.name if trace.hoster is not None else None, cdn=trace.cdn,
            trace=trace.as_json(),
        ))  # fmt: skip

    # --- routing ----------------------------------------------------------------------------

    def _route_one(self) -> bool:
        """Route the oldest case assessed but not routed yet (and not waiting to be tried
        again); whether there was one."""
        cases = HotlineCaseRow.__table__
        now = self.clock()
        with self.engine.connect() as connection:
            case_id = connection.execute(
                select(cases.c.id)
                .where(cases.c.state == CaseState.ASSESSED.value,
                       or_(cases.c.lease_until.is_(None), cases.c.lease_until <= now))
                .order_by(cases.c.updated_at, cases.c.id).limit(1)
            ).scalar_one_or_none()  # fmt: skip
        if case_id is None:
            return False
        self.route_case(int(case_id))
        return True

    def route_case(self, case_id: int, trace: Any = None) -> bool:
        """Route the ``assessed`` case (traced again without ``trace``): the items decided
        since it was last routed; whether this call routed it (another instance may have). A
        case that cannot be routed now keeps its error and is tried again after ``retry``."""
        try:
            return self._route(case_id, trace)
        except Exception as error:  # one case's fault never stops the others
            log.exception("hotline case %d: routing failed", case_id)
            self._route_failed(case_id, f"routing failed: {error}")
            return False

    def _route(self, case_id: int, trace: Any) -> bool:
        cases = HotlineCaseRow.__table__
        with self.engine.connect() as connection:
            case = connection.execute(select(cases).where(cases.c.id == case_id)).one()
            items = _items(connection, case_id)
        if case.state != CaseState.ASSESSED.value:
            return False
        traced_now = trace is None
        if traced_now:
            trace = self._trace(case_id, case.url)
        legality = _legality(items)
        illegal = [item for item in items if ILLEGAL in item.legality.values()]
        if not any(verdict == ILLEGAL for verdict in legality.values()):
            decided = _NO_ROUTE
        elif trace is None:
            self._route_failed(case_id, "the host could not be traced")
            return False
        else:
            decided = self.route(trace, legality)
        payload_items = [_referred(item) for item in illegal]
        referral = None
        if "referral" in decided.actions:
            referral = self.referral_payload(case.url, payload_items, trace, decided,
                                             f"case-{case_id}")  # fmt: skip
        now = self.clock()
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(HotlineCaseRow)
                .where(cases.c.id == case_id, cases.c.state == CaseState.ASSESSED.value)
                .values(state=CaseState.ROUTED.value, updated_at=now, last_error="",
                        lease_until=None)
            ).rowcount  # fmt: skip
            if taken != 1:
                return False
            if traced_now and trace is not None:
                self._store_trace(connection, case_id, trace)
            connection.execute(insert(HotlineRouteRow).values(
                case_id=case_id, at=now, kind=decided.kind, target=decided.target,
                actions=list(decided.actions), reason=decided.reason,
            ))  # fmt: skip
            report = {"url": case.url, "items": payload_items,
                      "trace": trace.as_json() if trace is not None else None,
                      "reason": decided.reason, "reference": f"case-{case_id}"}  # fmt: skip
            for action in decided.actions:
                if action == "notice":
                    self._notice(connection, case, illegal, trace, now)
                elif action == "police":
                    outbox.enqueue(connection, case_id, OutboxKind.POLICE, self.police, report)
                elif action == "referral" and referral is not None:
                    outbox.enqueue(connection, case_id, OutboxKind.REFERRAL, decided.target,
                                   referral)  # fmt: skip
                elif action == "international":
                    outbox.enqueue(connection, case_id, OutboxKind.INTERNATIONAL,
                                   decided.target or self.international, report)  # fmt: skip
                else:
                    log.warning("hotline case %d: unknown routing action %r", case_id, action)
            audit.append(connection, ACTOR, "hotline.routed", f"case:{case_id}",
                         {"kind": decided.kind, "target": decided.target,
                          "actions": list(decided.actions), "reason": decided.reason,
                          "legality": legality})  # fmt: skip
        if decided.actions:
            self._wake.set()  # the outbox has work
        return True

    def _route_failed(self, case_id: int, why: str) -> None:
        """Keep why, and leave the case until ``retry`` has passed (its other work goes on)."""
        cases = HotlineCaseRow.__table__
        now = self.clock()
        with self.engine.begin() as connection:
            connection.execute(
                update(HotlineCaseRow)
                .where(cases.c.id == case_id, cases.c.state == CaseState.ASSESSED.value)
                .values(last_error=why[:1000], updated_at=now, lease_until=now + self.retry)
            )  # fmt: skip

    @staticmethod
    def _notice(
        connection: Connection,
        case: Any,
        illegal: Sequence[Any],
        trace: Trace,
        now: datetime,
    ) -> None:
        """Queue the notice to the case's hoster (the CDN in front of it, when there is one):
        its URLs and items (hashes and labels, never content); ``hashguard.takedown`` composes,
        signs and sends it."""
        hoster = trace.hoster
        urls = list(dict.fromkeys([*(item.url for item in illegal), case.url]))
        items = [{"url": item.url, "kind": item.kind, "hashes": signal_hashes(item.hashes),
                  "labels": dict(item.labels)} for item in illegal]  # fmt: skip
        connection.execute(insert(TakedownNoticeRow).values(
            case_id=case.id, kind="cdn" if trace.cdn else "notice", parent_id=None,
            previous_id=None, hoster=hoster.name if hoster is not None else "",
            country=trace.country,
            abuse_email=hoster.abuse_email if hoster is not None else None,
            abuse_api=hoster.abuse_api if hoster is not None else None,
            cdn=trace.cdn, urls=urls, items=items, legal_basis="", reference=f"case-{case.id}",
            issued_by="hotline", state="queued", report_id=str(uuid.uuid4()), document="",
            reported_at=case.created_at, created_at=now, dispute_reason="", outcome="",
            outcome_reason="", renotices=0, escalations=0, rechecks=0, next_action_at=now,
            last_error="",
        ))  # fmt: skip

    # --- the workers ------------------------------------------------------------------------

    def wake(self) -> None:
        """A report arrived or a case was assessed: the workers look now."""
        self._wake.set()

    def start(self) -> None:
        """Start the worker threads (and the outbox's, when it has destinations)."""
        if self._workers:
            return
        self._stop.clear()
        for number in range(self.threads):
            worker = threading.Thread(target=self._work, name=f"hashguard-hotline-{number}",
                                      daemon=True)  # fmt: skip
            self._workers.append(worker)
        if self.destination_of is not None:
            delivery = threading.Thread(target=self._deliver, name="hashguard-hotline-outbox",
                                        daemon=True)  # fmt: skip
            self._workers.append(delivery)
        for worker in self._workers:
            worker.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers: each ends after the case in its hands (within ``timeout``; a
        case left crawling is taken again when its lease runs out)."""
        self._stop.set()
        self._wake.set()
        for worker in self._workers:
            worker.join(timeout)
        self._workers = []

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.run_once(1) > 0
            except Exception:  # a lost database: keep trying
                log.exception("the hotline pipeline failed; trying again")
                worked = False
            if not worked:
                self._wake.wait(self.poll)
                self._wake.clear()

    def _deliver(self) -> None:
        assert self.destination_of is not None
        while not self._stop.is_set():
            try:
                outbox.deliver_due(self.engine, self.destination_of, self.clock())
            except Exception:
                log.exception("the hotline outbox failed; trying again")
            self._stop.wait(self.poll)


def _items(connection: Connection, case_id: int) -> list[Any]:
    """The case's decided items not yet routed: those made since its last route."""
    table, routes = HotlineItemRow.__table__, HotlineRouteRow.__table__
    routed = connection.execute(
        select(func.max(routes.c.at)).where(routes.c.case_id == case_id)
    ).scalar_one_or_none()  # fmt: skip
    query = select(table).where(table.c.case_id == case_id,
                                table.c.state.in_([s.value for s in DECIDED]))  # fmt: skip
    if routed is not None:
        query = query.where(table.c.created_at > routed)
    return list(connection.execute(query.order_by(table.c.id)).all())


def _legality(items: Sequence[Any]) -> dict[str, str]:
    """Per country: illegal where any item is illegal, else not illegal."""
    legality: dict[str, str] = {}
    for item in items:
        for country, verdict in item.legality.items():
            if verdict == ILLEGAL or country not in legality:
                legality[country] = ILLEGAL if verdict == ILLEGAL else NOT_ILLEGAL
    return legality


def _referred(item: Any) -> dict[str, Any]:
    """An item as a referral or a report carries it: never content."""
    if item.assessment_id is not None:
        assessment = f"assessment:{item.assessment_id}"
    else:
        assessment = f"list:{item.triage.get('list', '')}"
    return {"url": item.url, "hashes": signal_hashes(item.hashes), "labels": dict(item.labels),
            "legality": dict(item.legality), "assessment": assessment}  # fmt: skip
