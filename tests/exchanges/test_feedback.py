"""Feedback to exchanges: a detection on an exchange's list, when its plug-in takes feedback, is
told back in StopNCII's words (opened: PendingReview, confirmed: Blocked, false positive:
NotBlocked), once each, delivered through the plug-in and retried until taken."""

import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select

from hashguard.exchanges import registry
from hashguard.exchanges.api import (
    ExchangeHttp,
    ExchangeUnavailable,
    FeedbackItem,
    Page,
    Schema,
)
from hashguard.exchanges.feedback import ExchangeFeedback, FeedbackSender
from hashguard.exchanges.fields import check_fields
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Sync
from hashguard.lists.model import Category, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.review.detections import Evidence, Review
from hashguard.review.model import Decision
from hashguard.review.services import ServiceStore
from hashguard.store.tables import ExchangeFeedbackRow

from support.exchanges.harness import Clock
from support.loopback import Loopback

A, B = "0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f"


class _Reporting:
    """A throwaway plug-in: two hashes, and feedback posted as JSON to ``/feedback``."""

    name: ClassVar[str] = "reporting_test"
    title: ClassVar[str] = "A test exchange that takes feedback"
    category: ClassVar[Category] = Category.NCII
    config_schema: ClassVar[Schema] = Schema()
    credentials_schema: ClassVar[Schema | None] = None
    default_base_url: ClassVar[str] = ""
    supports_feedback: ClassVar[bool] = True
    local: ClassVar[bool] = False

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(cls.config_schema, config)

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        return dict(credentials)

    def __init__(self, config: Mapping[str, Any], credentials: Any, http: ExchangeHttp) -> None:
        self.http = http

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        source = Provenance("Exchange", sources=(Source("Exchange", "", "ref-a"),))
        yield Page([Submission("md5", A, provenance=source), Submission("md5", B)], [], {"n": 1})

    def send_feedback(self, item: FeedbackItem) -> None:
        body = json.dumps({"hash": item.value, "reference": item.reference,
                           "feedback": item.feedback}).encode()  # fmt: skip
        answer = self.http.request("POST", "feedback", body=body, content_type="application/json")
        if answer.status != 200:
            raise ExchangeUnavailable(f"feedback refused: {answer.status}")


@pytest.fixture
def reporting() -> Iterator[None]:
    registry.register(_Reporting)
    yield
    registry.unregister(_Reporting.name)


def test_detections_on_an_exchanges_list_are_told_back_once_each_and_retried(
    reporting: None, exchanges: Exchanges, sync: Sync, clock: Clock
) -> None:
    refusing = [True]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return (500 if refusing[0] else 200), "application/json", b"{}"

    stand_in = Loopback(answer)
    try:
        exchanges.add("REPORTING", "reporting_test", {"base_url": stand_in.url + "/api"})
        assert sync.fetch("REPORTING").records == 2
        review = Review(exchanges.engine, exchanges.lists, observers=[ExchangeFeedback(clock)])
        service = ServiceStore(exchanges.engine).create("photos")
        entry = exchanges.lists.entry("REPORTING", "md5", A)
        evidence = [Evidence("REPORTING", entry.id, "md5", 0.0, (), A)]
        sender = FeedbackSender(sync)
        confirmed = review.open(service, "upload-1", evidence)
        assert sender.deliver_due() == 0  # the exchange refuses: kept, tried again later
        assert len(stand_in.requests) == 1
        review.claim(confirmed.id, "reviewer-1")  # still pending review: not told again
        clock.advance(seconds=3)
        refusing[0] = False
        assert sender.deliver_due() == 1
        review.decide(confirmed.id, "reviewer-1", Decision.CONFIRM, "as listed")
        assert sender.deliver_due() == 1
        mistaken = review.open(service, "upload-2", evidence)
        assert sender.deliver_due() == 1
        review.decide(mistaken.id, "reviewer-1", Decision.FALSE_POSITIVE, "a landscape")
        assert sender.deliver_due() == 1
        clock.advance(hours=1)
        assert sender.deliver_due() == 0
    finally:
        stand_in.close()
    told = [json.loads(body) for _path, _headers, body in stand_in.requests[1:]]
    assert [t["feedback"] for t in told] == ["PendingReview", "Blocked", "PendingReview",
                                             "NotBlocked"]  # fmt: skip
    assert {t["hash"] for t in told} == {A} and {t["reference"] for t in told} == {"ref-a"}
    assert {path for path, _h, _b in stand_in.requests} == {"/api/feedback"}


