"""HMA's bank content items in the store, on SQLite and PostgreSQL: what a row holds (its
signals, who added it, HMA's metadata alone), ``disable_until_ts`` as HMA means it, and the
entries an item holds."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from hashguard.lists.model import Category, EntryStatus, Source
from hashguard.lists.records import InvalidRecord
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
