"""The notices as operators, hosters and authorities see and act on them: lists and one notice
with its timeline, checks and deliveries; a hoster's acknowledgement, claim of removal and
dispute; the origin a CDN names; removal orders and their outcome; withdrawal and resending by an
operator; and composing the queued notices (signed, deliveries enqueued).

``hoster=None`` is an operator, who sees every notice; a hoster sees and acts on the notices
whose ``hoster`` is its own, and any other id is to it as a missing one (``UnknownNotice``, the
same message), so nothing of another hoster's notices leaks. Every change is one transaction:
the notice updated (conditionally, so two writers never both win), a ``takedown_events`` row and
an audit entry ``takedown.<event>`` about ``notice:ID``. Every time is the injected clock's.

What a hoster may do, by state (``NoticeRefused`` otherwise, saying why):

- acknowledge: a queued or open notice (a hoster told of an order before it was composed may
  acknowledge it); once: acknowledging again changes nothing and returns the notice as it is;
- claim removal, dispute: an open notice (sent, not yet verified gone). A claim never changes
  the state: it asks the scheduler to re-check now; a dispute keeps the notice open (the re-check
  still decides) and records the reason, for an analyst who may withdraw it;
- name the origin: an open CDN notice;
- confirm an order or report inability: a queued or open order, once.
"""

import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, Engine, Row, and_, insert, not_, or_, select, update

from hashguard.errors import MAX_ID, Conflict, Invalid, NotFound
from hashguard.hotline.hosters import Hoster, HosterRegistry
from hashguard.hotline.urls import check_all
from hashguard.signals import registry
from hashguard.store import audit
from hashguard.store.database import for_update
from hashguard.store.tables import (
    TakedownCheckRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
    utc,
)
from hashguard.takedown import signing
from hashguard.takedown.model import (
    OPEN_STATES,
    Channel,
    Clock,
    DeliveryPurpose,
    EventKind,
    NoticeKind,
    NoticeState,
    Timing,
    now,
)
from hashguard.takedown.notice import NoticeInvalid, Sender, api_body, compose, email

MAX_REASON: Final = 2000  # characters of a dispute's, an inability's or a withdrawal's reason
MAX_REFERENCE: Final = 200
MAX_URLS: Final = 1000  # URLs of one removal order
MAX_LIMIT: Final = 1000  # notices listed at once
# What a hoster reads of its notices: the deliveries sent to it, and of these events these keys.
TO_HOSTER: Final = (DeliveryPurpose.NOTICE.value, DeliveryPurpose.RENOTICE.value,
                    DeliveryPurpose.REMINDER.value)  # fmt: skip
HOSTER_SEES: Final = {EventKind.ESCALATED.value: ("step",), EventKind.ORIGIN.value: ("address",),
                      EventKind.SENT.value: ("channel", "purpose", "ticket"),
                      EventKind.DELIVERY_FAILED.value: ("channel", "purpose")}  # fmt: skip
# Events a hoster's key makes (shown to the hoster as its own, by its name).
HOSTER_ACTS: Final = frozenset({EventKind.ACKNOWLEDGED.value, EventKind.CLAIMED.value,
                                EventKind.DISPUTED.value, EventKind.ORIGIN.value,
                                EventKind.CONFIRMED.value, EventKind.INABILITY.value})  # fmt: skip
EXACT: Final = ("sha256", "md5")  # the same file: a removed item back when one is equal
PDQ_RADIUS: Final = 31  # the same picture: a removed item back when its PDQ is this close

_OPEN: Final = tuple(state.value for state in OPEN_STATES)


class UnknownNotice(NotFound):
    """No notice has the id given (or, to a hoster, it is another hoster's)."""


class NoticeRefused(Conflict):
    """An action the notice's state (or kind) does not allow; the message says why."""


class Outbox(Protocol):
    """What notices ask of the deliveries (takedown/delivery.py's Deliveries)."""

    def enqueue(self, connection: Connection, notice_id: int, purpose: DeliveryPurpose,
                channel: Channel, target: str, payload: str, step: str = "",
                at: datetime | None = None) -> int: ...  # fmt: skip


class Tracer(Protocol):
    """What ``issue_order`` reads of a hosting trace (hotline/trace.py's Trace)."""

    @property
    def hoster(self) -> Hoster | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def cdn(self) -> bool: ...


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _time(value: Any) -> datetime | None:
    return None if value is None else utc(value)


