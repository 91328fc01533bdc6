"""A fetch's lease: shown as running only while it holds, and kept while a plug-in works long
inside one page (a slow exchange's retries and probes), so that no other instance takes the
exchange from a fetch that is alive; a fetch killed on this machine does not keep it: the next
fetch takes it over at once, one of two that try."""

import dataclasses
import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, event, select, update

from hashguard.exchanges import holder, registry
from hashguard.exchanges.api import ExchangeHttp, FeedbackItem, Page, Schema
from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.fields import check_fields
from hashguard.exchanges.holder import Holder, this_process
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import Fetched, FetchRunning, Sync
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import ExchangeRow, utc

from support.exchanges.harness import LOOPBACK, Clock, add_peer
from support.exchanges.hashguard_peer import PeerFeed, change
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


# --- a killed fetch's lease -------------------------------------------------------------------


def _holding(database_url: str, secret: bytes, clock: Clock) -> int:
    """A process that claims the exchange PEER as ``hashguard exchanges fetch`` does and then
    holds its lease until killed: its id, once it holds it."""
    claimed, told = os.pipe()
    wait, _never_written = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns to the test
        status = 1
        try:
            os.close(claimed)
            engine = open_engine(database_url)
            sync = Sync(Exchanges(engine, ListStore(engine), Sealer(secret), clock, LOOPBACK),
                        LOOPBACK)  # fmt: skip
            sync.claim("PEER")
            os.write(told, b"claimed")
            os.read(wait, 1)  # until killed
        finally:
            os._exit(status)
    for descriptor in (told, wait, _never_written):  # the child keeps its own: it waits on
        os.close(descriptor)
    with os.fdopen(claimed, "rb") as answer:
        assert answer.read(7) == b"claimed", "the holding process did not claim the exchange"
    return pid


def _hold(engine: Engine, clock: Clock, held_by: Holder) -> None:
    """The exchange's lease held for 5 minutes from now by ``held_by``."""
    until = clock() + timedelta(minutes=5)
    with engine.begin() as connection:
        connection.execute(update(ExchangeRow).values(
            lease_until=until, next_fetch_at=until, lease_holder=held_by.text()))  # fmt: skip


def _lease_holder(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(ExchangeRow.lease_holder)).scalar_one()


def test_a_killed_fetch_does_not_keep_its_lease_but_a_running_one_does(
    database_url: str, exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock,
    secret: bytes,
) -> None:  # fmt: skip
    feed.changes = [change(1, A)]
    add_peer(exchanges, feed)
    pid = _holding(database_url, secret, clock)
    try:
        with pytest.raises(
            FetchRunning,
            match=rf"PEER is being fetched now by process {pid} "
            r"on .+, which is running: its lease holds until 2024-05-01 12:05:00Z",
        ):
            sync.fetch("PEER")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    # Killed: the next fetch, at the same moment, takes its lease over and fetches.
    done = sync.fetch("PEER")
    assert (done.succeeded, done.records) == (True, 1)
    assert _lease_holder(exchanges.engine) is None


def test_a_killed_fetch_not_yet_reaped_runs_no_longer(
    database_url: str, exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock,
    secret: bytes,
) -> None:  # fmt: skip
    """Killed, its parent not having waited for it yet (a zombie): its lease is taken over."""
    add_peer(exchanges, feed)
    pid = _holding(database_url, secret, clock)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped
        assert sync.fetch("PEER").succeeded
    finally:
        os.waitpid(pid, 0)


