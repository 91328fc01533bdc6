"""Feedback owed to exchanges: a detection on a list an exchange fills, when its plug-in takes
feedback, is told back to the exchange in StopNCII's words (opened: PendingReview, confirmed:
Blocked, false positive: NotBlocked). ``ExchangeFeedback`` is a review observer: it queues an
``ExchangeFeedbackRow`` in the transaction that opens or decides the detection (once per
detection, entry and outcome); ``FeedbackSender`` delivers the queue through the plug-in's
``send_feedback``, retried with backoff (hashguard.store.outbox).

An exchange keeps one word per hash, the last it was told, so the order matters: a verdict
(Blocked, NotBlocked) queued for a hash retires the feedback on that hash not yet delivered (a
PendingReview whose attempt failed, or a verdict since reversed), and the rows of one hash are
sent in the order queued, a row waiting while an older one of its hash is undelivered. The
exchange's last word on a hash is then the latest one queued."""

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Connection, Row, delete, exists, func, insert, select
from sqlalchemy.orm import aliased

from hashguard.errors import HashguardError
from hashguard.exchanges import registry
from hashguard.exchanges.api import FeedbackItem
from hashguard.review.model import State
from hashguard.store import outbox
from hashguard.store.tables import EntryRow, ExchangeFeedbackRow, ExchangeRow, HashListRow, utc

log = logging.getLogger("hashguard.exchanges")

PENDING_REVIEW: Final = "PendingReview"
BLOCKED: Final = "Blocked"
NOT_BLOCKED: Final = "NotBlocked"
VERDICTS: Final = frozenset({BLOCKED, NOT_BLOCKED})  # what a reviewer decided: final words
FEEDBACK_OF_STATE: Final = {
    State.PENDING: PENDING_REVIEW,
    State.IN_REVIEW: PENDING_REVIEW,
    State.CONFIRMED: BLOCKED,
    State.REPORTED: BLOCKED,
    State.CLOSED: BLOCKED,
    State.FALSE_POSITIVE: NOT_BLOCKED,
}


def _supports_feedback(api: str) -> bool:
    try:
        return bool(registry.get(api).supports_feedback)
    except HashguardError:  # a plug-in no longer installed
        return False


class ExchangeFeedback:
    """A review observer (hashguard.review.detections.Observer): each detection opened or
    decided on a list an exchange fills, whose plug-in takes feedback, queues that feedback."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.clock = clock or (lambda: datetime.now(UTC))

    def detection_changed(
        self,
        connection: Connection,
        ident: int,
        service_id: int,
        evidence: Sequence[Mapping[str, Any]],
        state: State,
    ) -> None:
        names = sorted({str(m.get("list", "")) for m in evidence if m.get("list")})
        if not names:
            return
        exchanges = {
            row.list_name: row
            for row in connection.execute(
                select(ExchangeRow.id, ExchangeRow.api, HashListRow.name.label("list_name"))
                .join(HashListRow, HashListRow.id == ExchangeRow.list_id)
                .where(HashListRow.name.in_(names))
            )
            if _supports_feedback(row.api)
        }
        if not exchanges:
            return
        feedback = FEEDBACK_OF_STATE[state]
        at = self.clock()
        for match in evidence:
            exchange = exchanges.get(str(match.get("list", "")))
            if exchange is None or match.get("entry") is None:
                continue
            entry = connection.execute(
                select(EntryRow.signal, EntryRow.value, EntryRow.sources, EntryRow.labels)
                .where(EntryRow.id == int(match["entry"]))
            ).first()  # fmt: skip
            if entry is None:
                continue
            key = hashlib.sha256(
                f"{exchange.id}:{ident}:{match['entry']}:{feedback}".encode()
            ).hexdigest()
            queued = connection.execute(
                select(ExchangeFeedbackRow.id).where(ExchangeFeedbackRow.idempotency_key == key)
            ).first()
            if queued is not None:  # pending, then in review: told once
                continue
            due = at
            if feedback in VERDICTS:
                due = _retire_undelivered(connection, exchange.id, entry.signal, entry.value, at)
            connection.execute(insert(ExchangeFeedbackRow).values(
                exchange_id=exchange.id, signal=entry.signal, value=entry.value,
                reference=_reference(entry.sources), feedback=feedback,
                tags=sorted(json.loads(entry.labels or "[]")), idempotency_key=key,
                created_at=at, attempts=0, next_attempt_at=due, delivered_at=None, last_error="",
            ))  # fmt: skip


def _retire_undelivered(
    connection: Connection, exchange_id: int, signal: str, value: str, at: datetime
) -> datetime:
    """Remove the feedback on a hash not delivered yet (a newer verdict replaces it); when the
    new row may be sent: at ``at``, or once a retired row's attempt under way may have ended
    (a sender that claimed it before it was retired: its claim runs out), never later."""
    table = ExchangeFeedbackRow.__table__
    which = (table.c.exchange_id == exchange_id, table.c.signal == signal,
             table.c.value == value, table.c.delivered_at.is_(None))  # fmt: skip
    latest: datetime | None = connection.execute(
        select(func.max(table.c.next_attempt_at)).where(*which)
    ).scalar()
    connection.execute(delete(ExchangeFeedbackRow).where(*which))
    if latest is None:
        return at
    return max(at, min(utc(latest), at + outbox.CLAIM))


def _reference(sources: str) -> str:
    """The exchange's own id for an entry: the first reference among its sources."""
    try:
        held = json.loads(sources or "[]")
    except ValueError:
        return ""
    for source in held if isinstance(held, list) else []:
        if isinstance(source, Mapping) and source.get("reference"):
            return str(source["reference"])
    return ""


class FeedbackSender:
    """Delivers the feedback due through each exchange's plug-in (``build(exchange_id)``:
    the plug-in built as a fetch builds it, ``Sync.plugin``)."""

    def __init__(self, sync: Any, clock: Callable[[], datetime] | None = None) -> None:
        self.sync = sync
        self.engine = sync.engine
        self.clock = clock or sync.clock

    def deliver_due(self, limit: int = 100) -> int:
        """Send what is due, each hash's feedback in the order queued; the number
        delivered."""
        return outbox.deliver_due(self.engine, ExchangeFeedbackRow, self._send, self.clock(),
                                  log, _what, _first_of_its_hash(), limit=limit,
                                  clock=self.clock)  # fmt: skip

    def _send(self, row: Row[Any]) -> str | None:
        try:
            plugin = self.sync.plugin(int(row.exchange_id))
            plugin.send_feedback(FeedbackItem(row.signal, row.value, row.reference, row.feedback,
                                              tuple(row.tags or ())))  # fmt: skip
        except HashguardError as error:
            return str(error)
        except Exception as error:  # a plug-in's bug: retried, and said
            log.error("exchange feedback %d: the plug-in failed", row.id, exc_info=error)
            return f"{type(error).__name__}: {error}"
        return None


def _first_of_its_hash() -> Any:
    """A row no older undelivered row of the same exchange and hash waits before."""
    table = ExchangeFeedbackRow.__table__
    older = aliased(ExchangeFeedbackRow)
    return ~exists().where(
        older.exchange_id == table.c.exchange_id, older.signal == table.c.signal,
        older.value == table.c.value, older.delivered_at.is_(None), older.id < table.c.id,
    )  # fmt: skip


def _what(row: Row[Any]) -> str:
    return f"feedback {row.feedback} to exchange {row.exchange_id} ({row.signal})"
