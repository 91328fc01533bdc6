"""The outbox shared by the hotline and the victims' referrals, with two instances on one
database: a row is claimed before it is sent, so it is sent once."""

from datetime import UTC, datetime

from sqlalchemy import Engine

from hashguard.hotline import outbox
from hashguard.hotline.model import OutboxKind
from hashguard.hotline.partners import Endpoint

from support.hotline_items import new_case
from support.loopback import Loopback


def test_a_message_being_sent_by_one_instance_is_not_sent_by_another(engine: Engine) -> None:
    police = Loopback(lambda path, headers, body: (202, "application/json", b"{}"))
    case = new_case(engine, "https://site-a.test/page")
    with engine.begin() as connection:
        outbox.enqueue(connection, case, OutboxKind.POLICE, "police", {"url": "x"})
    endpoint = Endpoint("Police", police.url + "/reports", None)
    second_instance: list[int] = []

    def while_sending(kind: OutboxKind, target: str) -> Endpoint:
        # the second instance runs while the first is between reading the row and posting it
        if not second_instance:
            second_instance.append(outbox.deliver_due(engine, lambda k, t: endpoint))
        return endpoint

    try:
        assert outbox.deliver_due(engine, while_sending, datetime.now(UTC)) == 1
    finally:
        police.close()
    assert second_instance == [0]
    assert len(police.requests) == 1
    [sent] = outbox.messages(engine, case)
    assert sent.delivered_at is not None and sent.attempts == 1
