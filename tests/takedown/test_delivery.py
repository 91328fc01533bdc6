"""Deliveries against a real SMTP server and real HTTP servers on loopback: notices arrive as
composed (the signed document attached or POSTed with an idempotency key that every retry
repeats), failures are retried after a backoff with their reason kept, each attempt is an event
and an audit entry, and an API's answer is kept and handed on, junk included, never crashing."""

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, select

from hashguard.errors import Invalid
from hashguard.store.database import open_engine
from hashguard.store.tables import (
    AuditEventRow,
    TakedownDeliveryRow,
    TakedownEventRow,
    TakedownNoticeRow,
    utc,
)
from hashguard.takedown import delivery, notice, signing
from hashguard.takedown.delivery import Deliveries, SmtpSettings, clear_text_problem
from hashguard.takedown.model import Channel, DeliveryPurpose, NoticeKind, Timing

from support.loopback import Loopback
from support.notice_rows import stored_notice
from support.smtp import smtp_server

SENDER = notice.Sender("Meldpunt", "notices@hotline.example", "hotline.example", "NL")
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.moment = START

    def __call__(self) -> datetime:
        return self.moment


def composed(engine: Engine, **values: Any) -> tuple[Any, dict[str, Any]]:
    row = stored_notice(engine, **values)
    return row, notice.compose(row._mapping, SENDER, Ed25519PrivateKey.generate(), START)


def rows(engine: Engine, table: Any, notice_id: int | None = None) -> list[Any]:
    query = select(table.__table__).order_by(table.__table__.c.id)
    if notice_id is not None:
        query = query.where(table.__table__.c.notice_id == notice_id)
    with engine.connect() as connection:
        return list(connection.execute(query).all())


def sent_at(engine: Engine, notice_id: int) -> datetime | None:
    [row] = [r for r in rows(engine, TakedownNoticeRow) if r.id == notice_id]
    return row.sent_at


def test_a_notice_is_mailed_with_its_signed_document_and_recorded(engine: Engine) -> None:
    row, document = composed(engine)
    clock = Clock()
    with smtp_server() as mailbox:
        deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port), clock=clock)
        message = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                               sender=SENDER)  # fmt: skip
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                               "abuse@files.example", message.as_string())  # fmt: skip
        assert deliveries.deliver_due() == 1
        assert mailbox.wait_for(1)
    [received] = mailbox.messages
    assert mailbox.envelopes == [("notices@hotline.example", ["abuse@files.example"])]
    assert received["Subject"] == message["Subject"]
    assert received["Message-ID"] == message["Message-ID"]
    assert parsedate_to_datetime(received["Date"]) == START  # stamped when sent, by the clock
    [attachment] = received.iter_attachments()
    assert signing.verify(json.loads(attachment.get_content())) == signing.verify(document)
    assert sent_at(engine, row.id) is not None
    [event] = rows(engine, TakedownEventRow, row.id)
    assert event.kind == "sent" and event.actor == "takedown"
    assert event.detail["channel"] == "smtp" and event.detail["target"] == "abuse@files.example"
    with engine.connect() as connection:
        actions = connection.execute(select(AuditEventRow.__table__.c.action)).scalars().all()
    assert actions == ["takedown.sent"]
    assert deliveries.deliver_due() == 0  # delivered once


def test_a_refused_mail_is_retried_after_a_backoff_with_its_reason_kept(engine: Engine) -> None:
    row, document = composed(engine)
    clock = Clock()
    with smtp_server() as mailbox:
        mailbox.refusals.append("451 4.3.0 Mailbox busy, try again later")
        deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port), clock=clock)
        message = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                               sender=SENDER)  # fmt: skip
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                               "abuse@files.example", message.as_string())  # fmt: skip
        assert deliveries.deliver_due() == 0
        [waiting] = rows(engine, TakedownDeliveryRow)
        assert waiting.attempts == 1 and waiting.delivered_at is None
        assert waiting.last_error == (f"127.0.0.1:{mailbox.port} answered 451 4.3.0 Mailbox "
                                      "busy, try again later")  # fmt: skip
        assert sent_at(engine, row.id) is None
        assert deliveries.deliver_due() == 0 and mailbox.messages == []  # backing off
        clock.moment += timedelta(seconds=3)
        assert deliveries.deliver_due() == 1
        assert mailbox.wait_for(1)
    assert mailbox.messages[0]["Message-ID"] == message["Message-ID"]
    failed, sent = rows(engine, TakedownEventRow, row.id)
    assert failed.kind == "delivery-failed" and "451 4.3.0" in failed.detail["reason"]
    assert sent.kind == "sent" and sent.detail["attempt"] == 2


