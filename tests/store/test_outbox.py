"""The outbox shared by the hotline and the victims' referrals, with two instances on one
database: a row is claimed before it is sent, so it is sent once."""

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.hotline import outbox
from hashguard.hotline.model import OutboxKind
from hashguard.hotline.partners import Endpoint
from hashguard.store import outbox as store_outbox
from hashguard.store.tables import HotlineOutboxRow

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


@pytest.mark.parametrize("timed_by", ["clock", "elapsed"])
def test_a_row_claimed_late_in_a_long_pass_is_not_sent_again_by_another_instance(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, timed_by: str
) -> None:
    # The first instance's pass takes six minutes over its first row (a slow server); the
    # second row's claim must run from when it is claimed, not from when the pass began.
    case = new_case(engine, "https://site-a.test/page")
    with engine.begin() as connection:
        for n in (1, 2):
            outbox.enqueue(connection, case, OutboxKind.POLICE, "police", {"n": n})
    start = datetime.now(UTC) + timedelta(seconds=1)
    taken = [0.0]  # seconds the first pass has taken
    monkeypatch.setattr(store_outbox, "monotonic", lambda: 1000.0 + taken[0])
    clock = (lambda: start + timedelta(seconds=taken[0])) if timed_by == "clock" else None
    log = logging.getLogger("test")
    sent_by_second: list[int] = []
    second_pass: list[int] = []

    def first(row: Any) -> None:
        if json.loads(row.payload)["n"] == 1:
            taken[0] = 360.0
        else:  # meanwhile another instance runs its pass
            second_pass.append(store_outbox.deliver_due(
                engine, HotlineOutboxRow, lambda r: sent_by_second.append(r.id),
                start + timedelta(seconds=taken[0]), log, str))  # fmt: skip
        return None

    delivered = store_outbox.deliver_due(engine, HotlineOutboxRow, first, start, log, str,
                                         clock=clock)  # fmt: skip
    assert delivered == 2
    assert second_pass == [0] and sent_by_second == []
    late = outbox.messages(engine, case)[1]
    assert late.delivered_at is not None and late.attempts == 1