def test_lists_of_exchanges_without_feedback_queue_nothing(
    exchanges: Exchanges, sync: Sync
) -> None:
    exchanges.add("SAMPLE", "sample")
    sync.fetch("SAMPLE")
    review = Review(exchanges.engine, exchanges.lists, observers=[ExchangeFeedback()])
    service = ServiceStore(exchanges.engine).create("photos")
    entry = next(iter(exchanges.lists.entries("SAMPLE")[1]))
    review.open(service, "upload-1", [Evidence("SAMPLE", entry.id, entry.signal, 0.0, (),
                                               entry.value)])  # fmt: skip
    with exchanges.engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(ExchangeFeedbackRow)).scalar() == 0
        )


def _told(stand_in: Loopback) -> list[str]:
    return [json.loads(body)["feedback"] for _path, _headers, body in stand_in.requests]


def test_a_verdict_replaces_feedback_not_yet_delivered_so_the_exchange_ends_with_it(
    reporting: None, exchanges: Exchanges, sync: Sync, clock: Clock
) -> None:
    """A PendingReview whose attempt failed is not sent after the reviewer's Blocked; a
    Blocked whose attempt failed is not sent after the complaint upheld (NotBlocked): the
    exchange keeps the last word it was told, which must be the latest decision."""
    refusing = [True]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return (500 if refusing[0] else 200), "application/json", b"{}"

    stand_in = Loopback(answer)
    try:
        exchanges.add("REPORTING", "reporting_test", {"base_url": stand_in.url + "/api"})
        sync.fetch("REPORTING")
        review = Review(exchanges.engine, exchanges.lists, observers=[ExchangeFeedback(clock)])
        service = ServiceStore(exchanges.engine).create("photos")
        entry = exchanges.lists.entry("REPORTING", "md5", A)
        evidence = [Evidence("REPORTING", entry.id, "md5", 0.0, (), A)]
        sender = FeedbackSender(sync)

        detection = review.open(service, "upload-1", evidence)
        assert sender.deliver_due() == 0  # PendingReview: the exchange is down, retried in 2 s
        refusing[0] = False
        clock.advance(seconds=1)
        review.decide(detection.id, "reviewer-1", Decision.CONFIRM, "as listed")
        # Sent once the retired row's attempt, had one been under way, is surely over.
        clock.advance(seconds=1)
        assert sender.deliver_due() == 1  # Blocked
        clock.advance(minutes=10)
        assert sender.deliver_due() == 0  # the stale PendingReview is never sent
        assert _told(stand_in) == ["PendingReview", "Blocked"]

        # Confirmed again on another upload, its Blocked fails; then a complaint is upheld.
        again = review.open(service, "upload-2", evidence)
        review.decide(again.id, "reviewer-1", Decision.CONFIRM, "as listed")
        sent = len(stand_in.requests)
        refusing[0] = True
        assert sender.deliver_due() == 0  # the Blocked (its PendingReview replaced) fails
        assert len(stand_in.requests) == sent + 1
        refusing[0] = False
        review.overturn(again.id, "complaints", "complaint upheld")
        clock.advance(minutes=10)
        assert sender.deliver_due() == 1
        clock.advance(hours=2)
        assert sender.deliver_due() == 0
    finally:
        stand_in.close()
    told = _told(stand_in)
    assert told[-1] == "NotBlocked" and told.count("NotBlocked") == 1
    assert told[2:] == ["Blocked", "NotBlocked"]  # the failed attempt, then the last verdict


def test_feedback_on_one_hash_is_sent_in_the_order_queued(
    reporting: None, exchanges: Exchanges, sync: Sync, clock: Clock
) -> None:
    """A PendingReview (not a verdict: it replaces nothing) queued while a Blocked on the same
    hash waits for its retry is sent after it, never before."""
    refusing = [False]

    def answer(path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, bytes]:
        return (500 if refusing[0] else 200), "application/json", b"{}"

    stand_in = Loopback(answer)
    try:
        exchanges.add("REPORTING", "reporting_test", {"base_url": stand_in.url + "/api"})
        sync.fetch("REPORTING")
        review = Review(exchanges.engine, exchanges.lists, observers=[ExchangeFeedback(clock)])
        service = ServiceStore(exchanges.engine).create("photos")
        entry = exchanges.lists.entry("REPORTING", "md5", A)
        evidence = [Evidence("REPORTING", entry.id, "md5", 0.0, (), A)]
        sender = FeedbackSender(sync)
        first = review.open(service, "upload-1", evidence)
        review.decide(first.id, "reviewer-1", Decision.CONFIRM, "as listed")
        refusing[0] = True
        assert sender.deliver_due() == 0  # Blocked fails: retried in 2 s
        review.open(service, "upload-2", evidence)  # PendingReview, due now
        refusing[0] = False
        assert sender.deliver_due() == 0  # it waits for the Blocked before it
        clock.advance(seconds=3)
        assert sender.deliver_due() == 1  # Blocked
        assert sender.deliver_due() == 1  # then PendingReview
    finally:
        stand_in.close()
    assert _told(stand_in) == ["Blocked", "Blocked", "PendingReview"]
