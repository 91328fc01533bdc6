"""Sending what notice and takedown has to say: notices, re-notices, escalations and reminders,
by e-mail to an abuse address (SMTP) or as JSON to a hoster's API (HTTPS), each a row of
``takedown_deliveries`` sent by ``store.outbox`` (tried until delivered, backing off after each
failure, the reason kept). Every outcome is a notice event (``sent`` or ``delivery-failed``) and
an audit entry, written with the outcome; a notice's ``sent_at`` is its first delivered notice.

An API receives the body with ``Content-Type: application/json`` and an ``Idempotency-Key``
that is the same on every retry: random per delivery (64 hex digits), so a re-notice has its
own and no two hotlines (whose notice ids both start at 1) ever send the same one. Its answer
is kept (its start) and handed to ``on_reply``: a CDN names the origin there. Plain http is
refused except to loopback or the hotline's own networks (tests, an intranet).
"""

import ipaddress
import logging
import secrets
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_string, policy
from email.utils import format_datetime, parseaddr
from typing import Any, Final, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, Row, exists, insert, update

from hashguard.errors import HashguardError
from hashguard.net.fetch import Network
from hashguard.review.webhook import failure_reason, status_reason
from hashguard.store import audit, outbox
from hashguard.store.tables import TakedownDeliveryRow, TakedownEventRow, TakedownNoticeRow
from hashguard.takedown.model import Channel, Clock, DeliveryPurpose, EventKind, NoticeState, now
from hashguard.takedown.notice import parse_reply

log = logging.getLogger("hashguard.takedown")

ACTOR: Final = "takedown"  # who sends: the hotline's own machinery
MAX_REPLY: Final = 10_000  # characters of an API's answer kept


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The mail server notices are handed to."""

    host: str
    port: int
    timeout: float = 10.0
    starttls: bool = False


def clear_text_problem(url: str, networks: Sequence[Network] = ()) -> str:
    """Why ``url`` may not be POSTed to ("" when it may): only https, or http to a loopback
    address, ``localhost`` or an address in ``networks``."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return ""
    if parts.scheme != "http" or not parts.hostname:
        return f"{url[:80]!r} is not an https URL"
    if parts.hostname == "localhost":
        return ""
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        address = None
    if address is not None and (address.is_loopback or any(address in n for n in networks)):
        return ""
    return f"{url[:80]!r} is plain http: notices go to APIs over https only"


