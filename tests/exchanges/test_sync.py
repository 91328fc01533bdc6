"""Fetching exchanges into their lists: all of a fetch or none of it, from the stored
checkpoint, bad records quarantined while the rest applies, failures backed off, and several
instances on one database fetching each exchange once. Against a real hashguard origin
(``hashguard serve``) and a loopback stand-in of its change feed."""

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hashguard.exchanges.credentials import Sealer
from hashguard.exchanges.store import Exchanges
from hashguard.exchanges.sync import FetchRunning, Scheduler, Sync
from hashguard.lists.model import Category, ChangeKind, EntryStatus, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.store import audit
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

from support.exchanges.harness import LOOPBACK, Clock, Committed, add_peer
from support.exchanges.hashguard_peer import PeerFeed, change
from support.server import Server, running
from support.waiting import eventually

A, B, C = ("0cc175b9c0f1b6a831c399e269772661", "92eb5ffee6ae2fec3ad71c777531578f",
           "4a8a08f09d37b73795649038408b5f33")  # fmt: skip


def _md5(number: int) -> str:
    return hashlib.md5(str(number).encode()).hexdigest()


def _held(store: ListStore, name: str) -> dict[str, EntryStatus]:
    _list, entries = store.entries(name)
    return {entry.value: entry.status for entry in entries}


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[Server]:
    """A hashguard service holding the list ``known`` (A and B)."""
    url = f"sqlite:///{tmp_path / 'origin.db'}"
    engine = open_engine(url)
    store = ListStore(engine)
    store.create("known", "Hotline NL", Category.KNOWN_CSAM, ["NL"])
    source = Provenance("Hotline NL", sources=(Source("Hotline NL", "NL", "case-1"),))
    store.apply("known", [Submission("md5", A, frozenset({"a"}), source),
                          Submission("md5", B, frozenset({"b"}), source)])  # fmt: skip
    engine.dispose()
    with running(url) as served:
        yield served


def test_a_hashguard_origin_is_fetched_then_followed_from_its_checkpoint(
    exchanges: Exchanges, sync: Sync, origin: Server, clock: Clock, secret: bytes
) -> None:
    exchanges.add("PEER", "hashguard", {"base_url": origin.url, "list": "known"},
                  {"api_key": origin.tokens["auditor"]}, interval=300)  # fmt: skip
    assert exchanges.lists.get("PEER").category is Category.KNOWN_CSAM
    assert isinstance(exchanges.lists, Committed) and exchanges.lists.told == 1  # the new list

    first = sync.fetch("PEER")
    assert (first.succeeded, first.records, first.up_to_date) == (True, 2, True)
    assert _held(exchanges.lists, "PEER") == {A: EntryStatus.ACTIVE, B: EntryStatus.ACTIVE}
    status = exchanges.status("PEER")
    assert (status.last_fetch_succeeded, status.up_to_date, status.fetched_items) == (True, True, 2)
    assert status.running_fetch_start_ts is None and status.checkpoint_ts is not None
    assert status.next_fetch_at == clock.at.replace(minute=5)
    assert exchanges.lists.told == 2

    # The origin deletes A and adds C: the next fetch reads those two changes only.
    origin_engine = open_engine(origin.database_url)
    origin_store = ListStore(origin_engine)
    origin_store.change("known", ChangeKind.DELETE, "md5", A, "removed at the origin")
    origin_store.apply("known", [Submission("md5", C)])
    clock.advance(minutes=5)
    second = sync.fetch("PEER")
    assert (second.succeeded, second.records) == (True, 2)
    assert _held(exchanges.lists, "PEER") == {A: EntryStatus.DELETED, B: EntryStatus.ACTIVE,
                                              C: EntryStatus.ACTIVE}  # fmt: skip

    # A restart (new objects, a new connection) resumes from the stored checkpoint.
    engine = open_engine(exchanges.engine.url.render_as_string(hide_password=False))
    try:
        again = Sync(
            Exchanges(engine, ListStore(engine), Sealer(secret), clock, LOOPBACK), LOOPBACK
        )
        resumed = again.fetch("PEER")
        assert (resumed.succeeded, resumed.records, resumed.counts["pages"]) == (True, 0, 0)
        origin_store.apply("known", [Submission("md5", _md5(9))])
        assert again.fetch("PEER").records == 1
    finally:
        engine.dispose()
        origin_engine.dispose()
    fetches = audit.events(exchanges.engine, action="exchange.fetch")
    assert [e.subject for e in fetches] == ["PEER"] * 4
    assert exchanges.status("PEER").fetched_items == 5