def test_mail_without_a_server_or_to_one_that_is_gone_fails_with_a_reason(
    engine: Engine,
) -> None:
    row, document = composed(engine)
    message = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                           sender=SENDER).as_string()  # fmt: skip
    with smtp_server() as mailbox:
        port = mailbox.port
    for settings in (None, SmtpSettings("127.0.0.1", port)):
        deliveries = Deliveries(engine, settings)
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                               "abuse@files.example", message)  # fmt: skip
        assert deliveries.deliver_due() == 0
    reasons = [r.last_error for r in rows(engine, TakedownDeliveryRow)]
    assert reasons[0] == "no mail server is configured for notices (takedown_smtp)"
    assert reasons[1] == f"connection refused by 127.0.0.1:{port}"


def test_an_api_gets_the_body_with_one_idempotency_key_and_its_answer_is_handed_on(
    engine: Engine,
) -> None:
    row, document = composed(engine, kind="cdn", cdn=True)
    answers = [(503, b"busy"), (200, b'{"ticket": "T-9", "origin": "203.0.113.7"}')]
    cdn = Loopback(lambda path, headers, body: (answers[0][0], "application/json",
                                                answers.pop(0)[1]))  # fmt: skip
    handed: list[tuple[Any, ...]] = []
    clock = Clock()
    deliveries = Deliveries(engine, None, clock=clock, on_reply=lambda *reply: handed.append(reply))
    body = json.dumps(notice.api_body(document, DeliveryPurpose.NOTICE))
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API,
                               cdn.url + "/abuse/notices", body)  # fmt: skip
        assert deliveries.deliver_due() == 0
        clock.moment += timedelta(seconds=3)
        assert deliveries.deliver_due() == 1
    finally:
        cdn.close()
    (path, first, sent), (_, second, _) = cdn.requests
    assert path == "/abuse/notices" and json.loads(sent) == json.loads(body)
    assert first["Content-Type"] == "application/json"
    assert first["Idempotency-Key"] == second["Idempotency-Key"]
    assert len(first["Idempotency-Key"]) == 64
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert delivery.reply == '{"ticket": "T-9", "origin": "203.0.113.7"}'
    assert handed == [(row.id, delivery.reply)]
    failed, delivered = rows(engine, TakedownEventRow, row.id)
    assert failed.detail["reason"] == "HTTP 503 Service Unavailable"
    assert delivered.detail["ticket"] == "T-9" and delivered.detail["origin"] == "203.0.113.7"


def test_a_malformed_answer_is_recorded_and_a_refused_one_does_not_crash(engine: Engine) -> None:
    row, document = composed(engine)
    api = Loopback(lambda path, headers, body: (200, "text/html", b"<html>thanks!</html>"))

    def refuse(notice_id: int, text: str) -> None:
        raise Invalid("origin: not an address")

    deliveries = Deliveries(engine, None, on_reply=refuse)
    body = json.dumps(notice.api_body(document, DeliveryPurpose.NOTICE))
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API, api.url,
                               body)  # fmt: skip
        assert deliveries.deliver_due() == 1
    finally:
        api.close()
    [event] = rows(engine, TakedownEventRow, row.id)
    assert event.kind == "sent" and event.detail["reply_error"].startswith("the answer is not JSON")
    assert rows(engine, TakedownDeliveryRow)[0].reply == "<html>thanks!</html>"


