"""HMA's bank content items in the store, on SQLite and PostgreSQL: what a row holds (its
signals, who added it, HMA's metadata alone), ``disable_until_ts`` as HMA means it, and the
entries an item holds."""

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from hashguard.lists.model import Category, EntryStatus, Provenance, Source, fold
from hashguard.lists.records import InvalidRecord, Submission, Withdrawal
from hashguard.store import audit
from hashguard.store.bank_contents import DISABLED, ENABLED, BankContents
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.store.tables import BankContentRow

PDQ = "f" * 64
MD5 = "0cc175b9c0f1b6a831c399e269772661"  # md5("a"): benign
METADATA = {"content_id": "upload-7", "json": {"reason": "test"}}


@pytest.fixture
def contents(database_url: str) -> Iterator[BankContents]:
    engine = open_engine(database_url)
    lists = ListStore(engine)
    lists.create("BANK", "Test Org", Category.TEST)
    yield BankContents(engine, lists)
    engine.dispose()


def _row(engine: Engine, content_id: int) -> Any:
    with engine.connect() as connection:
        return connection.execute(
            select(BankContentRow).where(BankContentRow.id == content_id)
        ).one()


def test_a_row_holds_signals_and_organisation_apart_from_hmas_metadata(
    contents: BankContents,
) -> None:
    item = contents.add("BANK", {"pdq": PDQ, "video_md5": MD5}, "Trust team", "tester",
                        note="first report", metadata=METADATA)  # fmt: skip
    row = _row(contents.engine, item.id)
    assert row.signals == {"pdq": PDQ, "video_md5": MD5}
    assert list(row.signals) == ["pdq", "video_md5"]  # the order they were given
    assert (row.organisation, row.note, row.disable_until_ts) == ("Trust team", "first report", 1)
    assert row.content_metadata == METADATA
    assert contents.get("BANK", item.id) == item

    entry = contents.lists.entry("BANK", "md5", MD5)  # HMA's video_md5 is an md5 entry
    assert entry.provenance.sources == (Source("Trust team", "", f"hma:{item.id}"),)

    plain = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    assert _row(contents.engine, plain.id).content_metadata is None

    assert contents.delete("BANK", item.id, "tester") == 1
    deleted = _row(contents.engine, item.id)
    assert (deleted.note, deleted.content_metadata) == (None, None)  # erased with the item
    assert contents.lists.entry("BANK", "md5", MD5).status is EntryStatus.DELETED
    assert contents.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.ACTIVE  # plain's

    with pytest.raises(InvalidRecord, match="no HMA signal type 'tmk'"):
        contents.add("BANK", {"tmk": "00"}, "Trust team", "tester")


def test_disable_until_ts_is_stored_as_hma_means_it(contents: BankContents) -> None:
    item = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")

    def stored() -> int:
        return int(_row(contents.engine, item.id).disable_until_ts)

    def matched() -> bool:
        return contents.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.ACTIVE

    assert (stored(), matched()) == (ENABLED, True)
    assert contents.update("BANK", item.id, "tester", disable_until_ts=DISABLED) is not None
    assert (stored(), matched()) == (DISABLED, False)  # 0: disabled
    later = int(time.time()) + 3600
    contents.update("BANK", item.id, "tester", disable_until_ts=later)
    assert (stored(), matched()) == (later, False)  # disabled until then
    assert contents.restore_due() == 0  # not yet
    passed = int(time.time()) - 60
    shown = contents.update("BANK", item.id, "tester", disable_until_ts=passed)
    assert shown is not None and shown.disable_until_ts == passed  # answered as given
    assert (stored(), matched()) == (ENABLED, True)  # a time passed: enabled, stored as 1


def test_an_entry_an_item_revives_is_held_by_the_items_holding_it_now(
    contents: BankContents,
) -> None:
    lists = contents.lists

    def held() -> tuple[EntryStatus, list[str]]:
        entry = lists.entry("BANK", "pdq", PDQ)
        return entry.status, [s.reference for s in entry.provenance.sources]

    first = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    contents.delete("BANK", first.id, "tester")
    assert held() == (EntryStatus.DELETED, [f"hma:{first.id}"])  # on record
    # Another source submits the value again, then withdraws it: nobody holds it.
    hotline = Provenance("Hotline", sources=(Source("Hotline", "NL", "case-1"),))
    lists.apply("BANK", [Submission("pdq", PDQ, provenance=hotline)], "tester")
    assert held() == (EntryStatus.ACTIVE, ["case-1"])
    lists.apply("BANK", [Withdrawal("case-1")], "tester")
    assert held()[0] is EntryStatus.DELETED

    # Items: the second revives it; the first, enabled again, holds it too.
    disabled = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    contents.update("BANK", disabled.id, "tester", disable_until_ts=DISABLED)
    second = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    assert held() == (EntryStatus.ACTIVE, [f"hma:{second.id}"])
    entry = lists.entry("BANK", "pdq", PDQ).id  # the first item's id: it made the entry
    assert (entry, contents.holders([entry])) == (first.id, {entry: [second.id]})
    contents.update("BANK", disabled.id, "tester", disable_until_ts=ENABLED)
    assert held() == (EntryStatus.ACTIVE, [f"hma:{second.id}", f"hma:{disabled.id}"])
    contents.delete("BANK", second.id, "tester")
    assert held() == (EntryStatus.ACTIVE, [f"hma:{disabled.id}"])
    contents.delete("BANK", disabled.id, "tester")
    assert held()[0] is EntryStatus.DELETED
    assert fold(lists.changes_since("BANK", 0)) == {e.id: e for e in lists.entries("BANK")[1]}


