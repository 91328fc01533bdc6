"""The plain values of notice and takedown: kinds, states, events, check outcomes, and the
timing an operator sets (``Timing``). No database, no network."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

Clock = Callable[[], datetime]


def now() -> datetime:
    return datetime.now(UTC)


class NoticeKind(StrEnum):
    NOTICE = "notice"  # to the hoster of the URLs
    CDN = "cdn"  # to the CDN in front of them, asking for the origin (then a notice to it)
    ORDER = "order"  # a removal order an authority issued (CSA Regulation)


class NoticeState(StrEnum):
    QUEUED = "queued"  # routing (or an order) made it; not yet composed and sent
    OPEN = "open"  # sent; the content is not yet verified gone
    REMOVED = "removed"  # removal verified by the hotline's own re-check (with evidence)
    FORWARDED = "forwarded"  # a CDN notice whose origin is known: its notice to it goes on
    WITHDRAWN = "withdrawn"  # taken back by an analyst (a dispute upheld, a mistake)


OPEN_STATES: Final = (NoticeState.QUEUED, NoticeState.OPEN)


class EventKind(StrEnum):
    COMPOSED = "composed"  # the notice document signed
    SENT = "sent"  # a delivery of it accepted (detail: channel, purpose)
    DELIVERY_FAILED = "delivery-failed"
    ACKNOWLEDGED = "acknowledged"  # by the hoster
    CLAIMED = "claimed"  # the hoster says removed (never taken alone)
    DISPUTED = "disputed"  # the hoster disputes, with a reason
    ORIGIN = "origin"  # a CDN named the origin (detail: address, hoster, notice id)
    CHECKED = "checked"  # a re-check (detail: check id, outcome)
    VERIFIED = "verified"  # removal verified (detail: the check's evidence)
    RENOTICE = "renotice"
    ESCALATED = "escalated"  # detail: step, destination
    REMINDER = "reminder"  # an order's reminder
    CONFIRMED = "confirmed"  # an order confirmed by the hoster
    INABILITY = "inability"  # an order the hoster says it cannot execute (detail: reason)
    REAPPEARED = "reappeared"  # on a removed notice: its content is back (detail: new notice)
    WITHDRAWN = "withdrawn"
    RESENT = "resent"  # an operator sent it again


class CheckOutcome(StrEnum):
    GONE = "gone"  # 404/410, or the host no longer resolves
    CHANGED = "changed"  # the URL serves other content (by hash)
    PRESENT = "present"  # the same content (by hash) is still served
    INCONCLUSIVE = "inconclusive"  # timed out, refused, server error, 401/403: try again later
    # can never tell (too large to fetch, not a fetchable URL, fetching not allowed): for the
    # ladder as good as present, never a removal
    UNVERIFIABLE = "unverifiable"


REMOVED_OUTCOMES: Final = (CheckOutcome.GONE, CheckOutcome.CHANGED)


class CheckPurpose(StrEnum):
    SCHEDULED = "scheduled"  # before the deadline (Timing.early, Timing.last_call): when it went
    CLAIMED = "claimed"  # the hoster said removed
    DEADLINE = "deadline"  # the deadline passed
    RENOTICE = "renotice"  # before each re-notice
    RECHECK = "recheck"  # after a verified removal (1, 7, 30 days): reappearance


class DeliveryPurpose(StrEnum):
    NOTICE = "notice"
    RENOTICE = "renotice"
    ESCALATION = "escalation"
    REMINDER = "reminder"
    STATUS = "status"  # the takedown status, to the hotline that referred the case


class Channel(StrEnum):
    SMTP = "smtp"
    API = "api"


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """A rung of the ladder: taken ``after`` the deadline when the content is still there,
    sent to ``destination`` (an e-mail address, an https URL, or ``upstream``: the abuse
    desk of the hoster's upstream network as the registry of hosters names it)."""

    name: str  # upstream, registrar, regulator, police, or the operator's own
    after: timedelta
    destination: str


@dataclass(frozen=True, slots=True)
class Timing:
    """How long hosters have and how often the hotline looks again."""

    notice: timedelta = timedelta(hours=24)  # a notice's deadline (the legal profile's)
    order: timedelta = timedelta(hours=24)  # a removal order's deadline
    renotice: timedelta = timedelta(hours=24)  # re-notice interval while content stays
    rechecks: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=7), timedelta(days=30))
    retry: timedelta = timedelta(hours=1)  # after an inconclusive check
    ladder: tuple[EscalationStep, ...] = ()
    # checks before the deadline, from sending (the deadline's start): removal is seen when it
    # happens, not at the deadline (the resolution of time to removal)
    early: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=6), timedelta(hours=12))
    last_call: timedelta = timedelta(minutes=30)  # and this long before the deadline

    def deadline(self, kind: NoticeKind) -> timedelta:
        return self.order if kind is NoticeKind.ORDER else self.notice

    def reminders(self, deadline: datetime) -> tuple[datetime, datetime]:
        """When an order without an outcome is reminded: at half its time, at its deadline."""
        return deadline - self.order / 2, deadline

    def checks(self, kind: NoticeKind, deadline: datetime) -> tuple[datetime, ...]:
        """When a notice of ``kind`` whose deadline is ``deadline`` is checked before it
        (``early`` after its start, the deadline less its time, and ``last_call`` before it),
        in order: each strictly between the start and the deadline, each once."""
        start = deadline - self.deadline(kind)
        times = {start + after for after in self.early} | {deadline - self.last_call}
        return tuple(sorted(moment for moment in times if start < moment < deadline))

    def first_look(self, kind: NoticeKind, deadline: datetime) -> datetime:
        """When the scheduler first looks at a notice just composed: an order at once (what
        its URLs serve as it is issued is the baseline later checks compare with), anything
        else at its first check before the deadline (``checks``; or earlier, when the hoster
        claims), or at the deadline when there is none."""
        if kind is NoticeKind.ORDER:
            return deadline - self.deadline(kind)
        return next(iter(self.checks(kind, deadline)), deadline)