@dataclass(frozen=True, slots=True)
class NoticeView:
    """A notice as shown: never its abuse contacts' secrets, never content (there is none)."""

    id: int
    case_id: int | None
    kind: str  # notice, cdn, order
    parent_id: int | None  # an origin's notice: the CDN notice that named it
    previous_id: int | None  # the removed notice whose content reappeared here
    hoster: str
    country: str | None
    urls: tuple[str, ...]
    items: tuple[dict[str, Any], ...]  # {url, kind, hashes{signal: value}, labels{...}}
    state: str
    report_id: str
    reported_at: datetime
    created_at: datetime
    sent_at: datetime | None
    deadline_at: datetime | None
    acknowledged_at: datetime | None
    claimed_at: datetime | None
    disputed_at: datetime | None
    dispute_reason: str
    verified_at: datetime | None
    withdrawn_at: datetime | None
    outcome: str  # orders: confirmed, inability; else ""
    outcome_reason: str
    outcome_at: datetime | None
    renotices: int
    escalations: int
    legal_basis: str
    reference: str
    overdue: bool  # open and past its deadline
    last_error: str  # what keeps it from going on ("no abuse contact for ...", an origin unknown)

    @classmethod
    def of(cls, row: Row[Any], at: datetime) -> "NoticeView":
        deadline = _time(row.deadline_at)
        return cls(
            id=row.id, case_id=row.case_id, kind=row.kind, parent_id=row.parent_id,
            previous_id=row.previous_id, hoster=row.hoster, country=row.country,
            urls=tuple(row.urls), items=tuple(dict(item) for item in row.items),
            state=row.state, report_id=row.report_id, reported_at=utc(row.reported_at),
            created_at=utc(row.created_at), sent_at=_time(row.sent_at), deadline_at=deadline,
            acknowledged_at=_time(row.acknowledged_at), claimed_at=_time(row.claimed_at),
            disputed_at=_time(row.disputed_at), dispute_reason=row.dispute_reason,
            verified_at=_time(row.verified_at), withdrawn_at=_time(row.withdrawn_at),
            outcome=row.outcome, outcome_reason=row.outcome_reason,
            outcome_at=_time(row.outcome_at), renotices=row.renotices,
            escalations=row.escalations, legal_basis=row.legal_basis, reference=row.reference,
            overdue=row.state in _OPEN and deadline is not None and deadline < at,
            last_error=row.last_error,
        )  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """Every field, JSON-ready (times in ISO 8601, lists for tuples)."""
        shown = asdict(self)
        for name, value in shown.items():
            if isinstance(value, datetime):
                shown[name] = value.isoformat()
            elif isinstance(value, tuple):
                shown[name] = list(value)
        return shown


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    at: datetime
    kind: str
    actor: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "kind": self.kind,
                "actor": self.actor, "detail": self.detail}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CheckView:
    """A re-fetch of one URL and what it served, by hash (the evidence)."""

    id: int
    url: str
    at: datetime
    purpose: str
    outcome: str
    status: int | None
    detail: str
    hashes: tuple[dict[str, Any], ...]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "at": self.at.isoformat(),
                "purpose": self.purpose, "outcome": self.outcome, "status": self.status,
                "detail": self.detail, "hashes": list(self.hashes)}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """One message about the notice to one destination (its payload not repeated here)."""

    id: int
    purpose: str
    step: str
    channel: str
    target: str
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "purpose": self.purpose, "step": self.step,
                "channel": self.channel, "target": self.target,
                "created_at": self.created_at.isoformat(), "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at.isoformat(),
                "delivered_at": _iso(self.delivered_at), "last_error": self.last_error}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NoticeDetail:
    """A notice with its signed document (None until composed), timeline, checks and
    deliveries, each oldest first."""

    notice: NoticeView
    document: dict[str, Any] | None
    events: tuple[EventView, ...]
    checks: tuple[CheckView, ...]
    deliveries: tuple[DeliveryView, ...]

    def as_json(self) -> dict[str, Any]:
        return {"notice": self.notice.as_json(), "document": self.document,
                "events": [e.as_json() for e in self.events],
                "checks": [c.as_json() for c in self.checks],
                "deliveries": [d.as_json() for d in self.deliveries]}  # fmt: skip


def _shown(kind: str, detail: dict[str, Any], hoster: str | None) -> dict[str, Any]:
    """An event's detail as ``hoster`` may read it (None: an operator, all of it): of a
    delivery to someone else (an escalation) not its ticket."""
    if hoster is None or kind not in HOSTER_SEES:
        return detail
    shown = {key: detail[key] for key in HOSTER_SEES[kind] if key in detail}
    if "ticket" in shown and detail.get("purpose") not in TO_HOSTER:
        del shown["ticket"]
    return shown


def _by(kind: str, actor: str, row: Row[Any], hoster: str | None) -> str:
    """Who did it, as ``hoster`` may read it (None: an operator, the actor as recorded): the
    hoster itself, the authority (of an order, its issuer), else the hotline; never a key or
    a person."""
    if hoster is None:
        return actor
    if kind in HOSTER_ACTS and actor.startswith("key:"):
        return hoster
    if row.kind == NoticeKind.ORDER.value and actor == row.issued_by:
        return "authority"
    return "hotline"