def _due(contents: BankContents, content_id: int) -> int:
    """Disable the item until a moment, then let that moment pass (written as it would be
    stored a second later, no waiting); the time stored."""
    contents.update("BANK", content_id, "curator", disable_until_ts=int(time.time()) + 3600)
    passed = int(time.time()) - 1
    with contents.engine.begin() as connection:
        connection.execute(update(BankContentRow).where(BankContentRow.id == content_id)
                           .values(disable_until_ts=passed))  # fmt: skip
    return passed


class _Racing(ListStore):
    """The store; the first time the sweep takes a list's write lock, ``meanwhile`` runs
    first (another writer landing between the sweep's read and its restore)."""

    def __init__(self, engine: Engine, meanwhile: Callable[[], object]) -> None:
        super().__init__(engine)
        self.meanwhile: Callable[[], object] | None = meanwhile

    def apply(self, name: str, records: Any, actor: str = "", *args: Any, **kw: Any) -> Any:
        if actor == "hashguard serve" and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return super().apply(name, records, actor, *args, **kw)


def _sweeps(engine: Engine) -> int:
    return sum(1 for e in audit.events(engine, action="bank_content.update", limit=1000)
               if e.actor == "hashguard serve")  # fmt: skip


def test_a_curator_s_change_after_the_sweep_read_stands(contents: BankContents) -> None:
    item = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    _due(contents, item.id)

    def disable_for_good() -> None:
        contents.update("BANK", item.id, "curator", disable_until_ts=DISABLED)

    racing = BankContents(contents.engine, _Racing(contents.engine, disable_for_good))
    assert racing.restore_due() == 0
    assert _row(contents.engine, item.id).disable_until_ts == DISABLED
    assert contents.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.DELETED
    assert _sweeps(contents.engine) == 0


def test_two_instances_sweeping_at_once_restore_an_item_once(contents: BankContents) -> None:
    item = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    _due(contents, item.id)
    other = BankContents(contents.engine, ListStore(contents.engine))  # another instance
    racing = BankContents(contents.engine, _Racing(contents.engine, other.restore_due))
    assert racing.restore_due() == 0  # the other instance restored it first
    assert _row(contents.engine, item.id).disable_until_ts == ENABLED
    assert contents.lists.entry("BANK", "pdq", PDQ).status is EntryStatus.ACTIVE
    assert _sweeps(contents.engine) == 1


def test_an_item_that_cannot_be_restored_holds_no_other_back(
    contents: BankContents, caplog: pytest.LogCaptureFixture
) -> None:
    broken = contents.add("BANK", {"pdq": PDQ}, "Trust team", "tester")
    fine = contents.add("BANK", {"video_md5": MD5}, "Trust team", "tester")
    for item in (broken, fine):
        _due(contents, item.id)
    with contents.engine.begin() as connection:  # a value its list refuses, every time
        connection.execute(update(BankContentRow).where(BankContentRow.id == broken.id)
                           .values(signals={"pdq": "not a hash"}))  # fmt: skip
    assert contents.restore_due() == 1
    assert _row(contents.engine, fine.id).disable_until_ts == ENABLED
    assert contents.lists.entry("BANK", "md5", MD5).status is EntryStatus.ACTIVE
    assert _row(contents.engine, broken.id).disable_until_ts != ENABLED  # left for later
    assert f"HMA content item {broken.id} of list BANK not restored" in caplog.text


def test_an_item_hashed_here_keeps_its_stability_through_disabling(
    contents: BankContents,
) -> None:
    item = contents.add("BANK", {"pdq": PDQ, "video_md5": MD5}, "Trust team", "tester",
                        stabilities={"pdq": 66})  # fmt: skip
    assert contents.lists.entry("BANK", "pdq", PDQ).stability == 66
    assert contents.lists.entry("BANK", "md5", MD5).stability is None
    contents.update("BANK", item.id, "tester", disable_until_ts=DISABLED)
    contents.update("BANK", item.id, "tester", disable_until_ts=ENABLED)  # submitted again
    entry = contents.lists.entry("BANK", "pdq", PDQ)
    assert (entry.status, entry.stability) == (EntryStatus.ACTIVE, 66)
