"""Signed list snapshots: a Matcher loaded from one and caught up from the store holds exactly
what a Matcher loaded from the store holds; a snapshot that does not verify is refused with the
reason, and one that does not fit the database is not used for the lists it does not fit. All
hashes are random benign values."""

import os
import random
import re
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from hashguard.index import fileformat
from hashguard.lists import snapshot
from hashguard.lists.model import (
    Category,
    ChangeKind,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    Source,
    new_entry,
)
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.matching.query import parse
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore
from hashguard.transparency import keys

from support.database import scratch_database
from support.invoke import hashguard

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
    return snapshot.write(path, store, [held.name for held in store.lists()], keys.load(key))


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
    # An array's byte; the SHA-256 the container ends with; the signature at the very end.
    for changed in (len(original) - 200, len(original) - 110, len(original) - 1):
        data = bytearray(original)
        data[changed] ^= 1
        path.write_bytes(bytes(data))
        with pytest.raises(snapshot.SnapshotError, match=r"modified|does not verify"):
            snapshot.read(path, _public(key))
    # Another valid snapshot with this one's signature: its own SHA-256 is not what was signed.
    store.apply("digests", [Submission("md5", VALUES[31][:32])])
    _write(store, path, key)
    other_body = path.read_bytes()[: -snapshot._SIGNATURE.size]
    path.write_bytes(other_body + original[-snapshot._SIGNATURE.size :])
    with pytest.raises(snapshot.SnapshotError, match="does not verify"):
        snapshot.read(path, _public(key))
    path.write_bytes(other_body)  # no signature at all (as an older hashguard wrote it)
    with pytest.raises(snapshot.SnapshotError, match="not a signed list snapshot"):
        snapshot.read(path, _public(key))
    path.unlink()
    with pytest.raises(snapshot.SnapshotError, match="cannot read"):
        snapshot.read(path, _public(key))