def _failure(channel: str, error: str, hoster: str | None) -> str:
    """Why a delivery failed, as ``hoster`` may read it: of an e-mail not the hotline's mail
    server, only that it is tried again."""
    if hoster is None or not error or channel != Channel.SMTP.value:
        return error
    return "not delivered yet: the hotline tries again"


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _printable(text: str, what: str, lines: bool = False) -> None:
    """Invalid when ``text`` holds a control character (a line break too, unless ``lines``):
    an order's reference goes into e-mail headers."""
    found = (_CONTROL_BUT_LINES if lines else _CONTROL).search(text)
    if found is not None:
        raise Invalid(f"{what} holds a control character (U+{ord(found.group()):04X} at "
                      f"{found.start() + 1}); only printable text is accepted")  # fmt: skip


def _reason(text: str, what: str, called: str = "reason") -> str:
    """``text`` stripped, 1 to MAX_REASON characters; Invalid naming ``what`` otherwise."""
    reason = text.strip() if isinstance(text, str) else ""
    if not reason:
        raise Invalid(f"{what} needs a {called} (1 to {MAX_REASON} characters)")
    if len(reason) > MAX_REASON:
        raise Invalid(f"{what}: the {called} has {len(reason)} characters; at most {MAX_REASON}")
    return reason


