"""Signed list snapshots: a Matcher loaded from one and caught up from the store holds exactly
what a Matcher loaded from the store holds; a snapshot that does not verify is refused with the
reason, and one that does not fit the database is not used for the lists it does not fit. All
hashes are random benign values."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from hashguard.lists import snapshot
from hashguard.lists.model import Category, ChangeKind, Provenance, Source
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import parse
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

VALUES = [f"{random.Random(n).getrandbits(256):064x}" for n in range(40)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ListStore]:
    engine: Engine = open_engine(f"sqlite:///{tmp_path / 'hashguard.db'}")
    yield ListStore(engine)
    engine.dispose()


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "snapshot.key"
    keys.generate(path)
    return path


def _fill(store: ListStore) -> None:
    store.create("known", "Hotline", Category.KNOWN_CSAM, ["NL"])
    store.create("digests", "Hotline", Category.TEST)
    source = Provenance("ana", "ben", (Source("Hotline", "NL", "ref-1"),))
    store.apply("known", [Submission("pdq", v, frozenset({"a1"}), source, stability=90)
                          for v in VALUES[:20]])  # fmt: skip
    store.apply("digests", [Submission("md5", v[:32]) for v in VALUES[20:30]])
    store.change("known", ChangeKind.DELIST, "pdq", VALUES[0], "owner's decision")
    store.change("known", ChangeKind.CONTEST, "pdq", VALUES[1], "appeal")
    store.change("known", ChangeKind.RELABEL, "pdq", VALUES[2], labels=["b2"])


def _write(store: ListStore, path: Path, key: Path) -> int:
    lists = (store.entries(held.name) for held in store.lists())
    return snapshot.write(path, lists, keys.load(key))


def _public(key: Path) -> str:
    return keys.read_public(key.with_name(key.name + ".pub"))


def test_a_snapshot_holds_every_entry_with_all_it_carries(
    store: ListStore, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    path = tmp_path / "lists.snapshot"
    assert _write(store, path, key) == 30
    held = snapshot.read(path, _public(key))
    assert held.lists == tuple(store.lists())
    for hash_list in held.lists:
        assert list(held.entries(hash_list)) == list(store.entries(hash_list.name)[1])


def test_a_matcher_from_a_snapshot_catches_up_from_the_store(
    store: ListStore, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    path = tmp_path / "lists.snapshot"
    _write(store, path, key)
    # After the snapshot: a new entry, a delisting, a reinstatement.
    store.apply("known", [Submission("pdq", VALUES[35])])
    store.change("known", ChangeKind.DELIST, "pdq", VALUES[3], "owner's decision")
    store.change("known", ChangeKind.REINSTATE, "pdq", VALUES[0], "reassessed")
    source = snapshot.SnapshotSource(snapshot.read(path, _public(key)), store)
    assert source.used == ("digests", "known") and source.unused == {}
    from_snapshot = Matcher(source, ["known", "digests"])
    from_snapshot.refresh()
    from_store = Matcher(store, ["known", "digests"])
    assert from_snapshot.versions() == from_store.versions()
    assert from_snapshot.sizes() == from_store.sizes()
    for value in (VALUES[35], VALUES[3], VALUES[0], VALUES[1], VALUES[4]):
        found = [(m.list, m.entry, m.labels) for m in from_snapshot.match(parse("pdq", value))]
        expected = [(m.list, m.entry, m.labels) for m in from_store.match(parse("pdq", value))]
        assert found == expected, value
    assert [m.value for m in from_snapshot.match(parse("pdq", VALUES[35]))] == [VALUES[35]]
    assert from_snapshot.match(parse("pdq", VALUES[3])) == []


def test_lists_the_snapshot_does_not_fit_load_from_the_store_with_the_reason(
    store: ListStore, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    store.create("gone", "Hotline", Category.TEST)
    path = tmp_path / "lists.snapshot"
    _write(store, path, key)
    store.remove("gone")
    store.create("gone", "Hotline", Category.TEST)  # the same name, another list
    source = snapshot.SnapshotSource(snapshot.read(path, _public(key)), store)
    assert source.used == ("digests", "known")
    assert "no longer in the database" in source.unused["gone"]

    # A database behind the snapshot (restored from an older backup): the list is not used.
    behind = ListStore(open_engine(f"sqlite:///{tmp_path / 'older.db'}"))
    behind.create("known", "Hotline", Category.KNOWN_CSAM, ["NL"])
    source = snapshot.SnapshotSource(snapshot.read(path, _public(key)), behind)
    assert "ahead of the database" in source.unused["known"]
    assert source.used == ()


def test_a_snapshot_changed_or_signed_by_another_key_is_refused(
    store: ListStore, key: Path, tmp_path: Path
) -> None:
    _fill(store)
    path = tmp_path / "lists.snapshot"
    _write(store, path, key)
    other = tmp_path / "other.key"
    keys.generate(other)
    with pytest.raises(snapshot.SnapshotError, match="not the key given"):
        snapshot.read(path, _public(other))
    original = path.read_bytes()
    for changed in (200, len(original) - 1):  # an entry; the SHA-256 at the end
        data = bytearray(original)
        data[changed] ^= 1
        path.write_bytes(bytes(data))
        with pytest.raises(snapshot.SnapshotError, match=r"modified|does not verify"):
            snapshot.read(path, _public(key))
    snapshot.signature_path(path).unlink()
    with pytest.raises(snapshot.SnapshotError, match="cannot read"):
        snapshot.read(path, _public(key))