def test_the_snapshot_and_its_signature_are_one_file_checked_and_loaded_from_the_same_bytes(
    store: ListStore, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(store)
    path = tmp_path / "lists.snapshot"
    _write(store, path, key)
    assert sorted(p.name for p in tmp_path.glob("lists.snapshot*")) == ["lists.snapshot"]
    expected = {h.name: list(store.entries(h.name)[1]) for h in store.lists()}
    # Another database's snapshot, signed by another key, swapped in after the signature is
    # checked: what is loaded is still what was checked.
    other_key = tmp_path / "other.key"
    keys.generate(other_key)
    other = ListStore(open_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    other.create("known", "Elsewhere", Category.TEST)
    other.apply("known", [Submission("pdq", v) for v in VALUES[30:40]])
    evil = tmp_path / "evil.snapshot"
    _write(other, evil, other_key)

    def swapping(read: Any) -> Any:
        def racing(where: Path, *args: Any, **kwargs: Any) -> Any:
            if evil.exists():
                os.replace(evil, path)
            return read(where, *args, **kwargs)

        return racing

    monkeypatch.setattr(fileformat, "read", swapping(fileformat.read))
    monkeypatch.setattr(fileformat, "parse", swapping(fileformat.parse))
    held = snapshot.read(path, _public(key))
    assert not evil.exists()  # the swap happened
    assert {h.name: list(held.entries(h)) for h in held.lists} == expected


def test_a_snapshot_of_another_database_or_of_a_diverged_history_is_not_used(
    key: Path, tmp_path: Path
) -> None:
    def opened(name: str) -> tuple[Engine, ListStore]:
        engine = open_engine(f"sqlite:///{tmp_path / name}")
        return engine, ListStore(engine)

    engine, store = opened("a.db")
    store.create("known", "Hotline", Category.TEST)
    store.apply("known", [Submission("pdq", v) for v in VALUES[:10]])
    engine.dispose()
    shutil.copy(tmp_path / "a.db", tmp_path / "backup.db")  # a backup at version 10
    engine, store = opened("a.db")
    store.apply("known", [Submission("pdq", v) for v in VALUES[10:12]])
    path = tmp_path / "lists.snapshot"
    _write(store, path, key)  # at version 12
    held = snapshot.read(path, _public(key))
    assert snapshot.SnapshotSource(held, store).used == ("known",)
    # Another database, its list under the same id, further along: not this history.
    _, elsewhere = opened("b.db")
    elsewhere.create("known", "Hotline", Category.TEST)
    elsewhere.apply("known", [Submission("pdq", v) for v in VALUES[20:32]])
    # This database restored from the backup, then changed past the snapshot's version.
    _, restored = opened("backup.db")
    restored.apply("known", [Submission("pdq", v) for v in VALUES[32:36]])
    for database in (elsewhere, restored):
        assert database.get("known").version >= 12
        source = snapshot.SnapshotSource(held, database)
        assert source.used == () and "history" in source.unused["known"]
        loaded = Matcher(source, ["known"])
        assert loaded.match(parse("pdq", VALUES[11])) == []  # not in that database
        assert loaded.sizes() == Matcher(database, ["known"]).sizes()


class _Listed:
    """A store of one list of ``count`` PDQ entries, made one at a time as read (what the
    writer holds is then the writer's own)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.hash_list = HashList(1, "big", "Hotline", Category.TEST, (), "", ListPolicy(), count)

    def lists(self) -> list[HashList]:
        return [self.hash_list]

    def entries(self, name: str, statuses: Any = None) -> tuple[HashList, Iterator[Entry]]:
        made = (
            new_entry(n, 1, "pdq", f"{n:064x}", frozenset(), Provenance(), EntryStatus.ACTIVE, n)
            for n in range(1, self.count + 1)
        )
        return self.hash_list, made

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Any]:
        return iter(())

    def history_mark(self, list_id: int, version: int) -> str | None:
        return "mark"


def test_the_writer_holds_no_list_of_every_entry_and_the_reader_decodes_a_list_when_loaded(
    key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "_SPOOLED", 256)  # entries held before they are set aside
    monkeypatch.setattr(snapshot, "_CHUNK", 1 << 16)  # bytes read or scanned at a time
    store = _Listed(20_000)
    path = tmp_path / "big.snapshot"
    tracemalloc.start()
    try:
        assert snapshot.write(path, store, ["big"], keys.load(key)) == 20_000
        written = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        held = snapshot.read(path, _public(key))
        read = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    size = path.stat().st_size  # about 90 bytes an entry, 64 of them its value
    # Holding every entry's value (a str of 113 bytes, and one join of them all) would take
    # more than the file; reading decodes nothing until a list is loaded: the file's bytes.
    assert written < size / 4, (written, size)
    assert read < size + (1 << 18), (read, size)
    assert list(held.entries(store.hash_list)) == list(store.entries("big")[1])


def test_lists_empty_or_not_read_back_whole_and_a_value_missing_is_malformed(
    store: ListStore, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot, "_CHUNK", 64)  # line breaks found across many chunks
    _fill(store)
    store.create("empty", "Hotline", Category.TEST)
    store.create("after", "Hotline", Category.TEST)
    store.apply("after", [Submission("pdq", VALUES[35])])
    path = tmp_path / "lists.snapshot"
    assert _write(store, path, key) == 31
    held = snapshot.read(path, _public(key))
    for hash_list in held.lists:
        assert list(held.entries(hash_list)) == list(store.entries(hash_list.name)[1])
    # A writer that lost a value (the file signed nonetheless) is refused, naming the count.
    append = snapshot._Lines.append
    lost = [False]

    def losing(self: Any, line: str) -> None:
        if line == VALUES[35] and not lost[0]:
            lost[0] = True
            return
        append(self, line)

    monkeypatch.setattr(snapshot._Lines, "append", losing)
    _write(store, path, key)
    with pytest.raises(snapshot.SnapshotError, match="30 values for 31 entries"):
        snapshot.read(path, _public(key))


def test_the_history_mark_is_the_same_whatever_the_postgresql_sessions_time_zone(
    key: Path, tmp_path: Path
) -> None:
    with scratch_database("postgresql", tmp_path) as url:
        engine = open_engine(url)  # the replica's: the server's time zone (UTC here)
        store = ListStore(engine)
        store.create("known", "Hotline", Category.TEST)
        store.apply("known", [Submission("pdq", v) for v in VALUES[:5]])
        berlin = open_engine(url, migrate=False)  # the snapshot writer's: an operator's role

        @event.listens_for(berlin, "connect")
        def zone(connection: Any, record: Any) -> None:
            with connection.cursor() as cursor:
                cursor.execute("SET TIME ZONE 'Europe/Berlin'")
            connection.commit()

        try:
            with berlin.connect() as connection:
                assert connection.exec_driver_sql("SHOW TIME ZONE").scalar() == "Europe/Berlin"
            path = tmp_path / "lists.snapshot"
            _write(ListStore(berlin), path, key)
            held = snapshot.read(path, _public(key))
            assert snapshot.SnapshotSource(held, store).used == ("known",)
        finally:
            berlin.dispose()
            engine.dispose()


def test_the_snapshot_command_and_config_check_say_in_one_line_what_is_wrong(
    store: ListStore, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HASHGUARD_DATABASE_URL", "HASHGUARD_CONFIG", "HASHGUARD_SNAPSHOT",
                 "HASHGUARD_SNAPSHOT_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    _fill(store)
    url = store.engine.url.render_as_string(hide_password=False)

    def made(out: Path) -> str:
        ran = hashguard("lists", "snapshot", "--key", str(key), "--out", str(out),
                        "--database-url", url)  # fmt: skip
        assert ran.returncode == (0 if "wrote" in ran.stdout else 1), ran.stdout + ran.stderr
        assert "Traceback" not in ran.stdout + ran.stderr
        return (ran.stdout + ran.stderr).strip()

    assert made(tmp_path / "none" / "x.snapshot").endswith(
        f"no directory {tmp_path / 'none'} to write it in"
    )
    assert made(tmp_path).endswith("is a directory, not a snapshot file")
    assert made(tmp_path / ("x" * 300)).endswith("cannot write: File name too long")
    path = tmp_path / "lists.snapshot"
    assert made(path) == f"wrote {path}: 2 list(s), 30 entries, signed"

    def check(*options: str) -> list[str]:
        ran = hashguard("config", "check", "--database-url", url, "--secret-file", "secret.key",
                        *options)  # fmt: skip
        found = r"(ok|error|warning|note): +snapshot(_key)?: "  # not the settings' table
        return [line for line in ran.stdout.splitlines() if re.match(found, line)]

    public, made_at = f"{key}.pub", snapshot.read(path, _public(key)).made
    assert check("--snapshot", str(path), "--snapshot-key", public) == [
        f"ok:      snapshot: lists.snapshot: 2 list(s), made {made_at}, signed by the key given"
    ]
    assert check("--snapshot-key", public) == [
        "warning: snapshot_key: set without snapshot: not used"
    ]
    [alone] = check("--snapshot", str(path))
    assert alone.startswith("error:   snapshot_key: snapshot is set without the key")
    other = tmp_path / "other.key"
    keys.generate(other)
    [refused] = check("--snapshot", str(path), "--snapshot-key", f"{other}.pub")
    assert refused.startswith(f"error:   snapshot: {path}: signed by key ")
    assert refused.endswith("not the key given: the lists would load from the database; make one "
                            "with hashguard lists snapshot")  # fmt: skip


def test_a_broken_writers_policy_or_provenance_that_is_no_object_is_malformed(
    store: ListStore, key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signed but not what hashguard writes: refused as malformed, naming the file, never a
    crash of whatever loads it (a server starting, ``hashguard snapshot``)."""
    _fill(store)
    path = tmp_path / "lists.snapshot"
    written = snapshot._list_json
    for policy in ([], {"thresholds": {"pdq": 10**400}}):
        monkeypatch.setattr(snapshot, "_list_json",
                            lambda held, p=policy: {**written(held), "policy": p})  # fmt: skip
        _write(store, path, key)
        with pytest.raises(snapshot.SnapshotError, match=f"{path}: malformed snapshot"):
            snapshot.read(path, _public(key))
    monkeypatch.setattr(snapshot, "_list_json", written)
    monkeypatch.setattr(Provenance, "as_json", lambda self: ["not", "an", "object"])
    _write(store, path, key)
    held = snapshot.read(path, _public(key))
    with pytest.raises(snapshot.SnapshotError, match=f"{path}: malformed entry"):
        list(held.entries(held.lists[0]))