class Notices:
    """The takedown notices in ``engine``: read, acted on, composed (module docstring)."""

    def __init__(
        self,
        engine: Engine,
        timing: Timing,
        hosters: HosterRegistry,
        sender: Sender,
        key: Ed25519PrivateKey | None,
        deliveries: Outbox,
        clock: Clock = now,
        trace: Callable[[str], Tracer] | None = None,
    ) -> None:
        self.engine = engine
        self.timing = timing
        self.hosters = hosters
        self.sender = sender
        self.key = key
        self.deliveries = deliveries
        self.clock = clock
        self.trace = trace

    # --- composing --------------------------------------------------------------------------

    def compose_queued(self, limit: int = 100) -> int:
        """Compose the queued notices that are due (oldest first, at most ``limit``): each
        signed (notice.compose) with its deadline (now + the timing of its kind), made open and
        due again at its deadline, its deliveries enqueued (an e-mail to the abuse address, the
        API body to the abuse API); a notice with neither keeps ``last_error`` "no abuse contact
        for HOSTER" and a delivery-failed event. An item whose hash is on a removed notice of
        the same hoster (sha256 or md5 equal, PDQ within PDQ_RADIUS) makes it a reappearance:
        ``previous_id`` names that notice, which gets a reappeared event. A notice that cannot
        be composed keeps why in ``last_error`` and is tried again after ``timing.retry``.
        One transaction per notice; one another instance composed meanwhile is left to it.
        Returns the number composed."""
        table = TakedownNoticeRow.__table__
        at = self.clock()
        with self.engine.connect() as connection:
            due = connection.execute(
                select(table)
                .where(table.c.state == NoticeState.QUEUED.value,
                       or_(table.c.next_action_at.is_(None), table.c.next_action_at <= at))
                .order_by(table.c.id).limit(limit)
            ).all()  # fmt: skip
        removed = _Removed(self.engine, {row.hoster for row in due})
        composed = 0
        for row in due:
            try:
                composed += self._compose(row, removed)
            except Exception as error:  # one bad notice never stops the others
                self._postpone(row, f"cannot be composed: {type(error).__name__}: {error}")
        return composed

    def _postpone(self, row: Row[Any], why: str) -> None:
        """Keep why ``row`` (still queued) could not be composed; try again after
        ``timing.retry``."""
        table = TakedownNoticeRow.__table__
        with self.engine.begin() as connection:
            connection.execute(
                update(TakedownNoticeRow)
                .where(table.c.id == row.id, table.c.state == NoticeState.QUEUED.value)
                .values(last_error=why[:1000], next_action_at=self.clock() + self.timing.retry)
            )  # fmt: skip

    def _compose(self, row: Row[Any], removed: "_Removed") -> int:
        table = TakedownNoticeRow.__table__
        at = self.clock()
        deadline = at + self.timing.deadline(NoticeKind(row.kind))
        # a notice made for a reappearance (previous_id set) is not its own reappearance again
        previous = removed.previous(row) if row.previous_id is None else None
        if self.key is None:  # read-only use (the CLI without a key): nothing is composed
            raise NoticeInvalid("no takedown key to sign notices with")
        try:
            document = compose({**row._mapping, "deadline_at": deadline}, self.sender, self.key,
                               at)  # fmt: skip
        except NoticeInvalid as error:
            self._postpone(row, f"cannot be composed: {error}")
            return 0
        with self.engine.begin() as connection:
            won = connection.execute(
                update(TakedownNoticeRow)
                .where(table.c.id == row.id, table.c.state == NoticeState.QUEUED.value)
                .values(state=NoticeState.OPEN.value, document=signing.dumps(document),
                        deadline_at=deadline, lease_until=None,
                        next_action_at=self.timing.first_look(NoticeKind(row.kind), deadline),
                        previous_id=previous[0] if previous else row.previous_id,
                        last_error="")
            ).rowcount  # fmt: skip
            if won != 1:
                return 0
            sent = self._send(connection, row.id, row.hoster, row.abuse_email, row.abuse_api,
                              document, at)  # fmt: skip
            record(connection, row.id, EventKind.COMPOSED, "hotline",
                   {"deadline": deadline.isoformat(), "deliveries": sent,
                    "previous": previous[0] if previous else None}, at)  # fmt: skip
            if not sent:
                why = f"no abuse contact for {row.hoster or 'an unknown hoster'}"
                connection.execute(update(TakedownNoticeRow).where(table.c.id == row.id)
                                   .values(last_error=why))  # fmt: skip
                record(connection, row.id, EventKind.DELIVERY_FAILED, "hotline",
                       {"reason": why}, at)  # fmt: skip
            if previous is not None:
                old, url, signal = previous
                record(connection, old, EventKind.REAPPEARED, "hotline",
                       {"notice": row.id, "url": url, "signal": signal}, at)  # fmt: skip
        return 1

    def _send(
        self,
        connection: Connection,
        notice_id: int,
        hoster: str,
        abuse_email: str | None,
        abuse_api: str | None,
        document: Mapping[str, Any],
        at: datetime,
    ) -> list[int]:
        """Enqueue the notice to its contacts (e-mail, API); their delivery ids."""
        sent = []
        if abuse_email:
            message = email(document, DeliveryPurpose.NOTICE, to=abuse_email, sender=self.sender)
            sent.append(self.deliveries.enqueue(connection, notice_id, DeliveryPurpose.NOTICE,
                                                Channel.SMTP, abuse_email, message.as_string(),
                                                at=at))  # fmt: skip
        if abuse_api:
            body = json.dumps(api_body(document, DeliveryPurpose.NOTICE), ensure_ascii=False)
            sent.append(self.deliveries.enqueue(connection, notice_id, DeliveryPurpose.NOTICE,
                                                Channel.API, abuse_api, body, at=at))  # fmt: skip
        return sent

    # --- reading ----------------------------------------------------------------------------

    def list(
        self,
        *,
        hoster: str | None = None,
        state: str | None = None,
        kind: str | None = None,
        overdue: bool | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[NoticeView]:
        """Notices newest first (by id), at most ``limit`` (1 to MAX_LIMIT), those with an id
        below ``before`` when given (the next page: the last id shown); only ``hoster``'s, in
        ``state``, of ``kind``, overdue or not, when given. Raises Invalid for an unknown state
        or kind or a limit out of range."""
        table = TakedownNoticeRow.__table__
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit {limit}: expected 1 to {MAX_LIMIT}")
        at = self.clock()
        query = select(table).order_by(table.c.id.desc()).limit(limit)
        if hoster is not None:
            query = query.where(table.c.hoster == hoster)
        if state is not None:
            if state not in {s.value for s in NoticeState}:
                raise Invalid(f"state {state!r}: expected one of "
                              f"{', '.join(s.value for s in NoticeState)}")  # fmt: skip
            query = query.where(table.c.state == state)
        if kind is not None:
            if kind not in {k.value for k in NoticeKind}:
                raise Invalid(f"kind {kind!r}: expected one of "
                              f"{', '.join(k.value for k in NoticeKind)}")  # fmt: skip
            query = query.where(table.c.kind == kind)
        if overdue is not None:
            late = and_(table.c.state.in_(_OPEN), table.c.deadline_at.is_not(None),
                        table.c.deadline_at < at)  # fmt: skip
            query = query.where(late if overdue else not_(late))
        if before is not None:
            query = query.where(table.c.id < before)
        with self.engine.connect() as connection:
            return [NoticeView.of(row, at) for row in connection.execute(query)]

    def get(self, notice_id: int, hoster: str | None = None) -> NoticeDetail:
        """The notice with its document, events, checks and deliveries. A hoster sees the
        deliveries sent to it (notices, re-notices, reminders) and of an escalation or an origin
        only the step or the address: where else the hotline turned is not its to read. Raises
        UnknownNotice when there is none of that id (or it is not ``hoster``'s)."""
        events, checks = TakedownEventRow.__table__, TakedownCheckRow.__table__
        deliveries = TakedownDeliveryRow.__table__
        with self.engine.connect() as connection:
            row = self._row(connection, notice_id, hoster)
            timeline = connection.execute(select(events).where(events.c.notice_id == row.id)
                                          .order_by(events.c.id)).all()  # fmt: skip
            checked = connection.execute(select(checks).where(checks.c.notice_id == row.id)
                                         .order_by(checks.c.id)).all()  # fmt: skip
            shown = (c for c in deliveries.c if c.name not in ("payload", "reply"))
            query = (select(*shown).where(deliveries.c.notice_id == row.id)
                     .order_by(deliveries.c.id))  # fmt: skip
            if hoster is not None:
                query = query.where(deliveries.c.purpose.in_(TO_HOSTER))
            sent = connection.execute(query).all()
        return NoticeDetail(
            NoticeView.of(row, self.clock()),
            json.loads(row.document) if row.document else None,
            tuple(EventView(e.id, utc(e.at), e.kind, _by(e.kind, e.actor, row, hoster),
                            _shown(e.kind, dict(e.detail), hoster)) for e in timeline),
            tuple(CheckView(c.id, c.url, utc(c.at), c.purpose, c.outcome, c.status, c.detail,
                            tuple(c.hashes)) for c in checked),
            tuple(DeliveryView(d.id, d.purpose, d.step, d.channel, d.target, utc(d.created_at),
                               d.attempts, utc(d.next_attempt_at), _time(d.delivered_at),
                               _failure(d.channel, d.last_error, hoster)) for d in sent),
        )  # fmt: skip

    # --- a hoster's actions -----------------------------------------------------------------

    def acknowledge(self, notice_id: int, hoster: str | None, actor: str) -> NoticeView:
        """The hoster has seen the notice (queued or open): ``acknowledged_at`` set once; again,
        nothing changes. Raises UnknownNotice, NoticeRefused (withdrawn, removed, forwarded)."""
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, hoster, lock=True)
            self._refuse_unless(row, _OPEN, "acknowledged")
            if row.acknowledged_at is not None:
                return NoticeView.of(row, at)
            self._change(connection, row, {"acknowledged_at": at}, EventKind.ACKNOWLEDGED, actor,
                         {}, at, TakedownNoticeRow.acknowledged_at.is_(None))  # fmt: skip
            return self._view(connection, row.id, at)

    def claim_removed(self, notice_id: int, hoster: str | None, actor: str,
                      note: str = "") -> NoticeView:  # fmt: skip
        """The hoster says the content is gone: never taken alone. ``claimed_at`` and
        ``next_action_at`` set to now, so the scheduler re-checks every URL; the state stays
        open until the check verifies it. A hoster may claim again (after a check found the
        content still there). ``note`` at most MAX_REASON characters. Raises UnknownNotice,
        NoticeRefused (not open), Invalid (note too long)."""
        note = note.strip() if isinstance(note, str) else ""
        if len(note) > MAX_REASON:
            raise Invalid(f"the note has {len(note)} characters; at most {MAX_REASON}")
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, hoster, lock=True)
            self._refuse_unless(row, (NoticeState.OPEN.value,), "claimed removed")
            self._change(connection, row, {"claimed_at": at, "next_action_at": at},
                         EventKind.CLAIMED, actor, {"note": note} if note else {}, at)  # fmt: skip
            return self._view(connection, row.id, at)

    def dispute(self, notice_id: int, hoster: str | None, actor: str, reason: str) -> NoticeView:
        """The hoster disputes the notice, with ``reason`` (1 to MAX_REASON characters): kept
        (``disputed_at``, ``dispute_reason``; a later dispute replaces it), the notice stays
        open (the re-check still decides; an analyst may withdraw it). Raises UnknownNotice,
        NoticeRefused (not open), Invalid (the reason)."""
        reason = _reason(reason, "a dispute")
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, hoster, lock=True)
            self._refuse_unless(row, (NoticeState.OPEN.value,), "disputed")
            self._change(connection, row, {"disputed_at": at, "dispute_reason": reason},
                         EventKind.DISPUTED, actor, {"reason": reason}, at)  # fmt: skip
            return self._view(connection, row.id, at)

    def origin(self, notice_id: int, hoster: str | None, actor: str, address: str) -> NoticeView:
        """A CDN names the origin ``address`` (an IP address) of an open CDN notice's URLs.

        When the registry knows the address's hoster (and it is not a CDN itself), a notice to
        it is queued (kind notice, ``parent_id`` the CDN notice, the same case, URLs, items and
        report time, the hoster's contacts; due now) and the CDN notice is forwarded. Otherwise
        the origin is recorded and the CDN notice stays open, ``last_error`` saying why, for an
        analyst. Returns the CDN notice (never the origin's, which is another hoster's).
        Raises Invalid (not an IP address), UnknownNotice, NoticeRefused (not an open CDN
        notice)."""
        text = address.strip() if isinstance(address, str) else ""
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise Invalid(f"origin {text[:100]!r} is not an IP address (IPv4 or IPv6)") from None
        at = self.clock()
        found = self.hosters.lookup(str(ip))
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, hoster, lock=True)
            if row.kind != NoticeKind.CDN.value:
                raise NoticeRefused(f"notice {row.id} is not a CDN notice: only a CDN names an "
                                    "origin")  # fmt: skip
            self._refuse_unless(row, (NoticeState.OPEN.value,), "given an origin")
            detail: dict[str, Any] = {"address": str(ip), "hoster": None, "notice": None}
            if found is None or found.cdn:
                why = ("no hoster known" if found is None
                       else f"{found.name} is a CDN, not an origin")  # fmt: skip
                self._change(connection, row, {"last_error": f"origin {ip}: {why}"},
                             EventKind.ORIGIN, actor, detail, at)  # fmt: skip
                return self._view(connection, row.id, at)
            child = self._insert(connection, {
                "case_id": row.case_id, "kind": NoticeKind.NOTICE.value, "parent_id": row.id,
                "hoster": found.name, "country": found.country,
                "abuse_email": found.abuse_email, "abuse_api": found.abuse_api,
                "urls": list(row.urls), "items": list(row.items), "legal_basis": row.legal_basis,
                "reference": row.reference, "issued_by": row.issued_by,
                "reported_at": row.reported_at}, at)  # fmt: skip
            detail.update(hoster=found.name, notice=child)
            self._change(connection, row, {"state": NoticeState.FORWARDED.value,
                                           "next_action_at": None, "lease_until": None,
                                           "last_error": ""},
                         EventKind.ORIGIN, actor, detail, at)  # fmt: skip
            return self._view(connection, row.id, at)

    # --- removal orders ---------------------------------------------------------------------

    def issue_order(
        self,
        urls: Sequence[str],
        legal_basis: str,
        reference: str,
        actor: str,
        hoster: str | None = None,
    ) -> NoticeView:
        """A removal order for ``urls`` (checked and normalised, hotline/urls.py) on the
        ``legal_basis`` given (1 to MAX_REASON characters) under the authority's ``reference``
        (1 to MAX_REFERENCE), to ``hoster`` (a name in the registry) or, not given, the hoster
        the tracer finds for every URL. Queued, due now: the scheduler composes and sends it.
        Raises Invalid (a URL, the legal basis, the reference, an unknown hoster, URLs whose
        hoster cannot be found or differ)."""
        if isinstance(urls, str) or not urls:
            raise Invalid("an order needs the URLs to remove (a list of at least one)")
        if len(urls) > MAX_URLS:
            raise Invalid(f"an order names at most {MAX_URLS} URLs; {len(urls)} given")
        checked = [reported.url for reported in check_all(list(urls))]
        basis = _reason(legal_basis, "an order", "legal basis")
        reference = reference.strip() if isinstance(reference, str) else ""
        if not reference or len(reference) > MAX_REFERENCE:
            raise Invalid(f"an order needs its reference (1 to {MAX_REFERENCE} characters)")
        _printable(reference, "the order's reference")
        _printable(basis, "the order's legal basis", lines=True)
        if hoster is not None:
            to = self.hosters.named(hoster)
            if to is None:
                raise Invalid(f"unknown hoster {hoster!r}: the registry of hosters does not name "
                              "it")  # fmt: skip
            if to.cdn:
                raise Invalid(f"{to.name} is a CDN: an order goes to the hoster of the origin "
                              "server; name the origin's hoster")  # fmt: skip
            country = to.country
        else:
            to, country = self._traced(checked)
        at = self.clock()
        with self.engine.begin() as connection:
            ident = self._insert(connection, {
                "case_id": None, "kind": NoticeKind.ORDER.value, "parent_id": None,
                "hoster": to.name, "country": country, "abuse_email": to.abuse_email,
                "abuse_api": to.abuse_api, "urls": checked, "items": [],
                "legal_basis": basis, "reference": reference, "issued_by": actor,
                "reported_at": at}, at)  # fmt: skip
            audit.append(connection, actor, "takedown.order", f"notice:{ident}",
                         {"hoster": to.name, "urls": checked, "legal_basis": basis,
                          "reference": reference})  # fmt: skip
            return self._view(connection, ident, at)

    def _traced(self, urls: Sequence[str]) -> tuple[Hoster, str | None]:
        """The one hoster (and its country) the tracer finds for all of ``urls``."""
        if self.trace is None:
            raise Invalid("name the hoster: no tracer is configured to find it")
        found: dict[str, tuple[Hoster, str | None]] = {}
        for url in urls:
            traced = self.trace(url)
            if traced.hoster is None:
                raise Invalid(f"no hoster in the registry is known for {url}: name the hoster")
            if traced.cdn or traced.hoster.cdn:
                raise Invalid(f"{url} is behind a CDN ({traced.hoster.name}): name the "
                              "origin's hoster")  # fmt: skip
            found.setdefault(traced.hoster.name,
                             (traced.hoster, traced.hoster.country or traced.country))  # fmt: skip
        if len(found) > 1:
            raise Invalid(f"the URLs are hosted by {', '.join(sorted(found))}: issue one order "
                          "per hoster")  # fmt: skip
        return next(iter(found.values()))

    def confirm_order(self, notice_id: int, hoster: str | None, actor: str) -> NoticeView:
        """The hoster confirms it executed the order: outcome ``confirmed`` (once), and like a
        claim the scheduler re-checks now (the state stays until verified). Raises
        UnknownNotice, NoticeRefused (not an order, not open, an outcome given already)."""
        return self._outcome(notice_id, hoster, actor, EventKind.CONFIRMED, "")

    def inability(self, notice_id: int, hoster: str | None, actor: str, reason: str) -> NoticeView:
        """The hoster cannot execute the order, with ``reason`` (1 to MAX_REASON characters):
        outcome ``inability`` (once); the notice stays open for the authority and the
        scheduler. Raises Invalid (the reason), UnknownNotice, NoticeRefused."""
        return self._outcome(notice_id, hoster, actor, EventKind.INABILITY,
                             _reason(reason, "an inability"))  # fmt: skip

    def _outcome(self, notice_id: int, hoster: str | None, actor: str, kind: EventKind,
                 reason: str) -> NoticeView:  # fmt: skip
        at = self.clock()
        table = TakedownNoticeRow.__table__
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, hoster, lock=True)
            if row.kind != NoticeKind.ORDER.value:
                raise NoticeRefused(f"notice {row.id} is not a removal order")
            self._refuse_unless(row, _OPEN, f"given an outcome ({kind.value})")
            if row.outcome:
                raise NoticeRefused(f"order {row.id} has its outcome already: {row.outcome} at "
                                    f"{utc(row.outcome_at).isoformat()}")  # fmt: skip
            values: dict[str, Any] = {"outcome": kind.value, "outcome_reason": reason,
                                      "outcome_at": at}  # fmt: skip
            if kind is EventKind.CONFIRMED:
                values.update(claimed_at=at, next_action_at=at)
            self._change(connection, row, values, kind, actor,
                         {"reason": reason} if reason else {}, at,
                         table.c.outcome == "")  # fmt: skip
            return self._view(connection, row.id, at)

    # --- an operator's actions --------------------------------------------------------------

    def withdraw(self, notice_id: int, actor: str, reason: str) -> NoticeView:
        """Take back a queued or open notice (a dispute upheld, a mistake), with ``reason``
        (1 to MAX_REASON characters): state withdrawn, nothing more scheduled. Raises Invalid
        (the reason), UnknownNotice, NoticeRefused (not open)."""
        reason = _reason(reason, "a withdrawal")
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, None, lock=True)
            self._refuse_unless(row, _OPEN, "withdrawn")
            self._change(connection, row, {"state": NoticeState.WITHDRAWN.value,
                                           "withdrawn_at": at, "next_action_at": None,
                                           "lease_until": None},
                         EventKind.WITHDRAWN, actor, {"reason": reason}, at)  # fmt: skip
            return self._view(connection, row.id, at)

    def resend(self, notice_id: int, actor: str) -> NoticeView:
        """Send an open notice again, as composed, to its hoster's contacts as the registry
        names them now (kept on the notice: a contact the operator fixed is used from now on).
        Raises UnknownNotice, NoticeRefused (not open, or no contact to send it to)."""
        at = self.clock()
        with self.engine.begin() as connection:
            row = self._row(connection, notice_id, None, lock=True)
            self._refuse_unless(row, (NoticeState.OPEN.value,), "sent again")
            known = self.hosters.named(row.hoster)
            contacts = ((known.abuse_email, known.abuse_api) if known is not None
                        else (row.abuse_email, row.abuse_api))  # fmt: skip
            if not any(contacts):
                whom = row.hoster or "an unknown hoster"
                raise NoticeRefused(f"notice {row.id}: no abuse contact for {whom} to send it to")
            self._update(connection, row, {"abuse_email": contacts[0],
                                           "abuse_api": contacts[1], "last_error": ""})  # fmt: skip
            sent = self._send(connection, row.id, row.hoster, contacts[0], contacts[1],
                              json.loads(row.document), at)  # fmt: skip
            record(connection, row.id, EventKind.RESENT, actor, {"deliveries": sent}, at)
            return self._view(connection, row.id, at)

    # --- the rows ---------------------------------------------------------------------------

    def _row(self, connection: Connection, notice_id: int, hoster: str | None,
             lock: bool = False) -> Row[Any]:  # fmt: skip
        """The notice ``notice_id`` (with ``lock``, locked until the transaction ends:
        ``for_update``), if ``hoster`` may see it; else UnknownNotice, the same for a missing
        notice and another hoster's."""
        table = TakedownNoticeRow.__table__
        wrong = isinstance(notice_id, bool) or not isinstance(notice_id, int)
        if wrong or not 0 < notice_id <= MAX_ID:
            raise UnknownNotice(f"no notice {notice_id}")
        query = select(table).where(table.c.id == notice_id)
        if lock:
            query = for_update(
                connection, query, TakedownNoticeRow.last_error, table.c.id == notice_id
            )
        row = connection.execute(query).one_or_none()
        if row is None or (hoster is not None and row.hoster != hoster):
            raise UnknownNotice(f"no notice {notice_id}")
        return row

    @staticmethod
    def _refuse_unless(row: Row[Any], states: Sequence[str], action: str) -> None:
        if row.state not in states:
            raise NoticeRefused(f"notice {row.id} is {row.state}: it cannot be {action}")

    def _view(self, connection: Connection, notice_id: int, at: datetime) -> NoticeView:
        table = TakedownNoticeRow.__table__
        return NoticeView.of(connection.execute(select(table).where(table.c.id == notice_id))
                             .one(), at)  # fmt: skip

    def _change(
        self,
        connection: Connection,
        row: Row[Any],
        values: Mapping[str, Any],
        kind: EventKind,
        actor: str,
        detail: Mapping[str, Any],
        at: datetime,
        *where: Any,
    ) -> None:
        """Update ``row`` (``_update``) and record the event."""
        self._update(connection, row, values, *where)
        record(connection, row.id, kind, actor, detail, at)

    @staticmethod
    def _update(connection: Connection, row: Row[Any], values: Mapping[str, Any],
                *where: Any) -> None:  # fmt: skip
        """Update ``row`` where its state is still the one read (and ``where`` holds);
        NoticeRefused when another writer changed it meanwhile."""
        table = TakedownNoticeRow.__table__
        changed = connection.execute(
            update(TakedownNoticeRow)
            .where(table.c.id == row.id, table.c.state == row.state, *where)
            .values(**values)
        ).rowcount
        if changed != 1:
            raise NoticeRefused(f"notice {row.id} was changed meanwhile: try again")

    def _insert(self, connection: Connection, values: Mapping[str, Any], at: datetime) -> int:
        """A new queued notice, due now; its id."""
        fields: dict[str, Any] = {
            "previous_id": None, "cdn": False, "state": NoticeState.QUEUED.value,
            "report_id": str(uuid.uuid4()), "document": "", "created_at": at,
            "dispute_reason": "", "outcome": "", "outcome_reason": "", "renotices": 0,
            "escalations": 0, "rechecks": 0, "next_action_at": at, "last_error": "",
            **values,
        }  # fmt: skip
        inserted = connection.execute(insert(TakedownNoticeRow).values(**fields))
        return int(inserted.inserted_primary_key[0])  # type: ignore[index]


