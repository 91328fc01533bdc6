"""What drives every notice after it is made: composing the queued ones, re-checking the URLs
after a hoster's claim and at the deadline, verifying removal (with the checks as evidence),
re-notices while the content stays, the escalation ladder, an order's reminders, the re-checks
after removal (reappearance: a new notice) and the status back to a partner hotline whose
referral the case came from.

A pass (``tick``) takes the notices due now (``next_action_at``, an indexed column: a pass
reads only the due rows however many are open), each claimed by a conditional update (its
``next_action_at`` and ``lease_until`` moved to the end of the lease, where they still hold the
values read), so one instance of several does each notice's work; work whose lease ran out
meanwhile is rolled back (the other instance does it). The URLs are fetched outside any
transaction; what they showed is written in one, with the notice's new state, its events, its
deliveries and the audit entries. Every time is the injected clock's.

Per due notice (``open``):

- before the deadline, a check of every URL at each of ``timing.checks`` (1, 6, 12 hours after
  sending, half an hour before the deadline; purpose ``scheduled``), once per slot however
  late the pass; a notice without items (an order) takes each URL's baseline at its first
  check, at once when composed (items marked ``baseline``), and is compared with it later.
  A baseline is taken only while the order is not delivered (``sent_at`` unset): afterwards
  the hoster may have acted, and its "removed" page must not become the baseline. A URL left
  without one (its check before delivery was inconclusive) never gets one: it reads as
  ``unverifiable`` while it answers, ``gone`` when it is;
- a claim of removal not yet checked, or the deadline passed (the one the signed notice
  states, delivered or not): every URL checked (purpose ``claimed``, ``deadline``, then
  ``renotice``); all gone or changed, at any check: ``verified``, state ``removed``, re-checks
  scheduled; otherwise after the deadline, whether the checks found the content, could not
  tell (inconclusive: looked at again after ``timing.retry``) or can never tell
  (unverifiable), a re-notice every ``timing.renotice`` (the first at the deadline) and each
  ladder step whose ``after`` has passed since the deadline, once;
- an order without an outcome: a reminder at half its time and at its deadline.

Nothing is enqueued for a notice whose state changed while its URLs were checked (withdrawn,
verified by another instance): the pass's work is rolled back. The lease is renewed while the
URLs are checked (many URLs take long), so no other instance takes the notice meanwhile.

A ``removed`` notice is checked again ``timing.rechecks`` after its verification; content found
again is a reappearance: a new queued notice (``previous_id`` the removed one) and a
``reappeared`` event on the old one. A re-check never takes a baseline: an order's URL without
one (gone when the order was issued) that answers now (a parking page) is ``inconclusive``, not
a reappearance; as it can never become conclusive, the re-checks go on at their times rather
than being tried again.
"""

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Row, case, func, insert, select, update

from hashguard.hotline import outbox
from hashguard.hotline.crawl import Crawl
from hashguard.hotline.hosters import HosterRegistry
from hashguard.hotline.model import OutboxKind
from hashguard.store.database import for_update
from hashguard.store.tables import (
    HotlineCaseReportRow,
    HotlineCaseRow,
    HotlineReportRow,
    TakedownCheckRow,
    TakedownEventRow,
    TakedownNoticeRow,
    utc,
)
from hashguard.takedown import notice as documents
from hashguard.takedown import signing
from hashguard.takedown.ladder import UPSTREAM
from hashguard.takedown.model import (
    REMOVED_OUTCOMES,
    Channel,
    CheckOutcome,
    CheckPurpose,
    Clock,
    DeliveryPurpose,
    EscalationStep,
    EventKind,
    NoticeKind,
    NoticeState,
    Timing,
    now,
)
from hashguard.takedown.notices import Notices, record
from hashguard.takedown.verify import Check, check

log = logging.getLogger("hashguard.takedown")

ACTOR: Final = "scheduler"
PARTNER_PREFIX: Final = "partner:"

# (connection, the notice's row, the verification's evidence, when) -> None: called in the
# transaction that verifies a notice removed (``partner_status`` tells the referring hotline).
Status = Callable[[Connection, Row[Any], Mapping[str, Any], datetime], None]