@pytest.mark.parametrize("charset", ["base64", "hex", "zlib", "idna", "nonsense"])
def test_an_answer_in_a_charset_that_makes_no_text_is_read_as_utf8(
    engine: Engine, charset: str
) -> None:
    """A hoster's answer naming a codec that is no text encoding is still recorded as its
    reply, and the delivery as sent (not failed, and so not sent again every pass)."""
    row, document = composed(engine)
    answer = b'{"ticket": "T-9\xff"}'
    api = Loopback(lambda path, headers, body: (200, f"application/json; charset={charset}",
                                                answer))  # fmt: skip
    deliveries = Deliveries(engine, None)
    body = json.dumps(notice.api_body(document, DeliveryPurpose.NOTICE))
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API, api.url,
                               body)  # fmt: skip
        assert deliveries.deliver_due() == 1
        assert deliveries.deliver_due() == 0  # nothing left to send again
    finally:
        api.close()
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert delivery.reply == '{"ticket": "T-9\ufffd"}' and delivery.delivered_at is not None


def test_plain_http_goes_only_to_loopback_and_the_hotlines_networks(engine: Engine) -> None:
    row, _ = composed(engine)
    deliveries = Deliveries(engine, None)
    with engine.begin() as connection:
        deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API,
                           "http://203.0.113.9/notices", "{}")  # fmt: skip
    assert deliveries.deliver_due() == 0
    [refused] = rows(engine, TakedownDeliveryRow)
    assert refused.last_error.endswith("is plain http: notices go to APIs over https only")
    assert clear_text_problem("https://api.hoster.example/notices") == ""
    assert clear_text_problem("http://127.0.0.1:8080/x") == ""
    assert clear_text_problem("http://[::1]:8080/x") == ""
    assert clear_text_problem("http://10.1.2.3/x", (ip_network("10.0.0.0/8"),)) == ""
    assert clear_text_problem("http://10.1.2.3/x") != ""
    assert (
        clear_text_problem("ftp://hoster.example/x")
        == "'ftp://hoster.example/x' is not an https URL"
    )


@pytest.mark.parametrize("channel", [Channel.SMTP, Channel.API])
def test_each_delivery_has_its_own_idempotency_key(engine: Engine, channel: Channel) -> None:
    row, _ = composed(engine)
    other, _ = composed(engine)
    deliveries = Deliveries(engine, None)
    target = "abuse@files.example" if channel is Channel.SMTP else "https://api.example/n"
    with engine.begin() as connection:
        for notice_id, purpose, step in [(row.id, DeliveryPurpose.NOTICE, ""),
                                         (row.id, DeliveryPurpose.RENOTICE, ""),
                                         (row.id, DeliveryPurpose.RENOTICE, ""),
                                         (row.id, DeliveryPurpose.ESCALATION, "upstream"),
                                         (other.id, DeliveryPurpose.NOTICE, "")]:  # fmt: skip
            deliveries.enqueue(connection, notice_id, purpose, channel, target, "{}", step)
    keys = [r.idempotency_key for r in rows(engine, TakedownDeliveryRow)]
    assert len(set(keys)) == 5


def test_two_hotlines_never_send_the_same_idempotency_key(engine: Engine, tmp_path: Path) -> None:
    # Both hotlines' first notice has id 1 and goes to the same hoster's API: a hoster that
    # keeps keys would take the second hotline's notice for a retry of the first's.
    other_hotline = open_engine(f"sqlite:///{tmp_path / 'other.db'}")
    target = "https://api.files.example/notices"
    try:
        keys = []
        for hotline in (engine, other_hotline):
            row, _ = composed(hotline)
            with hotline.begin() as connection:
                Deliveries(hotline, None).enqueue(connection, row.id, DeliveryPurpose.NOTICE,
                                                  Channel.API, target, "{}")  # fmt: skip
            [delivery] = rows(hotline, TakedownDeliveryRow)
            keys.append((row.id, delivery.idempotency_key))
    finally:
        other_hotline.dispose()
    (first_id, first_key), (second_id, second_key) = keys
    assert first_id == second_id
    assert first_key != second_key