def record(
    connection: Connection,
    notice_id: int,
    kind: EventKind,
    actor: str,
    detail: Mapping[str, Any],
    at: datetime,
) -> int:
    """Append event ``kind`` to the notice's timeline and the audit log (``takedown.<kind>``
    about ``notice:ID``), in the connection's transaction; the event's id."""
    event = {"notice_id": notice_id, "at": at, "kind": kind.value, "actor": actor[:200],
             "detail": dict(detail)}  # fmt: skip
    inserted = connection.execute(insert(TakedownEventRow).values(**event))
    audit.append(connection, actor, f"takedown.{kind.value}", f"notice:{notice_id}", detail)
    return int(inserted.inserted_primary_key[0])  # type: ignore[index]


class _Removed:
    """The items of the removed notices of some hosters, by hash: where a queued notice's
    content was removed before (a reappearance)."""

    def __init__(self, engine: Engine, hosters: set[str]) -> None:
        table = TakedownNoticeRow.__table__
        self._exact: dict[tuple[str, str, str], int] = {}  # (hoster, signal, value) -> notice
        self._pdq: dict[str, list[tuple[Any, int]]] = {}  # hoster -> [(hash, notice)]
        self._signal = registry.get("pdq")
        if not hosters:
            return
        query = (select(table.c.id, table.c.hoster, table.c["items"])
                 .where(table.c.hoster.in_(sorted(hosters)),
                        table.c.state == NoticeState.REMOVED.value)
                 .order_by(table.c.id))  # fmt: skip
        with engine.connect() as connection:
            for notice_id, hoster, items in connection.execute(query):
                for item in items or ():
                    hashes = item.get("hashes") or {}
                    for signal in EXACT:
                        if isinstance(hashes.get(signal), str):
                            self._exact[(hoster, signal, hashes[signal].lower())] = notice_id
                    pdq = self._parsed(hashes.get("pdq"))
                    if pdq is not None:
                        self._pdq.setdefault(hoster, []).append((pdq, notice_id))

    def _parsed(self, value: Any) -> Any:
        if not isinstance(value, str):
            return None
        try:
            return self._signal.parse(value)
        except Invalid:
            return None  # stored by routing from our own hashing: not expected

    def previous(self, row: Row[Any]) -> tuple[int, str, str] | None:
        """The newest removed notice of ``row``'s hoster one of its items is on, with that
        item's URL and the signal that matched; None when there is none."""
        found: list[tuple[int, str, str]] = []
        for item in row.items or ():
            hashes = item.get("hashes") or {}
            url = str(item.get("url", ""))
            for signal in EXACT:
                value = hashes.get(signal)
                notice_id = (self._exact.get((row.hoster, signal, value.lower()))
                             if isinstance(value, str) else None)  # fmt: skip
                if notice_id is not None:
                    found.append((notice_id, url, signal))
            pdq = self._parsed(hashes.get("pdq"))
            if pdq is not None:
                found.extend((notice_id, url, "pdq") for value, notice_id
                             in self._pdq.get(row.hoster, ())
                             if self._signal.distance(pdq, value) <= PDQ_RADIUS)  # fmt: skip
        return max(found, key=lambda match: match[0], default=None)
