"""Sending what notice and takedown has to say: notices, re-notices, escalations and reminders,
by e-mail to an abuse address (SMTP) or as JSON to a hoster's API (HTTPS), each a row of
``takedown_deliveries`` sent by ``store.outbox`` (tried until delivered, backing off after each
failure, the reason kept). Every outcome is a notice event (``sent`` or ``delivery-failed``) and
an audit entry, written with the outcome. A notice's ``sent_at`` is its first delivered notice
(its deadline is the one its signed document states, from when it was composed). Re-notices,
escalations and reminders about a notice whose removal is verified are not sent, nor anything
about a withdrawn one (a referring hotline's status still goes).

An API receives the body with ``Content-Type: application/json`` and an ``Idempotency-Key``
that is the same on every retry: random per delivery (64 hex digits), so a re-notice has its
own and no two hotlines (whose notice ids both start at 1) ever send the same one. Its answer
is kept (its first 10 000 characters; no more is read) and handed to ``on_reply``: a CDN names
the origin there. Plain http is refused except to loopback or the hotline's own networks (tests,
an intranet).

One slow server never holds the scheduler up: an API exchange (connecting, sending, the whole
answer) ends ``timeout`` seconds after it began, and a mail's (connecting to QUIT) the mail
server's ``timeout``, however slowly the other side trickles its bytes: at that moment the
connection is shut down under whatever read or write is waiting, and the attempt fails.
"""

import ipaddress
import logging
import secrets
import smtplib
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email import message_from_string, policy
from email.utils import format_datetime, parseaddr
from time import monotonic
from typing import Any, Final, cast
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, Row, and_, exists, insert, or_, update

from hashguard.errors import HashguardError
from hashguard.net.answers import decoded
from hashguard.net.fetch import Cutoff, Network
from hashguard.review.webhook import failure_reason, status_reason
from hashguard.store import audit, outbox
from hashguard.store.tables import TakedownDeliveryRow, TakedownEventRow, TakedownNoticeRow
from hashguard.takedown.model import (
    Channel,
    Clock,
    DeliveryPurpose,
    EventKind,
    NoticeState,
    now,
)
from hashguard.takedown.notice import parse_reply

log = logging.getLogger("hashguard.takedown")

ACTOR: Final = "takedown"  # who sends: the hotline's own machinery
MAX_REPLY: Final = 10_000  # characters of an API's answer kept
MAX_REPLY_BYTES: Final = 4 * MAX_REPLY  # bytes of it read at most (UTF-8: up to 4 a character)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """The mail server notices are handed to; ``timeout`` (seconds) bounds each mail's whole
    exchange with it."""

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
    """The takedown outbox: ``enqueue`` in the caller's transaction, ``deliver_due`` sends.
    Its HTTP client is made at the first API delivery (it loads the CA certificates: tens of
    milliseconds) and kept until ``close``."""

    def __init__(
        self,
        engine: Engine,
        smtp: SmtpSettings | None,
        networks: tuple[Network, ...] = (),
        clock: Clock = now,
        on_reply: Callable[[int, str], None] | None = None,
        timeout: float = 10.0,
    ) -> None:
        """``timeout``: seconds an API exchange may take, whole."""
        self.engine = engine
        self.smtp = smtp
        self.networks = networks
        self.clock = clock
        self.on_reply = on_reply
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

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
        replies: dict[int, str] = {}  # delivery id -> the API's answer
        answered: list[tuple[int, str]] = []  # (notice id, answer) of delivered API calls

        def send(row: Row[Any]) -> str | None:
            if row.channel == Channel.SMTP.value:
                return self._mail(row, self.clock())
            if row.channel == Channel.API.value:
                return self._post(self.client(), row, replies)
            return f"unknown channel {row.channel!r}"

        def record(connection: Connection, row: Row[Any], error: str | None) -> None:
            reply = replies.pop(row.id, None)
            if reply is not None:
                connection.execute(update(TakedownDeliveryRow)
                                   .where(TakedownDeliveryRow.__table__.c.id == row.id)
                                   .values(reply=reply))  # fmt: skip
            self._record(connection, row, error, reply, self.clock())
            if error is None and reply is not None:
                answered.append((row.notice_id, reply))

        delivered = outbox.deliver_due(
            self.engine, TakedownDeliveryRow, send, self.clock(), log,
            lambda row: f"takedown {row.purpose} {row.id} ({row.channel} to {row.target})",
            ~_not_to_send(), limit=limit, record=record, clock=self.clock,
        )  # fmt: skip
        for notice_id, reply in answered:
            self._hand_on(notice_id, reply)
        return delivered

    def client(self) -> httpx.Client:
        """The HTTP client for the APIs (made now if there is none)."""
        with self._lock:
            if self._client is None:
                # kept between passes (loading the CA certificates costs 40 ms), but a connection
                # per exchange (none kept alive): each is watched from its start
                self._client = httpx.Client(
                    timeout=self.timeout, follow_redirects=False,
                    limits=httpx.Limits(max_keepalive_connections=0),
                )  # fmt: skip
            return self._client

    def close(self) -> None:
        """Close the HTTP client (the next API delivery makes another)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

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
        cutoff = Cutoff(monotonic() + self.smtp.timeout)
        try:
            error = _exchange(self.smtp, cutoff, message, sender, name, row.target)
        finally:
            cutoff.stop()
        if error is not None and cutoff.cut.is_set():  # what failed was the cut
            return f"no complete exchange with {where} within {self.smtp.timeout:g} s"
        return error

    def _post(self, client: httpx.Client, row: Row[Any], replies: dict[int, str]) -> str | None:
        problem = clear_text_problem(row.target, self.networks)
        if problem:
            return problem
        headers = {"Content-Type": "application/json", "Idempotency-Key": row.idempotency_key,
                   "X-Hashguard-Event": f"takedown.{row.purpose}",
                   "Accept-Encoding": "identity"}  # fmt: skip
        cutoff = Cutoff(monotonic() + self.timeout)
        try:
            with client.stream("POST", row.target, content=row.payload.encode(), headers=headers,
                               extensions={"trace": cutoff.trace}) as answer:  # fmt: skip
                text = _start(answer)
        except httpx.HTTPError as error:
            if cutoff.cut.is_set() or isinstance(error, httpx.TimeoutException):
                return self._late(row.target)
            return failure_reason(error)
        finally:
            cutoff.stop()
        if cutoff.cut.is_set():  # the end read was the cut, not the answer's
            return self._late(row.target)
        replies[row.id] = text
        if 200 <= answer.status_code < 300:
            return None
        return status_reason(answer.status_code)

    def _late(self, url: str) -> str:
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
        return f"no complete answer from {where} within {self.timeout:g} s"

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
                self._first_sent(connection, row.notice_id, at)
        connection.execute(insert(TakedownEventRow).values(
            notice_id=row.notice_id, at=at, kind=kind.value, actor=ACTOR, detail=detail,
        ))  # fmt: skip
        audit.append(connection, ACTOR, f"takedown.{kind.value}", f"notice:{row.notice_id}",
                     detail)  # fmt: skip

    def _first_sent(self, connection: Connection, notice_id: int, at: datetime) -> None:
        """The notice's first delivered notice: ``sent_at`` (the deadline stays the one the
        signed notice states)."""
        notices = TakedownNoticeRow.__table__
        connection.execute(update(TakedownNoticeRow).where(notices.c.id == notice_id,
                                                           notices.c.sent_at.is_(None))
                           .values(sent_at=at))  # fmt: skip

    def _hand_on(self, notice_id: int, reply: str) -> None:
        """Give an API's answer to ``on_reply``; what it refuses is logged, never raised."""
        if self.on_reply is None:
            return
        try:
            self.on_reply(notice_id, reply)
        except HashguardError as error:
            log.warning("takedown notice %d: the API's answer was not used: %s", notice_id, error)


