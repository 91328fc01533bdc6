"""How a replica judges itself (``Service.readiness`` and ``Service.broken``), on SQLite: its lag
is measured on its own clock, never from the writers' timestamps; readiness answers from memory
while the database hangs; a database gone back behind it (restored) makes it not ready and
broken; a first load that fails is tried again; a refresh tells the applied version only once
the index holds it. All hashes are random benign values."""

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from hashguard.api import ServiceSettings
from hashguard.api.service import Service
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import parse
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import ChangeRow, HashListRow

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


def test_a_database_gone_back_behind_the_replica_makes_it_not_ready_and_broken(
    served: Service, engine: Engine
) -> None:
    with engine.begin() as connection:  # as if restored from an older backup
        connection.execute(update(HashListRow).values(version=HashListRow.version - 2))
    readiness = eventually(lambda: (r := served.readiness()).reason != "ready" and r, 10)
    assert readiness and not readiness.ready
    assert "the database is behind this replica" in readiness.reason
    assert LIST not in readiness.reason
    assert served.broken() is not None and "restored" in str(served.broken())


def test_a_first_load_that_fails_is_tried_again(engine: Engine, tmp_path: Path) -> None:
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    failures = [RuntimeError("could not connect to server")]
    listed = service.lists.lists

    def failing_once() -> Any:
        if failures:
            raise failures.pop()
        return listed()

    service.lists.lists = failing_once  # type: ignore[method-assign]
    service.start()
    try:
        assert eventually(lambda: service.broken() is not None, 10), "the load never failed"
        assert not service.readiness().ready
        assert "could not connect" not in service.readiness().reason
        assert eventually(lambda: service.readiness().ready, 20), service.readiness().reason
        assert service.broken() is None
        assert service.matcher is not None
        assert service.matcher.match(parse("pdq", VALUES[0]))
    finally:
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
