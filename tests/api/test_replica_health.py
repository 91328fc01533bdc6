"""How a replica judges itself (``Service.readiness``, ``serving`` and ``broken``), on SQLite: its
lag is measured on its own clock, never from the writers' timestamps; readiness answers from
memory while the database hangs; a database restored from a backup (behind the index, or
written past it since) has its lists loaded again, no restart needed; a long refresh that moves
on is not stuck, a follower blocked in the database is; a first load that fails is tried again;
a refresh tells the applied version only once the index holds it. All hashes are random benign
values."""

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update

from hashguard.api import ServiceSettings
from hashguard.api import service as service_module
from hashguard.api.errors import ApiError
from hashguard.api.matching import ready_matcher
from hashguard.api.service import Service
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching import matcher as matcher_module
from hashguard.matching.query import parse
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import ChangeRow, EntryRow, HashListRow, IdCounterRow

from support.waiting import eventually

VALUES = [f"{n:02x}" * 32 for n in range(1, 40)]
LIST = "followed"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    opened = open_engine(f"sqlite:///{tmp_path / 'hashguard.db'}")
    store = ListStore(opened)
    store.create(LIST, "Hotline", Category.TEST)
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[:5]])
    yield opened
    opened.dispose()


@pytest.fixture
def served(engine: Engine, tmp_path: Path) -> Iterator[Service]:
    """The service over that database, started and ready (refreshing every 0.05 s)."""
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key",
                                              refresh_interval=0.05, max_lag=1.0))  # fmt: skip
    service.start()
    try:
        assert eventually(lambda: service.readiness().ready, 20), service.readiness().reason
        yield service
    finally:
        service.stop()


def test_lag_is_measured_on_the_replicas_clock_not_from_the_writers_timestamps(
    served: Service, engine: Engine
) -> None:
    # A change stamped an hour ago (a long import commits changes stamped with its start; a
    # writer's clock may run behind): the replica applies it at once, and stays ready.
    store = ListStore(engine)
    store.apply(LIST, [Submission("pdq", VALUES[10])])
    version = store.get(LIST).version
    with engine.begin() as connection:
        connection.execute(update(ChangeRow).where(ChangeRow.version == version)
                           .values(at=datetime.now(UTC) - timedelta(hours=1)))  # fmt: skip
    assert eventually(lambda: served.matcher and served.matcher.match(parse("pdq", VALUES[10])))
    for _ in range(20):
        readiness = served.readiness()
        assert readiness.ready, readiness.reason
        assert readiness.lag is not None and readiness.lag.seconds < 1.0


def test_readiness_answers_from_memory_while_the_database_hangs(served: Service) -> None:
    hung = threading.Event()
    released = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> Any:
        hung.set()
        released.wait()
        raise RuntimeError("the database went away")

    served.lists.versions = hanging  # type: ignore[method-assign]
    served.lists.lists = hanging  # type: ignore[method-assign]
    try:
        assert hung.wait(10), "the follower never read the database"
        answered: list[Any] = []
        asking = threading.Thread(target=lambda: answered.append(served.readiness()))
        asking.start()
        asking.join(5)
        assert answered, "readiness waited on the database"
        assert served.broken() is None  # stuck for a moment only: no reason to restart
    finally:
        released.set()
    reason = eventually(lambda: not (r := served.readiness()).ready and r.reason, 10)
    assert reason == "following the lists failed (see the log)"  # no database error text


def _restore(engine: Engine, version: int) -> None:
    """The database as if restored from a backup taken at ``version`` of the list: the later
    changes, and the entries they made, are gone, and the ids they took are handed out again."""
    with engine.begin() as connection:
        connection.execute(delete(ChangeRow).where(ChangeRow.version > version))
        kept = select(ChangeRow.entry_id)
        connection.execute(delete(EntryRow).where(EntryRow.id.not_in(kept)))
        connection.execute(update(HashListRow).values(version=version))
        last = select(func.max(EntryRow.id)).scalar_subquery()
        connection.execute(update(IdCounterRow).where(IdCounterRow.name == "list_entries")
                           .values(value=last))  # fmt: skip


def _matches(service: Service, value: str) -> bool:
    assert service.matcher is not None
    return bool(service.matcher.match(parse("pdq", value)))


def _entry(service: Service, value: str) -> int:
    """The id of the entry ``value`` matches."""
    assert service.matcher is not None
    (match,) = service.matcher.match(parse("pdq", value))
    return match.entry


def test_a_restored_database_is_followed_without_a_restart_even_once_written_past_the_index(
    served: Service, engine: Engine
) -> None:
    store = ListStore(engine)
    backup = store.get(LIST).version
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[5:7]])
    assert eventually(lambda: _matches(served, VALUES[6]))
    # Restored from the backup, then written to past the version the replica applied, all
    # while its follower waits: it never sees the database behind it, only another history.
    with served._sync:
        _restore(engine, backup)
        store.apply(LIST, [Submission("pdq", value) for value in VALUES[10:13]])
        assert store.get(LIST).version > served.matcher.applied()[store.get(LIST).id]  # type: ignore[union-attr]

    def follows() -> bool:
        held = [_matches(served, value) for value in (*VALUES[5:7], *VALUES[10:13])]
        return held == [False, False, True, True, True] and served.readiness().ready

    assert eventually(follows, 20), served.readiness().reason
    assert served.broken() is None and served.serving() is None
    # Restored again, to a version behind the index: the same, and no more writes needed.
    with served._sync:
        _restore(engine, backup)
    assert eventually(lambda: not any(_matches(served, value) for value in VALUES[10:13]), 20)
    assert eventually(lambda: served.readiness().ready, 20), served.readiness().reason
    assert all(_matches(served, value) for value in VALUES[:5])