def _exchange(smtp: SmtpSettings, cutoff: Cutoff, message: Any, sender: str, name: str,
              target: str) -> str | None:  # fmt: skip
    """Hand ``message`` to the mail server for ``target``; None, or why it was not taken."""
    where = f"{smtp.host}:{smtp.port}"
    try:
        with _Smtp(cutoff, smtp.host, smtp.port, local_hostname=name,
                   timeout=smtp.timeout) as server:  # fmt: skip
            if smtp.starttls:
                server.starttls()
            server.send_message(message, from_addr=sender or None, to_addrs=[target])
    except smtplib.SMTPRecipientsRefused as error:
        code, answer = next(iter(error.recipients.values()))
        return f"{where} refused {target}: {code} {_text(answer)}"
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


def _text(answer: bytes | str) -> str:
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else answer
    return " ".join(text.split())[:200]


AFTER_REMOVAL: Final = (DeliveryPurpose.RENOTICE.value, DeliveryPurpose.ESCALATION.value,
                        DeliveryPurpose.REMINDER.value)  # fmt: skip
"""What is no longer sent once a notice's removal is verified."""


def _not_to_send() -> Any:
    """Deliveries never sent (they stay, unsent, as the record of what was queued): all of a
    withdrawn notice's (an analyst took it back), and the re-notices, escalations and
    reminders of a notice whose removal is verified (its notice and status messages go)."""
    notices, deliveries = TakedownNoticeRow.__table__, TakedownDeliveryRow.__table__
    return exists().where(
        notices.c.id == deliveries.c.notice_id,
        or_(notices.c.state == NoticeState.WITHDRAWN.value,
            and_(notices.c.state == NoticeState.REMOVED.value,
                 deliveries.c.purpose.in_(AFTER_REMOVAL))),
    )  # fmt: skip


def _start(answer: httpx.Response) -> str:
    """The start of an answer's body: at most MAX_REPLY characters, read no further than
    MAX_REPLY_BYTES."""
    data = bytearray()
    for chunk in answer.iter_bytes():
        data += chunk
        if len(data) >= MAX_REPLY_BYTES:
            break
    return decoded(bytes(data[:MAX_REPLY_BYTES]), answer.charset_encoding)[:MAX_REPLY]


class _Smtp(smtplib.SMTP):
    """smtplib's client, its connection watched by ``cutoff`` from the moment it is made."""

    def __init__(self, cutoff: Cutoff, host: str, port: int, local_hostname: str,
                 timeout: float) -> None:  # fmt: skip
        self.cutoff = cutoff
        super().__init__(host, port, local_hostname=local_hostname, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self.cutoff.watch(sock)
        return sock