def test_nothing_more_is_sent_about_a_withdrawn_notice(engine: Engine) -> None:
    row, document = composed(engine)
    kept, _ = composed(engine)
    with smtp_server() as mailbox:
        deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port), clock=Clock())
        mail = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                            sender=SENDER).as_string()  # fmt: skip
        with engine.begin() as connection:
            for notice_id in (row.id, kept.id):
                deliveries.enqueue(connection, notice_id, DeliveryPurpose.NOTICE, Channel.SMTP,
                                   "abuse@files.example", mail)  # fmt: skip
            connection.execute(TakedownNoticeRow.__table__.update()
                               .where(TakedownNoticeRow.__table__.c.id == row.id)
                               .values(state="withdrawn"))  # fmt: skip
        assert deliveries.deliver_due() == 1
        assert mailbox.wait_for(1)
    assert [d.notice_id for d in rows(engine, TakedownDeliveryRow) if d.delivered_at] == [kept.id]


def test_an_http_client_is_made_at_the_first_post_and_kept_until_closed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client loads the CA certificates (tens of milliseconds): the scheduler's pass every
    second must not pay that each time, nor when it has nothing to POST."""
    made: list[httpx.Client] = []

    class Counted(httpx.Client):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(delivery.httpx, "Client", Counted)
    row, document = composed(engine)
    api = Loopback(lambda path, headers, body: (200, "application/json", b'{"ticket": "T-1"}'))
    body = json.dumps(notice.api_body(document, DeliveryPurpose.NOTICE))

    def post(deliveries: Deliveries) -> None:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.RENOTICE, Channel.API,
                               api.url + "/abuse/notices", body)  # fmt: skip

    try:
        with smtp_server() as mailbox:
            deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port), clock=Clock())
            assert deliveries.deliver_due() == 0 and made == []  # nothing due
            mail = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                                sender=SENDER).as_string()  # fmt: skip
            with engine.begin() as connection:
                deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                                   "abuse@files.example", mail)  # fmt: skip
            assert deliveries.deliver_due() == 1 and made == []  # mail only
            for _ in range(2):
                post(deliveries)
                assert deliveries.deliver_due() == 1
            assert len(made) == 1 and not made[0].is_closed  # one for both passes
            deliveries.close()
            assert made[0].is_closed
            post(deliveries)
            assert deliveries.deliver_due() == 1  # a new one after close
            deliveries.close()
    finally:
        api.close()
    assert len(made) == 2 and made[1].is_closed
    assert len(api.requests) == 3


@pytest.mark.parametrize("purpose", list(DeliveryPurpose))
def test_after_a_verified_removal_only_the_notice_and_status_still_go(
    engine: Engine, purpose: DeliveryPurpose
) -> None:
    row, _ = composed(engine, state="removed", verified_at=START)
    api = Loopback(lambda path, headers, body: (200, "application/json", b"{}"))
    deliveries = Deliveries(engine, None, clock=Clock())
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, purpose, Channel.API, api.url + "/n", "{}")
        sent = deliveries.deliver_due()
    finally:
        api.close()
    goes = purpose in (DeliveryPurpose.NOTICE, DeliveryPurpose.STATUS)
    assert sent == (1 if goes else 0)
    assert len(api.requests) == sent
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert (delivery.delivered_at is not None) is goes and delivery.attempts == sent


@pytest.mark.parametrize("kind", ["notice", "order"])
def test_a_late_delivery_keeps_the_deadline_the_signed_notice_states(
    engine: Engine, kind: str
) -> None:
    # Composed at START with its deadline from then; the mail server is down for five hours.
    timing = Timing(notice=timedelta(hours=24), order=timedelta(hours=12))
    deadline = START + timing.deadline(NoticeKind(kind))
    look = timing.first_look(NoticeKind(kind), deadline)
    row, document = composed(engine, kind=kind, state="open", deadline_at=deadline,
                             next_action_at=look)  # fmt: skip
    message = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                           sender=SENDER).as_string()  # fmt: skip
    clock = Clock()
    clock.moment = START + timedelta(hours=5)
    with smtp_server() as mailbox:
        deliveries = Deliveries(engine, SmtpSettings(mailbox.host, mailbox.port), clock=clock)
        with engine.begin() as connection:
            for _ in range(2):  # the second one (an operator's resend) changes nothing more
                deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                                   "abuse@files.example", message, at=START)  # fmt: skip
        assert deliveries.deliver_due(limit=1) == 1
        clock.moment += timedelta(hours=1)
        assert deliveries.deliver_due() == 1
    [stored] = [r for r in rows(engine, TakedownNoticeRow) if r.id == row.id]
    assert utc(stored.sent_at) == START + timedelta(hours=5)  # the first delivered
    # the hoster, the portal, the scheduler and the monitor all read the same deadline
    assert utc(stored.deadline_at) == deadline
    assert document["hashguard_notice"]["deadline"] == notice.stamp(deadline)
    assert utc(stored.next_action_at) == look


class Trickle:
    """A server on loopback that takes a connection and answers slowly: ``answer(conn, stop)``
    writes what it likes (a pause between bytes); how many bytes got out is kept."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.answer = answer
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection, contextlib.suppress(OSError):
                self.answer(connection, self.stop)

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(30)