def test_a_list_removed_while_a_pass_runs_is_dropped_not_taken_for_a_restore(
    served: Service, engine: Engine
) -> None:
    """A list changed, then removed, between a pass's reading of the versions and its check of
    the histories the index applied: removed, not another history to load again (which refused
    every match until the next pass, saying the lists could not be loaded again)."""
    store = ListStore(engine)
    store.create("other", "Hotline", Category.TEST)
    store.apply("other", [Submission("pdq", VALUES[20])])
    assert eventually(lambda: _matches(served, VALUES[20]))
    matcher = served.matcher
    assert matcher is not None
    with served._sync:  # the follower waits: this is its pass
        store.apply("other", [Submission("pdq", VALUES[21])])
        matcher.refresh()
        store.remove("other", actor="test")
        assert served._remember(matcher) == set()
    assert eventually(lambda: not _matches(served, VALUES[20]))
    assert served.readiness().ready and served.serving() is None
    assert all(_matches(served, value) for value in VALUES[:5])


class _Gate:
    """The store's ``entries`` (what loading a list reads), held up or failing at the test's
    word: ``hold`` makes each read wait before its first entry until ``released``; ``fail``
    makes each read fail, counted in ``failures``."""

    def __init__(self, store: ListStore) -> None:
        self._read = store.entries
        self.hold = self.fail = False
        self.waiting = threading.Event()
        self.released = threading.Event()
        self.failures = 0
        store.entries = self.entries  # type: ignore[method-assign]

    def entries(self, name: str, statuses: Any = None) -> Any:
        if self.fail:
            self.failures += 1
            raise RuntimeError("the database went away")
        hash_list, entries = self._read(name, statuses)
        return hash_list, self._held(entries) if self.hold else entries

    def _held(self, entries: Iterator[Any]) -> Iterator[Any]:
        self.waiting.set()
        assert self.released.wait(20), "the test never released the load"
        yield from entries


def test_a_list_loaded_again_answers_from_the_version_held_until_the_new_one_is_whole(
    served: Service, engine: Engine
) -> None:
    store = ListStore(engine)
    backup = store.get(LIST).version
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[5:7]])
    assert eventually(lambda: _matches(served, VALUES[6]))
    ids = [_entry(served, value) for value in VALUES[5:7]]
    gate = _Gate(served.lists)
    gate.hold = True
    # Matched all along, from another thread: the values in both versions under the same ids.
    # (Written past the restore, VALUES[6] and VALUES[10] take the ids VALUES[5] and VALUES[6]
    # had: each is removed and added again, missed for an instant.)
    both, misses, done = VALUES[:5], [], threading.Event()

    def matching() -> None:
        while not done.is_set():
            misses.extend(value for value in both if not _matches(served, value))

    watcher = threading.Thread(target=matching)
    with served._sync:
        _restore(engine, backup)
        store.apply(LIST, [Submission("pdq", value) for value in (VALUES[10], VALUES[6])])
    watcher.start()
    try:
        assert gate.waiting.wait(20), "the list was never loaded again"
        # Loading: every value of the version held still matches, the replica out of
        # rotation, not broken (Ray keeps it) and answering matches.
        assert all(_matches(served, value) for value in VALUES[:7])
        assert not _matches(served, VALUES[10])
        assert served.readiness().reason == service_module.RELOADING
        assert served.serving() == service_module.RELOADING
        assert served.broken() is None and served.withheld() is None
        assert served.matcher is not None and LIST in served.matcher.versions()
        gate.released.set()

        def loaded() -> bool:
            held = [_matches(served, value) for value in (VALUES[5], VALUES[6], VALUES[10])]
            return held == [False, True, True] and served.readiness().ready

        assert eventually(loaded, 20), served.readiness().reason
    finally:
        gate.released.set()
        done.set()
        watcher.join()
    assert misses == [] and served.serving() is None
    assert [_entry(served, value) for value in (VALUES[6], VALUES[10])] == ids
    assert all(_matches(served, value) for value in both)