def _ended() -> int:
    """The id of a process that has ended (and been reaped)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


@pytest.mark.parametrize("gone", [
    pytest.param(lambda me: dataclasses.replace(me, pid=_ended()), id="its id names no process"),
    pytest.param(lambda me: dataclasses.replace(me, started=f"{me.started}0"),
                 id="its id names a process started later"),
])  # fmt: skip
def test_a_lease_held_by_a_process_that_runs_no_longer_is_taken_over_at_once(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock,
    gone: Callable[[Holder], Holder],
) -> None:  # fmt: skip
    add_peer(exchanges, feed)
    _hold(exchanges.engine, clock, gone(this_process()))
    assert sync.claim("PEER").holder == this_process().text()
    assert _lease_holder(exchanges.engine) == this_process().text()


def test_a_lease_held_on_another_host_is_kept_to_its_end_and_says_by_whom(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock
) -> None:
    """Whether a process on another host (or in another container) runs cannot be told: its
    lease holds to its end, as before holders were recorded."""
    add_peer(exchanges, feed)
    elsewhere = dataclasses.replace(this_process(), host="worker-2.example", pid=_ended())
    _hold(exchanges.engine, clock, elsewhere)
    with pytest.raises(
        FetchRunning,
        match=rf"by process {elsewhere.pid} on worker-2.example "
        r"\(or was: whether it still runs cannot be told from here\), so it can "
        r"be fetched again when that lease ends, at 2024-05-01 12:05:00Z",
    ):
        sync.fetch("PEER")
    other_place = dataclasses.replace(elsewhere, host=this_process().host, place="another/1")
    _hold(exchanges.engine, clock, other_place)
    with pytest.raises(FetchRunning, match="cannot be told from here"):
        sync.fetch("PEER")
    clock.advance(minutes=5)
    assert sync.fetch("PEER").succeeded


def test_a_holder_hidden_from_this_process_is_not_said_to_run(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """``/proc`` mounted with hidepid shows another user's process no ``/proc/PID``: whether
    it runs cannot be told, so its lease holds to its end, and the refusal does not say that it
    runs."""
    add_peer(exchanges, feed)
    hidden = tmp_path / "proc"  # this machine's boot and namespace, and no process's entry
    (hidden / "sys/kernel/random").mkdir(parents=True)
    boot = Path("/proc/sys/kernel/random/boot_id").read_text()
    (hidden / "sys/kernel/random/boot_id").write_text(boot)
    (hidden / "self/ns").mkdir(parents=True)
    (hidden / "self/ns/pid").symlink_to(os.readlink("/proc/self/ns/pid"))
    held_by = dataclasses.replace(this_process(), pid=1)  # init: it runs
    monkeypatch.setattr(holder, "_PROC", hidden)
    assert held_by.here() and not held_by.running() and not held_by.gone()
    _hold(exchanges.engine, clock, held_by)
    with pytest.raises(FetchRunning, match="cannot be told from here") as refused:
        sync.fetch("PEER")
    assert "which is running" not in str(refused.value)


def test_of_two_fetches_taking_over_a_dead_holders_lease_exactly_one_does(
    database_url: str, exchanges: Exchanges, feed: PeerFeed, clock: Clock, secret: bytes
) -> None:
    add_peer(exchanges, feed)
    _hold(exchanges.engine, clock, dataclasses.replace(this_process(), pid=_ended()))
    engines = [open_engine(database_url) for _ in range(2)]
    # Both have read the dead holder before either writes: each waits for the other there.
    together = threading.Barrier(2)
    for engine in engines:
        _meet_before_claiming(engine, together)
    outcomes: list[object] = []

    def claim(engine: Engine) -> None:
        syncing = Sync(Exchanges(engine, ListStore(engine), Sealer(secret), clock, LOOPBACK),
                       LOOPBACK)  # fmt: skip
        try:
            outcomes.append(syncing.claim("PEER"))
        except FetchRunning as refused:
            outcomes.append(refused)

    threads = [threading.Thread(target=claim, args=(engine,)) for engine in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for engine in engines:
            engine.dispose()
    refused = [str(o) for o in outcomes if isinstance(o, FetchRunning)]
    assert len(outcomes) == 2 and len(refused) == 1, outcomes
    assert f"by process {os.getpid()} on" in refused[0] and "which is running" in refused[0]
    assert _lease_holder(exchanges.engine) == this_process().text()


def _meet_before_claiming(engine: Engine, together: threading.Barrier) -> None:
    """``engine``'s first update of the exchanges table waits for ``together``'s other
    party."""
    met: list[bool] = []

    @event.listens_for(engine, "before_cursor_execute")
    def meet(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not met and statement.lstrip().upper().startswith("UPDATE EXCHANGES"):
            met.append(True)
            together.wait(30)