def test_a_corrupt_record_is_quarantined_and_named_while_the_rest_applies(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed
) -> None:
    feed.changes = [change(1, A), {"version": 2, "kind": "add", "what": "is this"},
                    change(3, "not-an-md5"), change(4, B)]  # fmt: skip
    add_peer(exchanges, feed)
    fetched = sync.fetch("PEER")
    assert (fetched.succeeded, fetched.records, fetched.quarantined) == (True, 2, 2)
    assert _held(exchanges.lists, "PEER") == {A: EntryStatus.ACTIVE, B: EntryStatus.ACTIVE}

    status = exchanges.status("PEER")
    assert (status.quarantined, status.last_counts["quarantined"]) == (2, 2)
    held = exchanges.quarantined("PEER")
    assert [q.id for q in held] == sorted((q.id for q in held), reverse=True)  # newest first
    by_position = {q.position: q for q in held}
    assert set(by_position) == {"change 2 (after version 0)", "page 1, record 2"}
    assert "is this" in by_position["change 2 (after version 0)"].excerpt
    assert "md5" in by_position["page 1, record 2"].reason
    events = audit.events(exchanges.engine, action="exchange.quarantine")
    assert {(e.subject, e.actor) for e in events} == {("PEER", "exchange:PEER")}
    assert {'"position":"page 1, record 2"' in e.details for e in events} == {True, False}
    assert all('"exchange":"PEER"' in e.details and "reason" in e.details for e in events)

    # The checkpoint moved past them: the next fetch reads only what is new.
    feed.changes.append(change(5, C))
    assert (sync.fetch("PEER").records, exchanges.status("PEER").quarantined) == (1, 2)


def test_a_failed_fetch_applies_nothing_and_backs_off(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock
) -> None:
    feed.changes = [change(n, _md5(n)) for n in range(1, 6)]
    feed.page = 2
    feed.fail_from = 2  # the first page answers, the second does not
    add_peer(exchanges, feed, interval=10)

    failed = sync.fetch("PEER")
    assert not failed.succeeded and "503 overloaded" in failed.error
    assert exchanges.lists.get("PEER").version == 0  # the first page is not applied either
    status = exchanges.status("PEER")
    assert (status.last_fetch_succeeded, status.failures) == (False, 1)
    assert "503 overloaded" in status.last_error
    assert status.next_fetch_at == clock.at.replace(minute=1)  # 60 s: never below the interval

    clock.advance(seconds=60)
    feed.requests = 0
    sync.fetch("PEER")
    assert exchanges.status("PEER").failures == 2
    assert exchanges.status("PEER").next_fetch_at == clock.at.replace(minute=3)  # doubled

    clock.advance(seconds=120)
    feed.fail_from = None
    recovered = sync.fetch("PEER")
    assert (recovered.succeeded, recovered.records) == (True, 5)
    status = exchanges.status("PEER")
    assert (status.failures, status.last_error, status.last_fetch_succeeded) == (0, "", True)
    assert status.next_fetch_at == clock.at.replace(second=10)
    outcomes = [('"succeeded":true' in e.details)
                for e in audit.events(exchanges.engine, action="exchange.fetch")]  # fmt: skip
    assert outcomes == [False, False, True]


def test_a_fetch_applies_at_most_max_records_and_the_next_is_due_at_once(
    exchanges: Exchanges, feed: PeerFeed, clock: Clock
) -> None:
    feed.changes = [change(n, _md5(n)) for n in range(1, 6)]
    feed.page = 2
    add_peer(exchanges, feed)
    capped = Sync(exchanges, LOOPBACK, max_records=2)
    done = [capped.fetch("PEER") for _ in range(3)]
    assert [(d.records, d.up_to_date) for d in done] == [(2, False), (2, False), (1, True)]
    assert len(_held(exchanges.lists, "PEER")) == 5
    assert exchanges.status("PEER").next_fetch_at == clock.at.replace(minute=1)