@dataclass
class Tick:
    """What one pass did, by kind of work."""

    composed: int = 0  # queued notices composed and sent
    checks: int = 0  # URLs fetched again
    verified: int = 0  # notices verified removed
    present: int = 0  # notices whose content a check found still there
    inconclusive: int = 0  # notices whose checks could not tell (looked at again later)
    renotices: int = 0
    escalations: int = 0  # ladder steps taken (failed ones included)
    reminders: int = 0  # an order's reminders
    rechecks: int = 0  # removed notices checked again
    reappeared: int = 0  # new notices for content that came back
    lost: int = 0  # notices another instance took (or changed) meanwhile
    notices: list[int] = field(default_factory=list)  # the ids handled, in order

    @property
    def handled(self) -> int:
        return len(self.notices)


class _Lost(Exception):
    """The lease ran out or the notice changed under us: roll back, the other one does it."""


@dataclass
class _Lease:
    """This instance's hold of a notice: until when (renewed while long work goes on)."""

    notice_id: int
    until: datetime


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        notices: Notices,
        deliveries: Any,
        fetch: Callable[[str], Crawl],
        timing: Timing,
        hosters: HosterRegistry,
        clock: Clock = now,
        lease: timedelta = timedelta(minutes=5),
        status: Status | None = None,
        poll: float = 1.0,
    ) -> None:
        """``fetch``: the hotline's crawl of a URL (hotline.crawl with the SSRF-safe fetcher);
        ``deliveries``: takedown.delivery.Deliveries (enqueue, deliver_due); ``status``: what
        tells the referring hotline (``partner_status``); ``poll``: seconds between passes
        of the thread."""
        self.engine = engine
        self.notices = notices
        self.deliveries = deliveries
        self.fetch = fetch
        self.timing = timing
        self.hosters = hosters
        self.clock = clock
        self.lease = lease
        self.status = status
        self.poll = poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one pass ---------------------------------------------------------------------------

    def due(self, at: datetime, limit: int) -> list[Any]:
        """The open and removed notices due at ``at`` (id, state, next_action_at), soonest
        first, at most ``limit``: read in order from the (next_action_at, state) index."""
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            return list(connection.execute(
                select(table.c.id, table.c.state, table.c.next_action_at)
                # the state as an expression: else SQLite takes the (state, deadline) index and
                # sorts every open notice instead of walking (next_action_at, state) in order
                .where(table.c.next_action_at <= at,
                       table.c.state.concat("").in_([NoticeState.OPEN.value,
                                                     NoticeState.REMOVED.value]))
                .order_by(table.c.next_action_at, table.c.id)
                .limit(limit)
            ).all())  # fmt: skip

    def tick(self, limit: int = 500) -> Tick:
        """Compose the queued notices, then do the work of up to ``limit`` due notices."""
        done = Tick()
        done.composed = self.notices.compose_queued(limit)
        due = self.due(self.clock(), limit)
        for candidate in due:
            until = self._claim(candidate)
            if until is None:
                done.lost += 1
                continue
            try:
                self._work(_Lease(int(candidate.id), until), done)
            except _Lost:
                done.lost += 1
            except Exception:  # one notice's fault never stops the others; its lease runs out
                log.exception("takedown notice %d: the scheduler failed", candidate.id)
                continue
            done.notices.append(int(candidate.id))
        return done

    def run_once(self, limit: int = 500) -> Tick:
        """A pass, then the deliveries due."""
        done = self.tick(limit)
        self.deliveries.deliver_due()
        return done

    def _claim(self, candidate: Any) -> datetime | None:
        """This instance's lease of the notice (its end), or None when another took it."""
        table = TakedownNoticeRow.__table__
        until = self.clock() + self.lease
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(TakedownNoticeRow)
                .where(table.c.id == candidate.id, table.c.state == candidate.state,
                       table.c.next_action_at == candidate.next_action_at)
                .values(lease_until=until, next_action_at=until)
            ).rowcount  # fmt: skip
        return until if taken == 1 else None

    def _work(self, lease: "_Lease", done: Tick) -> None:
        table = TakedownNoticeRow.__table__
        with self.engine.connect() as connection:
            row = connection.execute(select(table).where(table.c.id == lease.notice_id)).one()
            checks = TakedownCheckRow.__table__
            last, last_any = connection.execute(
                select(func.max(checks.c.at).filter(
                           checks.c.outcome != CheckOutcome.INCONCLUSIVE.value),
                       func.max(checks.c.at))
                .where(checks.c.notice_id == lease.notice_id)
            ).one()  # fmt: skip
        last_conclusive = utc(last) if last is not None else None
        last_check = utc(last_any) if last_any is not None else None
        if row.state == NoticeState.REMOVED.value:
            self._recheck(row, lease, done)
        else:
            self._open(row, last_conclusive, last_check, lease, done)

    # --- an open notice ---------------------------------------------------------------------

    def _open(self, row: Row[Any], last: datetime | None, last_any: datetime | None,
              lease: "_Lease", done: Tick) -> None:  # fmt: skip
        """``last``: the notice's last conclusive check, ``last_any`` its last check."""
        at = self.clock()
        kind = NoticeKind(row.kind)
        deadline = utc(row.deadline_at) if row.deadline_at is not None else at
        # the deadline is the one the signed notice states; a notice that could not be
        # delivered by then is overdue too (the ladder exists for hosters out of reach)
        overdue = at >= deadline
        claimed = utc(row.claimed_at) if row.claimed_at is not None else None
        pending_claim = claimed is not None and (last is None or claimed > last)
        items, missing = _baseline(row)
        slots = self.timing.checks(kind, deadline)
        slot_due = any(moment <= at and (last_any is None or last_any < moment)
                       for moment in slots)  # fmt: skip
        purpose: CheckPurpose | None = None
        if pending_claim:
            purpose = CheckPurpose.CLAIMED
        elif overdue:
            since_deadline = last is not None and last >= deadline
            purpose = CheckPurpose.RENOTICE if since_deadline else CheckPurpose.DEADLINE
        elif at < deadline and (slot_due or (missing and last_any is None)):
            purpose = CheckPurpose.SCHEDULED  # an early check; an order's baseline at once
        # a baseline only before delivery; afterwards a URL without one is unverifiable
        checks = (self._check_all(row, items, missing, lease, take=row.sent_at is None,
                                  without=CheckOutcome.UNVERIFIABLE)
                  if purpose is not None else [])  # fmt: skip
        done.checks += len(checks)
        outcomes = {result.outcome for _, result in checks}
        verified = bool(checks) and outcomes <= set(REMOVED_OUTCOMES)
        present = bool(outcomes & {CheckOutcome.PRESENT, CheckOutcome.UNVERIFIABLE})
        inconclusive = CheckOutcome.INCONCLUSIVE in outcomes and not present
        document = json.loads(row.document) if row.document else {}
        with self.engine.begin() as connection:
            current = self._held(connection, row, lease)
            baselined = missing if row.sent_at is None else []
            check_ids = self._record_checks(connection, row.id, checks, purpose or
                                            CheckPurpose.SCHEDULED, baselined)  # fmt: skip
            values: dict[str, Any] = {}
            taken = _baseline_items(checks, baselined)
            if taken:
                values["items"] = [*items, *taken]
            if verified:
                self._verify(connection, row, checks, check_ids, at, values)
                done.verified += 1
                return
            if present:
                done.present += 1
            if inconclusive:
                done.inconclusive += 1
            if overdue:  # not verified: re-notices and the ladder go on, whatever the checks
                evidence = _evidence(checks, check_ids)
                values.update(self._renotice(connection, row, document, evidence, deadline, at,
                                             done))  # fmt: skip
                values.update(self._escalate(connection, row, document, evidence, deadline, at,
                                             done))  # fmt: skip
            renotices = values.get("renotices", row.renotices)
            escalations = values.get("escalations", row.escalations)
            later: list[datetime] = []
            if inconclusive and (overdue or purpose is CheckPurpose.CLAIMED):
                later.append(at + self.timing.retry)
            if at < deadline:
                later.extend(moment for moment in slots if moment > at)
                later.append(deadline)
            elif overdue:
                later.append(_next_renotice(deadline, renotices, self.timing.renotice, at))
                if escalations < len(self.timing.ladder):
                    later.append(deadline + self.timing.ladder[escalations].after)
            else:  # the deadline's time passed but the notice is not delivered: wait for it
                later.append(at + self.timing.retry)
            later.extend(self._remind(connection, row, document, deadline, at, done))
            upcoming = [moment for moment in later if moment > at]
            values["next_action_at"] = min(upcoming) if upcoming else at + self.timing.renotice
            self._release(connection, row, current, lease, values)

    def _check_all(self, row: Row[Any], items: Sequence[Mapping[str, Any]],
                   missing: Sequence[str], lease: "_Lease", *, take: bool,
                   without: CheckOutcome) -> list[tuple[str, Check]]:  # fmt: skip
        """Every URL of the notice checked, the lease renewed as the work goes on. A URL of a
        notice without items that has no baseline yet (``missing``): its baseline taken when
        ``take``, else read as ``without`` while it answers."""
        results = []
        for url in row.urls:
            self._renew(lease)
            lacking = url in missing
            otherwise = without if lacking and not take else None
            results.append((url, check(url, items, self.fetch, self.clock,
                                       baseline=lacking and take, without=otherwise)))  # fmt: skip
        return results

    def _record_checks(
        self,
        connection: Connection,
        notice_id: int,
        checks: Sequence[tuple[str, Check]],
        purpose: CheckPurpose,
        missing: Sequence[str] = (),
    ) -> list[int]:
        """Each check kept (the evidence) with its ``checked`` event; their ids. A check that
        took a URL's baseline (``missing``: the URLs without one) says so: ``baseline``, the
        number of hashed answers kept."""
        ids = []
        for url, result in checks:
            inserted = connection.execute(insert(TakedownCheckRow).values(
                notice_id=notice_id, url=url, at=result.at, purpose=purpose.value,
                outcome=result.outcome.value, status=result.status, detail=result.detail[:2000],
                hashes=[dict(h) for h in result.hashes],
            ))  # fmt: skip
            check_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            detail = {"check": check_id, "url": url, "purpose": purpose.value,
                      "outcome": result.outcome.value, "status": result.status}  # fmt: skip
            if url in missing and result.outcome is CheckOutcome.PRESENT:
                detail["baseline"] = len(result.hashes)
            record(connection, notice_id, EventKind.CHECKED, ACTOR, detail, result.at)
            ids.append(check_id)
        return ids

    def _verify(
        self,
        connection: Connection,
        row: Row[Any],
        checks: Sequence[tuple[str, Check]],
        check_ids: Sequence[int],
        at: datetime,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Removal verified by the checks: state removed, re-checks scheduled, the referring
        partner told; ``values`` written too."""
        evidence = _evidence(checks, check_ids)
        first = self.timing.rechecks[0] if self.timing.rechecks else None
        changed = connection.execute(
            update(TakedownNoticeRow)
            .where(TakedownNoticeRow.id == row.id, TakedownNoticeRow.state == row.state)
            .values(state=NoticeState.REMOVED.value, verified_at=at, lease_until=None,
                    next_action_at=at + first if first is not None else None, rechecks=0,
                    last_error="", **(values or {}))
        ).rowcount  # fmt: skip
        if changed != 1:
            raise _Lost()
        record(connection, row.id, EventKind.VERIFIED, ACTOR, evidence, at)
        if self.status is not None and row.case_id is not None:
            self.status(connection, row, evidence, at)

    def _renotice(
        self,
        connection: Connection,
        row: Row[Any],
        document: Mapping[str, Any],
        evidence: Mapping[str, Any],
        deadline: datetime,
        at: datetime,
        done: Tick,
    ) -> dict[str, Any]:
        """The next re-notice to the hoster when it is due (the first at the deadline)."""
        if at < deadline + self.timing.renotice * row.renotices:
            return {}
        number = row.renotices + 1
        sent = self._send(connection, row, document, DeliveryPurpose.RENOTICE,
                          row.abuse_email, row.abuse_api, at, renotice=number,
                          evidence=evidence)  # fmt: skip
        record(connection, row.id, EventKind.RENOTICE, ACTOR,
               {"renotice": number, "deliveries": sent, "checks": evidence["checks"]},
               at)  # fmt: skip
        done.renotices += 1
        return {"renotices": number}

    def _escalate(
        self,
        connection: Connection,
        row: Row[Any],
        document: Mapping[str, Any],
        evidence: Mapping[str, Any],
        deadline: datetime,
        at: datetime,
        done: Tick,
    ) -> dict[str, Any]:
        """Every ladder step not yet taken whose time since the deadline has come, in order."""
        taken = row.escalations
        ladder = self.timing.ladder
        while taken < len(ladder) and at >= deadline + ladder[taken].after:
            step = ladder[taken]
            detail: dict[str, Any] = {"step": step.name, "destination": step.destination}
            email, api, problem = self._destination(row, step)
            if problem:
                detail["error"] = problem
                detail["deliveries"] = []
            else:
                detail["deliveries"] = self._send(
                    connection, row, document, DeliveryPurpose.ESCALATION, email, api, at,
                    step=step.name, evidence=evidence)  # fmt: skip
            record(connection, row.id, EventKind.ESCALATED, ACTOR, detail, at)
            done.escalations += 1
            taken += 1
        return {"escalations": taken} if taken != row.escalations else {}

    def _destination(self, row: Row[Any], step: EscalationStep) -> tuple[str | None, str | None,
                                                                         str]:  # fmt: skip
        """(e-mail address, API URL, why neither) of ``step`` for the notice's hoster."""
        if step.destination != UPSTREAM:
            if "://" in step.destination:
                return None, step.destination, ""
            return step.destination, None, ""
        hoster = self.hosters.named(row.hoster)
        if hoster is None:
            return None, None, f"the registry of hosters does not name {row.hoster!r}"
        if not hoster.upstream:
            return None, None, f"the registry names no upstream for {row.hoster}"
        upstream = self.hosters.named(hoster.upstream)
        if upstream is None or not (upstream.abuse_email or upstream.abuse_api):
            return None, None, (f"{hoster.upstream}, the upstream of {row.hoster}, has no abuse "
                                "contact")  # fmt: skip
        return upstream.abuse_email, upstream.abuse_api, ""

    def _remind(
        self,
        connection: Connection,
        row: Row[Any],
        document: Mapping[str, Any],
        deadline: datetime,
        at: datetime,
        done: Tick,
    ) -> list[datetime]:
        """An order without an outcome: its reminder when one is due (at half its time, at its
        deadline); the times of those still to come."""
        if row.kind != NoticeKind.ORDER.value or row.outcome:
            return []
        times = self.timing.reminders(deadline)
        events = TakedownEventRow.__table__
        sent = connection.execute(
            select(func.count()).select_from(events)
            .where(events.c.notice_id == row.id, events.c.kind == EventKind.REMINDER.value)
        ).scalar_one()  # fmt: skip
        slot = sum(1 for moment in times if moment <= at)  # reminders due by now
        if slot > sent:
            deliveries = self._send(connection, row, document, DeliveryPurpose.REMINDER,
                                    row.abuse_email, row.abuse_api, at)  # fmt: skip
            for number in range(sent + 1, slot + 1):  # a late pass sends one for the slots missed
                record(connection, row.id, EventKind.REMINDER, ACTOR,
                       {"reminder": number, "deliveries": deliveries if number == slot else []},
                       at)  # fmt: skip
            done.reminders += 1
        return [moment for moment in times if moment > at]

    def _send(
        self,
        connection: Connection,
        row: Row[Any],
        document: Mapping[str, Any],
        purpose: DeliveryPurpose,
        email: str | None,
        api: str | None,
        at: datetime,
        *,
        renotice: int = 0,
        step: str = "",
        evidence: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Deliveries of ``document`` for ``purpose`` by e-mail and to the API; their ids."""
        sent = []
        if email:
            message = documents.email(document, purpose, to=email, sender=self.notices.sender,
                                      renotice=renotice, step=step, evidence=evidence)  # fmt: skip
            sent.append(self.deliveries.enqueue(connection, row.id, purpose, Channel.SMTP, email,
                                                message.as_string(), step=step, at=at))  # fmt: skip
        if api:
            body = documents.api_body(document, purpose, renotice=renotice, step=step,
                                      evidence=evidence)  # fmt: skip
            sent.append(self.deliveries.enqueue(connection, row.id, purpose, Channel.API, api,
                                                json.dumps(body, sort_keys=True), step=step,
                                                at=at))  # fmt: skip
        return [int(ident) for ident in sent]

    # --- a removed notice -------------------------------------------------------------------

    def _recheck(self, row: Row[Any], lease: "_Lease", done: Tick) -> None:
        items, missing = _baseline(row)
        checks = self._check_all(row, items, missing, lease, take=False,
                                 without=CheckOutcome.INCONCLUSIVE)  # fmt: skip
        done.checks += len(checks)
        done.rechecks += 1
        at = self.clock()
        outcomes = {result.outcome for _, result in checks}
        verified_at = utc(row.verified_at) if row.verified_at is not None else at
        with self.engine.begin() as connection:
            current = self._held(connection, row, lease)
            check_ids = self._record_checks(connection, row.id, checks, CheckPurpose.RECHECK)
            if CheckOutcome.PRESENT in outcomes:
                new = self._reappeared(connection, row, _evidence(checks, check_ids), at)
                done.reappeared += 1
                log.info("takedown notice %d: content back, new notice %d", row.id, new)
                self._release(connection, row, current, lease, {"next_action_at": None})
                return
            # a URL without a baseline can never tell: the re-checks go on at their times
            telling = {result.outcome for url, result in checks if url not in missing}
            if outcomes <= set(REMOVED_OUTCOMES) or (
                    outcomes <= {*REMOVED_OUTCOMES, CheckOutcome.INCONCLUSIVE}
                    and telling <= set(REMOVED_OUTCOMES)):  # fmt: skip
                if not outcomes <= set(REMOVED_OUTCOMES):
                    done.inconclusive += 1
                done_count = row.rechecks + 1
                values: dict[str, Any] = {"rechecks": done_count}
                following = self.timing.rechecks[done_count:]
                values["next_action_at"] = verified_at + following[0] if following else None
            else:  # inconclusive: the same re-check again later
                done.inconclusive += 1
                values = {"next_action_at": at + self.timing.retry}
            self._release(connection, row, current, lease, values)

    def _reappeared(self, connection: Connection, row: Row[Any], evidence: Mapping[str, Any],
                    at: datetime) -> int:  # fmt: skip
        """A new queued notice for the content found again (due now); the old one says so."""
        inserted = connection.execute(insert(TakedownNoticeRow).values(
            case_id=row.case_id, kind=NoticeKind.NOTICE.value if row.kind == NoticeKind.ORDER.value
            else row.kind, parent_id=row.parent_id, previous_id=row.id, hoster=row.hoster,
            country=row.country, abuse_email=row.abuse_email, abuse_api=row.abuse_api,
            cdn=row.cdn, urls=list(row.urls), items=list(row.items),
            legal_basis=row.legal_basis, reference=row.reference, issued_by=ACTOR,
            state=NoticeState.QUEUED.value, report_id=str(uuid.uuid4()), document="",
            reported_at=at, created_at=at, dispute_reason="", outcome="", outcome_reason="",
            renotices=0, escalations=0, rechecks=0, next_action_at=at, last_error="",
        ))  # fmt: skip
        new = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        record(connection, row.id, EventKind.REAPPEARED, ACTOR, {"notice": new, **evidence}, at)
        return new

    # --- leases -----------------------------------------------------------------------------

    def _renew(self, lease: "_Lease") -> None:
        """Long work (a notice with many URLs) keeps its lease: extended to a full one when
        less than half of it is left; _Lost when another instance took the notice meanwhile.
        A sooner action asked for meanwhile (a claim) stays asked for."""
        at = self.clock()
        if lease.until - at > self.lease / 2:
            return
        until = at + self.lease
        table = TakedownNoticeRow.__table__
        with self.engine.begin() as connection:
            changed = connection.execute(
                update(TakedownNoticeRow)
                .where(table.c.id == lease.notice_id, table.c.lease_until == lease.until)
                .values(lease_until=until,
                        next_action_at=case((table.c.next_action_at == lease.until, until),
                                            else_=table.c.next_action_at))
            ).rowcount  # fmt: skip
        if changed != 1:
            raise _Lost()
        lease.until = until

    def _held(self, connection: Connection, row: Row[Any], lease: "_Lease") -> Any:
        """The notice, locked, while this instance still holds its lease and its state is
        the one worked on (nothing is sent for a notice removed or withdrawn meanwhile); else
        _Lost."""
        table = TakedownNoticeRow.__table__
        query = (select(table.c.id, table.c.state, table.c.lease_until, table.c.next_action_at)
                 .where(table.c.id == row.id))  # fmt: skip
        current = connection.execute(for_update(connection, query, TakedownNoticeRow.last_error,
                                                table.c.id == row.id)).one()  # fmt: skip
        if current.lease_until is None or utc(current.lease_until) != lease.until:
            raise _Lost()
        if current.state != row.state:
            raise _Lost()
        return current

    def _release(self, connection: Connection, row: Row[Any], current: Row[Any],
                 lease: "_Lease", values: dict[str, Any]) -> None:  # fmt: skip
        """Write ``values`` and end the lease; a sooner action asked for meanwhile (a claim
        of removal sets ``next_action_at`` to its time) is kept."""
        until = lease.until
        asked = current.next_action_at
        if asked is not None and utc(asked) != until and values.get("next_action_at") is not None:
            values["next_action_at"] = min(values["next_action_at"], utc(asked))
        table = TakedownNoticeRow.__table__
        changed = connection.execute(
            update(TakedownNoticeRow)
            .where(table.c.id == row.id, table.c.lease_until == until,
                   table.c.state == current.state)
            .values(lease_until=None, **values)
        ).rowcount  # fmt: skip
        if changed != 1:
            raise _Lost()

    # --- a CDN's reply ----------------------------------------------------------------------

    def reply(self, notice_id: int, text: str) -> None:
        """A hoster's API answered a delivery of notice ``notice_id`` with ``text``: a CDN
        naming the origin forwards its notice (``Notices.origin``). Raises nothing."""
        answer = documents.parse_reply(text)
        if answer.origin is None:
            return
        try:
            self.notices.origin(notice_id, None, ACTOR, answer.origin)
        except Exception as error:  # a notice not (or no longer) an open CDN notice
            log.info("takedown notice %d: origin %s not taken: %s", notice_id, answer.origin,
                     error)  # fmt: skip

    # --- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        """Run a pass every ``poll`` seconds in a thread, and deliver what is due."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hashguard-takedown",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its pass (a notice left claimed is taken again when its
        lease runs out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a lost database: keep trying
                log.exception("the takedown scheduler failed; trying again")
            self._stop.wait(self.poll)


def partner_status(key: Ed25519PrivateKey) -> Status:
    """What tells a partner hotline that a case it referred here was verified removed: a signed
    status message per referral of the case, in the hotline's outbox to the partner
    (``POST {partner}/v1/hotline/referrals/{referral}/status``)."""

    def tell(connection: Connection, row: Row[Any], evidence: Mapping[str, Any],
             at: datetime) -> None:  # fmt: skip
        reports, links = HotlineReportRow.__table__, HotlineCaseReportRow.__table__
        cases = HotlineCaseRow.__table__
        referred = connection.execute(
            select(reports.c.source, reports.c.partner_reference, cases.c.url)
            .join(links, links.c.report_id == reports.c.id)
            .join(cases, cases.c.id == links.c.case_id)
            .where(links.c.case_id == row.case_id, reports.c.source.like(f"{PARTNER_PREFIX}%"),
                   reports.c.partner_reference.is_not(None))
            .order_by(reports.c.id)
        ).all()  # fmt: skip
        for source, referral, url in referred:
            message = {"referral": referral, "url": url, "status": NoticeState.REMOVED.value,
                       "verified_at": at.isoformat(),
                       "evidence": {"report_id": row.report_id, "urls": list(row.urls),
                                    **evidence}}  # fmt: skip
            partner = source.removeprefix(PARTNER_PREFIX)
            outbox.enqueue(connection, row.case_id, OutboxKind.STATUS, partner,
                           signing.sign(message, key))  # fmt: skip

    return tell


def _evidence(checks: Sequence[tuple[str, Check]], ids: Sequence[int]) -> dict[str, Any]:
    """The checks as evidence: their ids, and per URL what it showed."""
    return {"checks": list(ids),
            "evidence": [{"check": ident, "url": url, **result.as_json()}
                         for ident, (url, result) in zip(ids, checks, strict=True)]}  # fmt: skip


def _next_renotice(deadline: datetime, renotices: int, every: timedelta, at: datetime) -> datetime:
    """When the next re-notice is due (the k-th at deadline + (k-1) x ``every``); a pass that
    came late sends one and the next ``every`` after it."""
    due = deadline + every * renotices
    return due if due > at else at + every


BASELINE: Final = "baseline"  # an item that is a URL's baseline names the URL under this key


def _baseline(row: Row[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The notice's items, and the URLs whose baseline a check takes: a notice without items
    (a removal order names URLs only) compares with what each URL served at its first check
    that saw it (items marked ``baseline``); no URL of a notice with items of its own."""
    items = [dict(item) for item in row.items]
    if any(not item.get(BASELINE) for item in items):
        return items, []
    kept = {item[BASELINE] for item in items}
    return items, [url for url in row.urls if url not in kept]


def _baseline_items(checks: Sequence[tuple[str, Check]],
                    missing: Sequence[str]) -> list[dict[str, Any]]:  # fmt: skip
    """The baseline taken by ``checks``: what each URL without one served, by hash."""
    return [{"url": served["url"], "kind": served["kind"], "hashes": dict(served["hashes"]),
             "labels": {}, BASELINE: url}
            for url, result in checks
            if url in missing and result.outcome is CheckOutcome.PRESENT
            for served in result.hashes]  # fmt: skip
