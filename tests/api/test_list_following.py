"""The service's Matcher follows lists by their id (on SQLite and PostgreSQL): a list renamed by
another instance keeps matching throughout, under its new name, with nothing reloaded. All
hashes are benign test values."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hashguard.api import ServiceSettings
from hashguard.api.service import Service
from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
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