class Deliveries:
    """The takedown outbox: ``enqueue`` in the caller's transaction, ``deliver_due`` sends."""

    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings | None,
        networks: tuple[Network, ...] = (),
        clock: Clock = now,
        on_reply: Callable[[int, str], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.engine = engine
        self.smtp = smtp
        self.networks = networks
        self.clock = clock
        self.on_reply = on_reply
        self.timeout = timeout

    def enqueue(
        self,
        connection: Connection,
        notice_id: int,
        purpose: DeliveryPurpose,
        channel: Channel,
        target: str,
        payload: str,
        step: str = "",
        at: datetime | None = None,
    ) -> int:
        """A delivery about the notice to ``target`` (an e-mail address for ``smtp``, the API's
        URL for ``api``), due at ``at`` (now by default) once the caller's transaction commits.
        ``payload``: the whole message (``EmailMessage.as_string()``) or the JSON body. Its id."""
        purpose, channel = DeliveryPurpose(purpose), Channel(channel)
        due = at or self.clock()
        inserted = connection.execute(insert(TakedownDeliveryRow).values(
            notice_id=notice_id, purpose=purpose.value, step=step, channel=channel.value,
            target=target, payload=payload,
            idempotency_key=secrets.token_hex(32),
            created_at=due, attempts=0, next_attempt_at=due, delivered_at=None, last_error="",
            reply="",
        ))  # fmt: skip
        return int(cast(Any, inserted.inserted_primary_key)[0])

    def deliver_due(self, limit: int = 100) -> int:
        """Attempt each delivery due now (at most ``limit``), recording each outcome; the
        number delivered."""
        at = self.clock()
        replies: dict[int, str] = {}  # delivery id -> the API's answer
        answered: list[tuple[int, str]] = []  # (notice id, answer) of delivered API calls

        def send(row: Row[Any]) -> str | None:
            if row.channel == Channel.SMTP.value:
                return self._mail(row, at)
            if row.channel == Channel.API.value:
                return self._post(client, row, replies)
            return f"unknown channel {row.channel!r}"

        def record(connection: Connection, row: Row[Any], error: str | None) -> None:
            reply = replies.pop(row.id, None)
            if reply is not None:
                connection.execute(update(TakedownDeliveryRow)
                                   .where(TakedownDeliveryRow.__table__.c.id == row.id)
                                   .values(reply=reply))  # fmt: skip
            self._record(connection, row, error, reply, at)
            if error is None and reply is not None:
                answered.append((row.notice_id, reply))

        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            delivered = outbox.deliver_due(
                self.engine, TakedownDeliveryRow, send, at, log,
                lambda row: f"takedown {row.purpose} {row.id} ({row.channel} to {row.target})",
                ~_withdrawn(), limit=limit, record=record,
            )  # fmt: skip
        for notice_id, reply in answered:
            self._hand_on(notice_id, reply)
        return delivered

    # --- sending ------------------------------------------------------------------------------

    def _mail(self, row: Row[Any], at: datetime) -> str | None:
        if self.smtp is None:
            return "no mail server is configured for notices (takedown_smtp)"
        message = message_from_string(row.payload, policy=policy.default)
        if "Date" not in message:
            message["Date"] = format_datetime(at)
        where = f"{self.smtp.host}:{self.smtp.port}"
        sender = parseaddr(str(message.get("From", "")))[1]
        name = sender.rpartition("@")[2] or "localhost"
        try:
            with smtplib.SMTP(self.smtp.host, self.smtp.port, local_hostname=name,
                              timeout=self.smtp.timeout) as server:  # fmt: skip
                if self.smtp.starttls:
                    server.starttls()
                server.send_message(message, from_addr=sender or None, to_addrs=[row.target])
        except smtplib.SMTPRecipientsRefused as error:
            code, answer = next(iter(error.recipients.values()))
            return f"{where} refused {row.target}: {code} {_text(answer)}"
        except smtplib.SMTPResponseException as error:
            return f"{where} answered {error.smtp_code} {_text(error.smtp_error)}"
        except smtplib.SMTPServerDisconnected:
            return f"{where} closed the connection"
        except smtplib.SMTPException as error:
            return f"{where}: {error}"
        except ConnectionRefusedError:
            return f"connection refused by {where}"
        except TimeoutError:
            return f"no answer from {where} in time"
        except OSError as error:
            return f"{where}: {error.strerror or error}"
        return None

    def _post(self, client: httpx.Client, row: Row[Any], replies: dict[int, str]) -> str | None:
        problem = clear_text_problem(row.target, self.networks)
        if problem:
            return problem
        headers = {"Content-Type": "application/json", "Idempotency-Key": row.idempotency_key,
                   "X-Hashguard-Event": f"takedown.{row.purpose}"}  # fmt: skip
        try:
            answer = client.post(row.target, content=row.payload.encode(), headers=headers)
        except httpx.HTTPError as error:
            return failure_reason(error)
        replies[row.id] = answer.text[:MAX_REPLY]
        if 200 <= answer.status_code < 300:
            return None
        return status_reason(answer.status_code)

    # --- recording ----------------------------------------------------------------------------

    def _record(self, connection: Connection, row: Row[Any], error: str | None,
                reply: str | None, at: datetime) -> None:  # fmt: skip
        """The attempt's event and audit entry; a notice's first delivered notice sets its
        ``sent_at``."""
        detail: dict[str, Any] = {"delivery": row.id, "channel": row.channel,
                                  "purpose": row.purpose, "target": row.target,
                                  "attempt": row.attempts + 1}  # fmt: skip
        if row.step:
            detail["step"] = row.step
        if error is not None:
            kind = EventKind.DELIVERY_FAILED
            detail["reason"] = error[:500]
        else:
            kind = EventKind.SENT
            if reply is not None:
                read = parse_reply(reply)
                detail.update({name: value for name, value in
                               (("ticket", read.ticket), ("origin", read.origin),
                                ("reply_error", read.error)) if value is not None})  # fmt: skip
            if row.purpose == DeliveryPurpose.NOTICE.value:
                notices = TakedownNoticeRow.__table__
                first = (notices.c.id == row.notice_id, notices.c.sent_at.is_(None))
                connection.execute(update(TakedownNoticeRow).where(*first).values(sent_at=at))
        connection.execute(insert(TakedownEventRow).values(
            notice_id=row.notice_id, at=at, kind=kind.value, actor=ACTOR, detail=detail,
        ))  # fmt: skip
        audit.append(connection, ACTOR, f"takedown.{kind.value}", f"notice:{row.notice_id}",
                     detail)  # fmt: skip

    def _hand_on(self, notice_id: int, reply: str) -> None:
        """Give an API's answer to ``on_reply``; what it refuses is logged, never raised."""
        if self.on_reply is None:
            return
        try:
            self.on_reply(notice_id, reply)
        except HashguardError as error:
            log.warning("takedown notice %d: the API's answer was not used: %s", notice_id, error)


def _text(answer: bytes | str) -> str:
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else answer
    return " ".join(text.split())[:200]


def _withdrawn() -> Any:
    """Deliveries of a withdrawn notice: never sent (they stay, unsent, as the record of what
    was queued when an analyst took the notice back)."""
    notices, deliveries = TakedownNoticeRow.__table__, TakedownDeliveryRow.__table__
    return exists().where(notices.c.id == deliveries.c.notice_id,
                          notices.c.state == NoticeState.WITHDRAWN.value)  # fmt: skip