def test_an_exchange_claimed_by_one_instance_is_not_fetched_by_another_until_its_lease_ends(
    engine: Engine, exchanges: Exchanges, feed: PeerFeed, clock: Clock, secret: bytes
) -> None:
    feed.changes = [change(1, A)]
    add_peer(exchanges, feed)
    first = Sync(exchanges, LOOPBACK)
    second = Sync(Exchanges(engine, ListStore(engine), Sealer(secret), clock, LOOPBACK), LOOPBACK)

    (candidate,) = first.due(clock())
    lease = first.claim_due(candidate)
    assert lease is not None
    assert Scheduler(second).tick() == []
    with pytest.raises(FetchRunning, match="PEER is being fetched"):
        second.fetch("PEER")
    assert first.claim_due(candidate) is None  # once

    # The first instance died: when its lease ends, the second takes the exchange.
    clock.advance(minutes=6)
    (taken,) = Scheduler(second).tick()
    assert taken.succeeded and taken.records == 1
    late = first.run(lease)
    assert late.lost and not late.succeeded
    assert len(audit.events(engine, action="exchange.fetch")) == 1


def test_two_schedulers_on_one_database_fetch_each_exchange_once(
    database_url: str, exchanges: Exchanges, clock: Clock, secret: bytes
) -> None:
    feeds = [PeerFeed("known", f"key-{n}") for n in range(4)]
    try:
        for n, served in enumerate(feeds):
            served.changes = [change(1, _md5(n))]
            add_peer(exchanges, served, name=f"PEER{n}")
        engines = [open_engine(database_url) for _ in range(2)]
        schedulers = [
            Scheduler(Sync(Exchanges(e, ListStore(e), Sealer(secret), clock, LOOPBACK), LOOPBACK))
            for e in engines
        ]
        together = threading.Barrier(2)
        done: list[list[object]] = [[], []]

        def run(n: int) -> None:
            together.wait()
            done[n] = list(schedulers[n].tick())

        threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for opened in engines:
            opened.dispose()
        assert len(done[0]) + len(done[1]) == 4
        fetches = audit.events(exchanges.engine, action="exchange.fetch")
        assert sorted(e.subject for e in fetches) == [f"PEER{n}" for n in range(4)]
        assert [len(served.fetched) for served in feeds] == [1, 1, 1, 1]
    finally:
        for served in feeds:
            served.close()


def test_the_scheduler_thread_fetches_what_is_due_and_at_once_when_woken(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, clock: Clock
) -> None:
    feed.changes = [change(1, A)]
    add_peer(exchanges, feed, interval=3600)
    scheduler = Scheduler(sync, poll=600)
    scheduler.start()
    try:
        assert eventually(lambda: exchanges.status("PEER").last_fetch_succeeded, 30)
        feed.changes.append(change(2, B))
        clock.advance(minutes=1)  # not due for an hour: only "fetch now" fetches it
        assert scheduler.wake("PEER")
        assert eventually(lambda: exchanges.status("PEER").fetched_items == 2, 30)
    finally:
        scheduler.stop()
    assert len(audit.events(exchanges.engine, action="exchange.fetch")) == 2


def test_a_change_the_list_refuses_is_quarantined_and_the_fetch_goes_on(
    exchanges: Exchanges, sync: Sync, feed: PeerFeed, engine: Engine
) -> None:
    """A change the origin's feed holds that this list cannot take (a change to a value it
    lacks, here because the add before it was unreadable; a name the database cannot hold) is
    found and quarantined; the changes before and after it apply and the checkpoint moves."""
    unreadable_add = change(1, A)
    unreadable_add["provenance"] = "not an object"
    nul_name = change(4, C)
    nul_name["provenance"] = {"submitted_by": "Hotline\x00NL", "assessed_by": "", "sources": []}
    feed.changes = [unreadable_add, change(2, B), change(3, A, kind="delete"), nul_name,
                    change(5, _md5(5))]  # fmt: skip
    add_peer(exchanges, feed)
    fetched = sync.fetch("PEER")
    assert fetched.succeeded, fetched.error
    refused_by_database = engine.dialect.name == "postgresql"  # SQLite keeps a NUL
    held = {q.position: q for q in exchanges.quarantined("PEER")}
    assert "change 1 (after version 0)" in held
    assert "does not hold" in held["page 1, record 2"].reason  # the delete of A, named
    assert "the list refused it" in held["page 1, record 2"].reason
    applied = {B, _md5(5)} | (set() if refused_by_database else {C})
    assert set(_held(exchanges.lists, "PEER")) == applied
    if refused_by_database:
        assert "the database refused it" in held["page 1, record 3"].reason
    assert fetched.quarantined == len(held) == (3 if refused_by_database else 2)
    assert fetched.records == len(applied)
    assert exchanges.status("PEER").failures == 0

    # The checkpoint moved past them: the next fetch does not read them again.
    feed.changes.append(change(6, _md5(6)))
    again = sync.fetch("PEER")
    assert (again.succeeded, again.records, again.quarantined) == (True, 1, 0)
