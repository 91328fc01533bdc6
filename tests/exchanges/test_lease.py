"""A fetch's lease: shown as running only while it holds, and kept while a plug-in works long
inside one page (a slow exchange's retries and probes), so that no other instance takes the
exchange from a fetch that is alive."""

import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, select

from hashguard.exchanges import registry
from hashguard.exchanges.api import ExchangeHttp, FeedbackItem, Page, Schema
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.fields import check_fields
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Fetched, FetchRunning, Sync
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.store.lists import ListStore
from hashguard.store.tables import ExchangeRow, utc

from support.exchanges.harness import LOOPBACK, Clock
from support.waiting import eventually

A = "0cc175b9c0f1b6a831c399e269772661"


class _Slow:
    """A throwaway plug-in whose one page takes as long as the test says (``gate``)."""

    name: ClassVar[str] = "slow_test"
    title: ClassVar[str] = "A test exchange that is slow to answer"
    category: ClassVar[Category] = Category.TEST
    config_schema: ClassVar[Schema] = Schema()
    credentials_schema: ClassVar[Schema | None] = None
    default_base_url: ClassVar[str] = ""
    supports_feedback: ClassVar[bool] = False
    local: ClassVar[bool] = True
    inside = threading.Event()
    gate = threading.Event()

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_fields(cls.config_schema, config)

    @classmethod
    def check_credentials(cls, credentials: Mapping[str, Any]) -> dict[str, Any]:
        return dict(credentials)

    def __init__(self, config: Mapping[str, Any], credentials: Any, http: ExchangeHttp) -> None:
        pass

    def fetch(self, checkpoint: Mapping[str, Any] | None) -> Iterator[Page]:
        self.inside.set()
        assert self.gate.wait(30), "the test never let the page through"
        yield Page([Submission("md5", A)], [], {"n": 1})

    def send_feedback(self, item: FeedbackItem) -> None:
        raise NotImplementedError


@pytest.fixture
def slow() -> Iterator[type[_Slow]]:
    _Slow.inside.clear()
    _Slow.gate.clear()
    registry.register(_Slow)
    yield _Slow
    _Slow.gate.set()
    registry.unregister(_Slow.name)


def _in_background(sync: Sync, name: str) -> tuple[threading.Thread, list[Fetched]]:
    done: list[Fetched] = []
    thread = threading.Thread(target=lambda: done.append(sync.fetch(name)))
    thread.start()
    return thread, done


def _lease_until(engine: Engine) -> Any:
    with engine.connect() as connection:
        until = connection.execute(select(ExchangeRow.lease_until)).scalar_one()
    return None if until is None else utc(until)


def test_a_fetch_shows_as_running_only_while_its_lease_holds(
    exchanges: Exchanges, sync: Sync, clock: Clock, slow: type[_Slow]
) -> None:
    exchanges.add("SLOW", "slow_test")
    thread, done = _in_background(sync, "SLOW")
    try:
        assert slow.inside.wait(30)
        assert exchanges.status("SLOW").running_fetch_start_ts == int(clock().timestamp())
        # The instance fetching it died (here: it stalls) and its lease ran out: an HMA client
        # must not see a fetch running for ever.
        clock.advance(minutes=6)
        assert exchanges.status("SLOW").running_fetch_start_ts is None
    finally:
        slow.gate.set()
        thread.join(30)
    assert done and done[0].succeeded
    assert exchanges.status("SLOW").running_fetch_start_ts is None


def test_a_long_page_keeps_its_lease_so_no_other_instance_takes_the_exchange(
    engine: Engine, exchanges: Exchanges, clock: Clock, secret: bytes, slow: type[_Slow]
) -> None:
    exchanges.add("SLOW", "slow_test")
    first = Sync(exchanges, LOOPBACK, renew_every=0.02)
    second = Sync(Exchanges(engine, ListStore(engine), Sealer(secret), clock), LOOPBACK)
    thread, done = _in_background(first, "SLOW")
    try:
        assert slow.inside.wait(30)
        claimed = _lease_until(engine)
        # The plug-in works on (retries, probes) for longer than a lease: the first instance
        # renews it meanwhile, so the second never takes the exchange from a live fetch.
        for _ in range(3):
            clock.advance(minutes=4)
            assert eventually(lambda: (_lease_until(engine) or claimed) > clock(), 10)
            with pytest.raises(FetchRunning):
                second.fetch("SLOW")
        assert clock() > claimed
        assert exchanges.status("SLOW").running_fetch_start_ts is not None
    finally:
        slow.gate.set()
        thread.join(30)
    assert done and done[0].succeeded and done[0].records == 1
    assert exchanges.status("SLOW").running_fetch_start_ts is None
