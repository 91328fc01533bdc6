"""The service's Matcher follows lists by their id (on SQLite and PostgreSQL): a list renamed by
another instance keeps matching throughout, under its new name, with nothing reloaded. All
hashes are benign test values."""

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from hashguard.api import ServiceSettings
from hashguard.api import service as service_module
from hashguard.api.service import Service
from hashguard.lists.model import Category, Entry
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching import matcher as matcher_module
from hashguard.matching.query import parse
from hashguard.store.lists import ListStore

LISTED = "".join(f"{(n * 37) % 256:02x}" for n in range(32))


class Probing:
    """The service's lists as the Matcher reads them; at every read, the listed value is
    matched, as requests are meanwhile."""

    def __init__(self, lists: ListStore) -> None:
        self.lists = lists
        self.matcher: Matcher | None = None
        self.loads: list[str] = []
        self.found: list[list[str]] = []  # the lists each probe matched in

    def _probe(self) -> None:
        if self.matcher is not None:
            self.found.append([m.list for m in self.matcher.match(parse("pdq", LISTED))])

    def entries(self, name: str, statuses: Any = None) -> Any:
        self._probe()
        self.loads.append(name)
        return self.lists.entries(name, statuses)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Any]:
        self._probe()
        return self.lists.changes_since(name, version, limit)


def test_a_list_renamed_elsewhere_keeps_matching_and_is_not_reloaded(
    engine: Engine, tmp_path: Path
) -> None:
    elsewhere = ListStore(engine)  # another instance's store
    elsewhere.create("BIG", "Hotline", Category.KNOWN_CSAM, ["NL"])
    elsewhere.apply("BIG", [Submission("pdq", LISTED)])
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    source = Probing(service.lists)
    matcher = Matcher(source, ["BIG"])
    source.matcher = service.matcher = matcher
    source.loads.clear()

    elsewhere.rename("BIG", "BIG_RENAMED", "curator")
    service.catch_up()

    assert source.loads == []  # renamed in place
    assert source.found and all(found for found in source.found)  # never a miss meanwhile
    assert matcher.versions() == {"BIG_RENAMED": 1}
    matched = matcher.match(parse("pdq", LISTED), lists=["BIG_RENAMED"])
    assert [m.list for m in matched] == ["BIG_RENAMED"]


def test_entries_taken_in_are_frozen_out_of_the_collectors_walks_in_steps(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cyclic collector's full passes walk every object not frozen, holding every request
    up meanwhile: the entries an import brings are frozen once _FREEZE_AFTER have come."""
    monkeypatch.setattr(service_module, "_FREEZE_AFTER", 3)
    monkeypatch.setattr(matcher_module, "REFRESH_BATCH", 2)
    store = ListStore(engine)
    store.create("BIG", "Hotline", Category.KNOWN_CSAM, ["NL"])
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    service.matcher = Matcher(service.lists, ["BIG"])
    values = [f"{n:02x}" + LISTED[2:] for n in range(5)]
    store.apply("BIG", [Submission("pdq", value) for value in values])
    try:
        service.catch_up()  # batches of 2, 2 and 1: frozen after the second
        walked = {o.value for o in gc.get_objects() if isinstance(o, Entry)} & set(values)
        assert walked == {values[4]}
        assert {m.value for m in service.matcher.match(parse("pdq", LISTED))} == set(values)
    finally:
        gc.unfreeze()


class Working:
    """The lists, read at a cost: each change read moves the service's clock on a second, of
    which ``running`` is the follower's own CPU time (the rest: waiting for the interpreter
    lock or a core, which others held). The pauses the service takes are recorded."""

    def __init__(self, lists: ListStore, running: float) -> None:
        self.lists = lists
        self.running = running
        self.wall = self.cpu = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.wall

    def thread_time(self) -> float:
        return self.cpu

    def wait(self, seconds: float) -> bool:  # the service's stop event, never set
        self.pauses.append(seconds)
        self.wall += seconds
        return False

    def entries(self, name: str, statuses: Any = None) -> Any:
        return self.lists.entries(name, statuses)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Any]:
        for change in self.lists.changes_since(name, version, limit):
            self.wall += 1.0
            self.cpu += self.running
            yield change


@pytest.mark.parametrize(("running", "pauses"), [(0.5, [2.0, 2.0]), (1.0, []), (0.0, [3.0, 3.0])])
def test_a_catch_up_backs_off_after_each_step_it_had_to_wait_for(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    running: float,
    pauses: list[float],
) -> None:
    """Applying changes holds the interpreter lock that every request needs: after a step that
    waited for it (requests held it), the catch-up pauses _CATCH_UP_BACKOFF times as long, but
    never longer than _PAUSE_MAX (a step that waited 2 s would pause 4); in a quiet service, not
    at all."""
    monkeypatch.setattr(matcher_module, "REFRESH_BATCH", 4)
    monkeypatch.setattr(matcher_module, "PROGRESS_STEP", 2)
    monkeypatch.setattr(service_module, "_CATCH_UP_BACKOFF", 2.0)
    monkeypatch.setattr(service_module, "_PAUSE_MAX", 3.0)
    store = ListStore(engine)
    store.create("BIG", "Hotline", Category.KNOWN_CSAM, ["NL"])
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    working = Working(service.lists, running)
    monkeypatch.setattr(service_module, "time", working)
    monkeypatch.setattr(service, "_stop", working)
    service.matcher = Matcher(working, ["BIG"])
    values = [f"{n:02x}" + LISTED[2:] for n in range(5)]
    store.apply("BIG", [Submission("pdq", value) for value in values])

    service.catch_up()  # steps of 2 and 2 changes (a batch of 4), then a batch of 1: no step

    assert working.pauses == pauses
    assert {m.value for m in service.matcher.match(parse("pdq", LISTED))} == set(values)
