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


class Clock:
    """The service's clock, moved on by the work of reading changes (a second each) and by its
    pauses (recorded)."""

    def __init__(self, lists: ListStore) -> None:
        self.lists = lists
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def entries(self, name: str, statuses: Any = None) -> Any:
        return self.lists.entries(name, statuses)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Any]:
        for change in self.lists.changes_since(name, version, limit):
            self.now += 1.0
            yield change


def test_a_catch_up_pauses_after_each_step_for_the_requests_in_proportion_to_its_work(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Applying changes holds the interpreter lock that the requests need: after each step, the
    catch-up leaves it to them for _CATCH_UP_PAUSE times as long as the step took."""
    monkeypatch.setattr(matcher_module, "REFRESH_BATCH", 4)
    monkeypatch.setattr(matcher_module, "PROGRESS_STEP", 2)
    monkeypatch.setattr(service_module, "_CATCH_UP_PAUSE", 1.5)
    store = ListStore(engine)
    store.create("BIG", "Hotline", Category.KNOWN_CSAM, ["NL"])
    service = Service(engine, ServiceSettings(secret_file=tmp_path / "secret.key"))
    clock = Clock(service.lists)
    monkeypatch.setattr(service_module, "time", clock)
    service.matcher = Matcher(clock, ["BIG"])
    values = [f"{n:02x}" + LISTED[2:] for n in range(5)]
    store.apply("BIG", [Submission("pdq", value) for value in values])

    service.catch_up()  # steps of 2 and 2 changes (a batch of 4), then 1 (the next batch)

    assert clock.pauses == [3.0, 3.0, 1.5]
    assert {m.value for m in service.matcher.match(parse("pdq", LISTED))} == set(values)
