"""Deliveries against a real SMTP server and real HTTP servers on loopback: notices arrive as
composed (the signed document attached or POSTed with an idempotency key that every retry
repeats), failures are retried after a backoff with their reason kept, each attempt is an event
and an audit entry, and an API's answer is kept and handed on, junk included, never crashing."""

import json
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any

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
)
from hashguard.takedown import notice, signing
from hashguard.takedown.delivery import Deliveries, SmtpSettings, clear_text_problem
from hashguard.takedown.model import Channel, DeliveryPurpose

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