def test_a_list_that_fails_to_load_again_is_not_served_until_it_loads(
    served: Service, engine: Engine
) -> None:
    store = ListStore(engine)
    backup = store.get(LIST).version
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[5:7]])
    assert eventually(lambda: _matches(served, VALUES[6]))
    gate = _Gate(served.lists)
    gate.fail = True
    with served._sync:
        _restore(engine, backup)
    assert eventually(lambda: gate.failures >= 2, 20), "the load again was never tried again"
    # The version held is another history's: not served as if fine, matches refused (503),
    # broken (Ray restarts the replica), and tried again meanwhile.
    assert served.serving() is not None and not served.readiness().ready
    assert served.broken() == service_module.UNLOADED
    assert served.withheld() == service_module.UNLOADED
    with pytest.raises(ApiError) as refused:
        ready_matcher(served)
    assert refused.value.status == 503
    gate.fail = False

    def loaded() -> bool:
        return served.serving() is None and served.readiness().ready

    assert eventually(loaded, 20), served.readiness().reason
    assert served.broken() is None and served.withheld() is None
    assert ready_matcher(served) is served.matcher
    assert not _matches(served, VALUES[6]) and all(_matches(served, v) for v in VALUES[:5])


class _Clock:
    """The service's monotonic clock, moved by the test (from now on: later than any time the
    service took before)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def thread_time(self) -> float:  # a catch-up that never waits: it does not pause
        return self.now


def test_a_long_refresh_that_moves_on_is_not_stuck_and_a_follower_that_does_not_is(
    served: Service, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(service_module, "time", clock)
    monkeypatch.setattr(matcher_module, "REFRESH_BATCH", 2)
    store = ListStore(engine)
    ident, before = store.get(LIST).id, store.get(LIST).version
    stuck_after = 4 * served._stale_after()
    step = threading.Semaphore(0)  # one change read per release
    read = served.lists.changes_since
    taken = [0]

    def slow(name: str, version: int, limit: int | None = None) -> Any:
        for change in read(name, version, limit):
            assert step.acquire(timeout=20), "the test stopped releasing changes"
            taken[0] += 1
            yield change

    served.lists.changes_since = slow  # type: ignore[method-assign]
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[10:16]])  # an import
    assert served.matcher is not None
    # Six changes over twice the stuck bound: each read moves the follower on.
    for n in range(1, 7):
        clock.now += stuck_after / 3
        step.release()
        assert eventually(lambda: taken[0] == n), taken  # noqa: B023
        assert served.broken() is None and served.serving() is None
        assert served._error is None  # the follower never failed: it moved on
        if n == 2:  # the first batch is applied and told before the import is read whole
            assert eventually(lambda: served.matcher.applied()[ident] == before + 2)  # type: ignore[union-attr]
            assert _matches(served, VALUES[11]) and not _matches(served, VALUES[15])
    assert eventually(lambda: served.matcher.applied()[ident] == before + 6)  # type: ignore[union-attr]
    # A follower blocked in a database call makes no progress: past the bound, broken.
    released = threading.Event()
    hung = threading.Event()

    def hanging(*args: Any, **kwargs: Any) -> Any:
        hung.set()
        released.wait()
        raise RuntimeError("the database went away")

    served.lists.versions = hanging  # type: ignore[method-assign]
    try:
        assert hung.wait(10)
        clock.now += stuck_after / 2
        assert served.broken() is None
        clock.now += stuck_after
        assert "no progress" in str(served.broken())
        assert served.serving() == served.broken()
        assert not served.readiness().ready
    finally:
        released.set()


def test_a_first_load_that_fails_is_tried_again(engine: Engine, tmp_path: Path) -> None:
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    failures = [RuntimeError("could not connect to server")]
    listed = service.lists.lists
    checked = threading.Event()  # the retry waits for the test to look at the failed state

    def failing_once() -> Any:
        if failures:
            raise failures.pop()
        assert checked.wait(20)
        return listed()

    service.lists.lists = failing_once  # type: ignore[method-assign]
    service.start()
    try:
        failed = eventually(lambda: "failed" in (r := service.readiness()).reason and r, 10)
        assert failed, "the load never failed"
        assert not failed.ready and "could not connect" not in failed.reason
        # Still loading (a restart would only try again), and not served meanwhile.
        assert service.loading and service.broken() is None
        assert service.serving() == "the index is loading"
        checked.set()
        assert eventually(lambda: service.readiness().ready, 20), service.readiness().reason
        assert not service.loading and service.broken() is None
        assert service.matcher is not None
        assert service.matcher.match(parse("pdq", VALUES[0]))
    finally:
        checked.set()
        service.stop()


def test_a_refresh_tells_the_applied_version_only_once_the_index_holds_it(
    engine: Engine,
) -> None:
    store = ListStore(engine)
    seen: list[tuple[int, bool]] = []  # per change read: the version told, whether it matches

    class Watching:
        def entries(self, name: str, statuses: Any = None) -> Any:
            return store.entries(name, statuses)

        def changes_since(self, name: str, version: int, limit: int | None = None) -> Any:
            for change in store.changes_since(name, version, limit):
                yield change
                told = matcher.applied()[change.list_id]
                seen.append((told, bool(matcher.match(parse("pdq", VALUES[20])))))

    matcher = Matcher(Watching(), [LIST])
    before = store.get(LIST).version
    store.apply(LIST, [Submission("pdq", value) for value in VALUES[20:23]])
    matcher.refresh()
    assert len(seen) == 3 and all(told == before for told, _ in seen)
    assert matcher.applied()[store.get(LIST).id] == store.get(LIST).version
    assert matcher.match(parse("pdq", VALUES[20]))