def read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    while len(body) < length:
        body += connection.recv(65536)


def test_an_api_trickling_its_answer_is_cut_at_the_deadline(engine: Engine) -> None:
    def trickle(connection: socket.socket, stop: threading.Event) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 300\r\n\r\n")  # fmt: skip
        for _ in range(300):  # a byte a tenth of a second: no read ever waits a second
            if stop.wait(0.1):
                return
            connection.sendall(b" ")

    row, _ = composed(engine)
    server = Trickle(trickle)
    deliveries = Deliveries(engine, None, clock=Clock(), timeout=1.0)
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API,
                               f"http://127.0.0.1:{server.port}/notices", "{}")  # fmt: skip
        assert deliveries.deliver_due() == 0
    finally:
        server.close()
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert delivery.last_error == f"no complete answer from 127.0.0.1:{server.port} within 1 s"
    assert delivery.delivered_at is None and delivery.attempts == 1


def test_an_endless_answer_is_read_no_further_than_what_is_kept(engine: Engine) -> None:
    written = [0]
    total = 64 * 2**20

    def flood(connection: socket.socket, stop: threading.Event) -> None:
        read_request(connection)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           b"Connection: close\r\n\r\n")  # fmt: skip
        chunk = "é".encode() * 32768
        while written[0] < total and not stop.is_set():
            connection.sendall(chunk)
            written[0] += len(chunk)

    row, _ = composed(engine)
    server = Trickle(flood)
    deliveries = Deliveries(engine, None, clock=Clock(), timeout=60.0)
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.API,
                               f"http://127.0.0.1:{server.port}/notices", "{}")  # fmt: skip
        assert deliveries.deliver_due() == 1
    finally:
        server.close()
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert delivery.reply == "é" * 10_000
    assert written[0] < total  # the hotline hung up long before the end


def test_a_mail_server_trickling_its_replies_is_cut_at_the_deadline(engine: Engine) -> None:
    def trickle(connection: socket.socket, stop: threading.Event) -> None:
        for _ in range(300):  # a greeting line a tenth of a second, never its last
            if stop.wait(0.1):
                return
            connection.sendall(b"220-mail.files.example is thinking\r\n")

    row, document = composed(engine)
    message = notice.email(document, DeliveryPurpose.NOTICE, to="abuse@files.example",
                           sender=SENDER).as_string()  # fmt: skip
    server = Trickle(trickle)
    deliveries = Deliveries(engine, SmtpSettings("127.0.0.1", server.port, timeout=1.0))
    try:
        with engine.begin() as connection:
            deliveries.enqueue(connection, row.id, DeliveryPurpose.NOTICE, Channel.SMTP,
                               "abuse@files.example", message)  # fmt: skip
        assert deliveries.deliver_due() == 0
    finally:
        server.close()
    [delivery] = rows(engine, TakedownDeliveryRow)
    assert delivery.last_error == f"no complete exchange with 127.0.0.1:{server.port} within 1 s"
