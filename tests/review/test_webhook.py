"""Webhook calls that fail say why: a service answering 500 (a real receiver on loopback), a
name that does not resolve (``nothing.invalid``, reserved never to), a refused connection, a
service without a webhook URL. Each failure is logged with its reason, told to the counter,
kept as the call's state, and a detection counts as quarantined only once its service took the
call. On SQLite and PostgreSQL; benign test hashes only."""

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.review import actions, webhook
from hashguard.review.detections import Evidence, Review
from hashguard.review.services import Service
from hashguard.store.lists import ListStore
from hashguard.store.tables import WebhookRow

from support.loopback import Loopback

PDQ = "f" * 32 + "0" * 32


@pytest.fixture
def receiver() -> Iterator[Loopback]:
    """A service's webhook endpoint that answers 500 until ``receiver.answer`` is replaced."""
    made = Loopback(lambda path, headers, body: (500, "text/plain", b"down"))
    yield made
    made.close()


@pytest.fixture
def review(engine: Engine) -> Review:
    lists = ListStore(engine)
    lists.create("known", "Test Hotline", Category.KNOWN_CSAM, ["NL"])
    lists.apply("known", [Submission("pdq", PDQ, frozenset({"A1"}))])
    return Review(engine, lists)


def detect(review: Review, service: Service, ref: str) -> int:
    """A matched upload of ``service``: a detection, quarantined (its call in the outbox)."""
    entry = review.lists.entry("known", "pdq", PDQ)
    evidence = [Evidence("known", entry.id, "pdq", 4, ("A1",), entry.value)]
    return review.open(service, ref, evidence, account_ref="account-1").id


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nobody listens there once closed


def test_failed_calls_are_logged_with_their_reason_counted_and_kept_pending(
    review: Review, receiver: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    services = review.services
    failing = detect(review, services.create("answers-500", webhook_url=receiver.url + "/h"),
                     "up-1")  # fmt: skip
    unresolved = detect(review, services.create("unresolved",
                                                webhook_url="http://nothing.invalid/hook"),
                        "up-2")  # fmt: skip
    refused = detect(review, services.create("refused",
                                             webhook_url=f"http://127.0.0.1:{closed_port()}/h"),
                     "up-3")  # fmt: skip
    silent = detect(review, services.create("no-webhook"), "up-4")
    outcomes: list[bool] = []
    sender = webhook.WebhookSender(review.engine, bytes(32), attempted=outcomes.append)
    now = datetime.now(UTC)
    with caplog.at_level(logging.WARNING, logger="hashguard.webhook"):
        assert sender.send_due(now) == 0
    assert outcomes == [False, False, False]  # the service without a URL is not tried
    logged = {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING}
    assert any("service answers-500 failed: HTTP 500 Internal Server Error" in line
               and f"detection {failing}" in line for line in logged), logged  # fmt: skip
    assert any("service unresolved failed: cannot resolve nothing.invalid" in line
               for line in logged), logged  # fmt: skip
    assert any("service refused failed: connection refused by 127.0.0.1:" in line
               for line in logged), logged  # fmt: skip
    state = {c.detection_id: c for c in webhook.calls(review.engine)}
    assert state[failing].state == webhook.PENDING and state[failing].attempts == 1
    assert state[failing].last_error == "HTTP 500 Internal Server Error"
    assert state[unresolved].last_error.startswith("cannot resolve nothing.invalid")
    assert state[refused].last_error.startswith("connection refused by 127.0.0.1:")
    assert state[silent].attempts == 0 and state[silent].last_error == webhook.NO_WEBHOOK
    assert state[failing].next_attempt_at == now + timedelta(seconds=2)  # backoff
    assert webhook.quarantines_delivered(review.engine, [failing, unresolved, refused,
                                                         silent]) == set()  # fmt: skip
    waiting = webhook.backlog(review.engine, now + timedelta(seconds=60))
    # The service without a URL is never called: its call waits for no one, and is not counted.
    assert waiting.pending == 3 and waiting.failed == 0 and waiting.oldest_seconds >= 60


def test_a_call_is_given_up_loudly_after_its_last_attempt(
    review: Review, receiver: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    ident = detect(review, review.services.create("photos", webhook_url=receiver.url + "/h"),
                   "up-1")  # fmt: skip
    with review.engine.begin() as connection:  # a day of retries, all failed but the last
        connection.execute(update(WebhookRow).values(attempts=webhook.MAX_ATTEMPTS - 1))
    sender = webhook.WebhookSender(review.engine, bytes(32))
    with caplog.at_level(logging.ERROR, logger="hashguard.webhook"):
        sender.send_due()
    [given_up] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "HTTP 500 Internal Server Error; given up after 36 attempts" in given_up
    [call] = webhook.calls(review.engine, detection_id=ident)
    assert call.state == webhook.FAILED
    assert webhook.backlog(review.engine) == webhook.Backlog(0, 0.0, 1)


def test_a_detection_is_quarantined_once_its_service_took_the_call(
    review: Review, receiver: Loopback
) -> None:
    ident = detect(review, review.services.create("photos", webhook_url=receiver.url + "/h"),
                   "up-1")  # fmt: skip
    outcomes: list[bool] = []
    sender = webhook.WebhookSender(review.engine, bytes(32), attempted=outcomes.append)
    now = datetime.now(UTC)
    sender.send_due(now)
    assert webhook.quarantines_delivered(review.engine, [ident]) == set()
    receiver.answer = lambda path, headers, body: (204, "text/plain", b"")
    assert sender.send_due(now + timedelta(seconds=2)) == 1
    assert outcomes == [False, True]
    [call] = webhook.calls(review.engine, detection_id=ident)
    assert call.state == webhook.DELIVERED and call.last_error == ""
    assert webhook.quarantines_delivered(review.engine, [ident]) == {ident}
    assert webhook.backlog(review.engine) == webhook.Backlog(0, 0.0, 0)
    # Reversed: no longer quarantined, whatever was delivered before.
    [quarantine] = actions.actions(review.engine, ident)
    actions.reverse(review.engine, quarantine.id, "reviewer-1", "a different picture")
    assert webhook.quarantines_delivered(review.engine, [ident]) == set()


def test_a_quarantine_delivered_stays_so_after_its_call_is_purged(
    review: Review, receiver: Loopback
) -> None:
    """The purge deletes a delivered call once its retention passes (30 days); the quarantine
    it delivered is still in force and still shown as taken."""
    service = review.services.create("photos", webhook_url=receiver.url + "/h")
    ident = detect(review, service, "kept-1")
    with review.engine.begin() as connection:
        connection.execute(update(WebhookRow).values(delivered_at=datetime.now(UTC)))
    assert webhook.quarantines_delivered(review.engine, [ident]) == {ident}
    with review.engine.begin() as connection:
        connection.execute(WebhookRow.__table__.delete())  # what the purge does after 30 days
    assert webhook.quarantines_delivered(review.engine, [ident]) == {ident}
