"""The sharded index on a real local Ray instance: the same answers as one HammingIndex on the
same entries, through adds and removes, and after shards are killed (their parts reloaded from
the directory; a query never returns a partial answer)."""

import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import ray
from hypothesis import given, settings
from hypothesis import strategies as st

from hashguard.cluster import shards as shards_module
from hashguard.cluster.shards import (
    MAX_STARTS,
    Shard,
    ShardDirectoryError,
    ShardedIndex,
    ShardUnavailable,
    placeable,
    record,
)
from hashguard.errors import Unavailable
from hashguard.index import HammingIndex
from hashguard.index.hamming import merged

from support.hashes import clustered, near
from support.waiting import eventually

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("cluster-shards")]

RADII = (0, 9, 31, 70)


def same(sharded: ShardedIndex, single: HammingIndex, queries: np.ndarray, radius: int) -> bool:
    found = sharded.query(queries, radius)
    expected = single.query(queries, radius)
    return all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True)) and all(
        a.dtype == b.dtype for a, b in zip(found, expected, strict=True)
    )


def pid_of(shard: object) -> int:
    return int(ray.get(shard.__ray_call__.remote(lambda _: os.getpid())))  # type: ignore[attr-defined]


def entries(seed: int, count: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Random hashes and clusters of near-duplicates (within the radii queried), shuffled, with
    sparse ids (so that shards get unequal parts)."""
    rng = np.random.default_rng(seed)
    half = count // 2
    hashes = np.concatenate([rng.integers(0, 256, (half, 32), np.uint8), clustered(seed, half)])
    hashes = hashes[rng.permutation(len(hashes))]
    ids = np.sort(rng.choice(10**9, len(hashes), replace=False))
    return ids, hashes


@pytest.mark.parametrize("shards", [2, 3])
def test_answers_equal_one_index_through_adds_and_removes(
    ray_local: None, tmp_path: Path, shards: int
) -> None:
    rng = np.random.default_rng(shards)
    ids, hashes = entries(shards)
    queries = np.concatenate([near(rng, hashes, 150, 40), rng.integers(0, 256, (50, 32), np.uint8)])
    single = HammingIndex()
    with ShardedIndex(tmp_path, shards) as sharded:
        # The first batch is big enough for tables (8192 rows); later ones are scanned segments.
        for batch in (slice(0, 9000), slice(9000, 9600), slice(9600, None)):
            single.add(ids[batch], hashes[batch])
            sharded.add(ids[batch], hashes[batch])
        for radius in RADII:
            assert same(sharded, single, queries, radius), radius
        gone = rng.choice(ids, 2500, replace=False)
        single.remove(gone)
        sharded.remove(gone)
        back = gone[:300]
        single.add(back, hashes[:300])
        sharded.add(back, hashes[:300])
        assert len(sharded) == len(single) == 10_000 - 2200
        for radius in RADII:
            assert same(sharded, single, queries, radius), radius
        assert same(sharded, single, queries[:0], 31)


def test_refused_changes_change_no_shard(ray_local: None, tmp_path: Path) -> None:
    hashes = clustered(5, 40)
    with ShardedIndex(tmp_path, 2) as sharded:
        assert same(sharded, HammingIndex(), hashes, 256)  # empty: typed, empty answers
        sharded.add(np.arange(20), hashes[:20])
        # 21 and 22 are new and would go to both shards; 3 is present: nothing is added.
        with pytest.raises(ValueError, match=r"already in the index: 3$"):
            sharded.add([21, 22, 3], hashes[20:23])
        with pytest.raises(ValueError, match="not in the index: 25, 31"):
            sharded.remove([1, 2, 25, 31])
        with pytest.raises(ValueError, match="2 ids but 3 hashes"):
            sharded.add([30, 31], hashes[:3])
        with pytest.raises(ValueError, match=r"^hashes must be a uint8 array"):
            sharded.add([30, 31], hashes[:2].astype(np.int64))
        with pytest.raises(ValueError, match="uint8"):
            sharded.query(hashes.astype(np.int64), 31)
        with pytest.raises(ValueError, match="shape"):
            sharded.query(hashes[:, :16], 31)
        with pytest.raises(ValueError, match="between 0 and 256"):
            sharded.query(hashes, 257)
        assert len(sharded) == 20
        assert sharded.query(hashes[:23], 0)[1].tolist() == list(range(20))


def test_killed_shards_reload_their_part_and_queries_never_see_a_partial_answer(
    ray_local: None, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    ids, hashes = entries(7, 4000)
    queries = near(rng, hashes, 100, 31)
    single = HammingIndex()
    single.add(ids, hashes)
    with ShardedIndex(tmp_path, 2) as sharded:
        sharded.add(ids, hashes)  # a base file per shard
        removed = ids[::50]
        single.remove(removed)
        sharded.remove(removed)  # a change file beside it
        added = np.arange(1, 41) * -1
        single.add(added, hashes[:40])
        sharded.add(added, hashes[:40])
        expected = single.query(queries, 31)
        first, second = sharded.shards
        answers: list[tuple[np.ndarray, ...]] = []
        stop = threading.Event()

        def keep_querying() -> None:
            while not stop.is_set():
                answers.append(sharded.query(queries, 31))

        reader = threading.Thread(target=keep_querying)
        reader.start()
        try:
            old = pid_of(first)
            ray.kill(first, no_restart=False)
            assert same(sharded, single, queries, 31)
            assert pid_of(first) != old

            old = pid_of(second)
            os.kill(old, signal.SIGKILL)
            assert same(sharded, single, queries, 31)
            assert pid_of(second) != old
            count = len(answers)
            assert eventually(lambda: len(answers) > count + 1, timeout=60)
        finally:
            stop.set()
            reader.join()
        for answer in answers:
            assert all(np.array_equal(a, b) for a, b in zip(answer, expected, strict=True))
        assert len(sharded) == len(single)


def test_a_shard_that_cannot_come_back_fails_the_query(ray_local: None, tmp_path: Path) -> None:
    hashes = clustered(9, 100)
    sharded = ShardedIndex(tmp_path, 2, timeout=30)
    sharded.add(np.arange(100), hashes)
    ray.kill(sharded.shards[1], no_restart=True)
    with pytest.raises(ShardUnavailable, match="shard 1 of 2") as raised:
        sharded.query(hashes, 31)
    assert isinstance(raised.value, Unavailable)
    sharded.close()


def test_shards_that_cannot_be_placed_are_refused_naming_what_they_ask(
    ray_local: None, tmp_path: Path
) -> None:
    with pytest.raises(ShardUnavailable, match=r"3 CPUs each: .* 2 on its largest node"):
        ShardedIndex(tmp_path, 1, num_cpus=3)
    with pytest.raises(ShardUnavailable, match="cannot place 3 shards of 1 CPUs each"):
        ShardedIndex(tmp_path, 3, num_cpus=1)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        ShardedIndex(tmp_path, 1, timeout=0)
    # By default, at most half the CPUs go to the shards: a scan can still be scheduled.
    with ShardedIndex(tmp_path, 3) as sharded:
        assert ray.available_resources().get("CPU") == pytest.approx(1.0, abs=0.01)  # type: ignore[no-untyped-call]
        assert len(sharded) == 0


def test_a_directory_reopens_with_its_parts_and_only_with_its_layout(
    ray_local: None, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    hashes = clustered(11, 3000)
    single = HammingIndex()
    with ShardedIndex(tmp_path, 2) as sharded:
        single.add(np.arange(2000), hashes[:2000])
        sharded.add(np.arange(2000), hashes[:2000])
        for start in range(2000, 3000, 100):  # small changes: files are folded into the base
            batch = np.arange(start, start + 100)
            single.add(batch, hashes[batch])
            sharded.add(batch, hashes[batch])
            single.remove(batch[:2])
            sharded.remove(batch[:2])
    bases = []
    for folder in sorted(tmp_path.glob("shard-*")):
        # One base, written past the first add (a quarter of the part changed), and nothing
        # else left behind.
        (base,) = folder.glob("base-*.hgi")
        assert sorted(path.name for path in folder.iterdir()) == [base.name, "starts"]
        bases.append(int(base.stem.split("-")[1]))
    assert min(bases) > 1
    with pytest.raises(ShardDirectoryError, match=r"holds 2 shards of 256-bit hashes.*not 3"):
        ShardedIndex(tmp_path, 3)
    with ShardedIndex(tmp_path, 2) as reopened:
        with pytest.raises(ShardDirectoryError, match="open in another ShardedIndex"):
            ShardedIndex(tmp_path, 2)
        # The journal holds the changes after the oldest base, no fewer, no more.
        journal = sorted(path.name for path in (tmp_path / "journal").iterdir())
        assert journal == [f"change-{n:012d}.hgi" for n in range(min(bases) + 1, 22)]
        queries = near(rng, hashes, 100, 20)
        assert same(reopened, single, queries, 31)
        reopened.add([5000], hashes[:1])  # numbering goes on after the changes on file
        single.add([5000], hashes[:1])
        assert len(reopened) == len(single)
        assert 5000 in reopened.query(hashes[:1], 0)[1]
        assert same(reopened, single, queries, 31)
    (base,) = (tmp_path / "shard-1").glob("base-*.hgi")
    corrupt = bytearray(base.read_bytes())
    corrupt[100] ^= 1
    base.write_bytes(corrupt)
    with pytest.raises(ShardDirectoryError, match=r"shard 1 of 2: .*base-.*checksum mismatch"):
        ShardedIndex(tmp_path, 2)


def answers_equal(found: tuple[np.ndarray, ...], expected: tuple[np.ndarray, ...]) -> bool:
    return all(
        np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(found, expected, strict=True)
    )


def test_a_change_that_arrives_late_or_never_is_applied_in_order_from_the_journal(
    tmp_path: Path,
) -> None:
    hashes = clustered(13, 400)
    batches = [np.arange(start, start + 100) for start in range(0, 400, 100)]
    for version, ids in enumerate(batches, start=1):  # as the driver does, before sending
        record(tmp_path, version, "add", ids, hashes[ids])
    # Shard 0 of 2 started before the changes were sent: 2 is delayed, 3 arrives first.
    part = Shard(str(tmp_path / "elsewhere"), 0, 2, 256)
    shutil.copytree(tmp_path / "journal", tmp_path / "elsewhere" / "journal", dirs_exist_ok=True)
    part.add(1, batches[0], hashes[batches[0]])
    part.add(3, batches[2], hashes[batches[2]])  # change 2 is taken from the journal first
    part.add(2, batches[1], hashes[batches[1]])  # then arrives: already applied, a no-op
    single = HammingIndex()
    mine = np.concatenate(batches[:3])
    mine = mine[mine % 2 == 0]
    single.add(mine, hashes[mine])
    assert part.version() == 3
    assert answers_equal(part.query(3, hashes, 256), single.query(hashes, 256))
    # Change 4 never reached it: a query sent after it catches up first.
    assert np.unique(part.query(4, hashes, 0)[1]).tolist() == list(range(0, 400, 2))
    # A shard (re)started after the changes were journaled loads them all.
    restarted = Shard(str(tmp_path), 1, 2, 256)
    assert np.unique(restarted.query(4, hashes, 0)[1]).tolist() == list(range(1, 400, 2))


def test_a_change_that_failed_on_one_shard_is_applied_there_when_it_restarts(
    tmp_path: Path,
) -> None:
    hashes = clustered(17, 300)
    parts = [Shard(str(tmp_path), i, 2, 256) for i in range(2)]
    record(tmp_path, 1, "add", np.arange(200), hashes[:200])
    parts[0].add(1, np.arange(200), hashes[:200])  # shard 1 died before it got change 1
    record(tmp_path, 2, "remove", np.arange(0, 200, 3), None)
    parts[0].remove(2, np.arange(0, 200, 3))
    restarted = Shard(str(tmp_path), 1, 2, 256)
    assert restarted.version() == 2
    live = np.setdiff1d(np.arange(200), np.arange(0, 200, 3))
    found = merged([part.query(2, hashes, 0) for part in (parts[0], restarted)])
    assert np.unique(found[1]).tolist() == live.tolist()


def test_a_part_left_by_a_killed_shard_loads_its_newest_base_and_drops_the_leftovers(
    tmp_path: Path,
) -> None:
    hashes = clustered(19, 3000)
    part = Shard(str(tmp_path), 0, 1, 256)
    record(tmp_path, 1, "add", np.arange(2000), hashes[:2000])
    part.add(1, np.arange(2000), hashes[:2000])
    assert part.compacted() == 1
    folder = tmp_path / "shard-0"
    first = (folder / "base-000000000001.hgi").read_bytes()
    record(tmp_path, 2, "add", np.arange(2000, 3000), hashes[2000:])
    part.add(2, np.arange(2000, 3000), hashes[2000:])  # a quarter of the part: a new base
    assert part.compacted() == 2
    assert sorted(os.listdir(folder)) == ["base-000000000002.hgi", "starts"]
    # Killed after the new base was written, before the old one went, or while writing aside:
    (folder / "base-000000000001.hgi").write_bytes(first)
    (folder / ".base-000000000003.hgi.1234.tmp").write_bytes(b"half")
    (tmp_path / "journal" / ".change-000000000003.hgi.1234.tmp").write_bytes(b"half")
    reloaded = Shard(str(tmp_path), 0, 1, 256)
    assert reloaded.version() == 2
    assert sorted(os.listdir(folder)) == ["base-000000000002.hgi", "starts"]
    assert not list((tmp_path / "journal").glob(".*"))
    assert answers_equal(reloaded.query(2, hashes, 0), part.query(2, hashes, 0))
    reloaded.add(2, np.arange(2000, 3000), hashes[2000:])  # a retried change: already applied
    assert reloaded.usage().entries == 3000


def test_a_base_that_cannot_be_written_fails_no_change_and_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = clustered(23, 200)
    part = Shard(str(tmp_path), 0, 1, 256)
    save = HammingIndex.save

    def full_disk(self: HammingIndex, path: Path | str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(HammingIndex, "save", full_disk)
    record(tmp_path, 1, "add", np.arange(100), hashes[:100])
    part.add(1, np.arange(100), hashes[:100])  # applied, though its base cannot be written
    assert part.compacted() == 0
    assert part.usage().entries == 100
    monkeypatch.setattr(HammingIndex, "save", save)
    record(tmp_path, 2, "remove", np.arange(3), None)
    part.remove(2, np.arange(3))
    assert part.compacted() == 2
    assert Shard(str(tmp_path), 0, 1, 256).usage().entries == 97


def test_a_part_that_cannot_be_read_for_a_moment_loads_at_the_next_call(tmp_path: Path) -> None:
    """An I/O fault while a shard loads (EIO, ESTALE: here, the journal file cannot be opened)
    is not kept: the call says the shard is unavailable, and the next call loads the part."""
    hashes = clustered(31, 10)
    record(tmp_path, 1, "add", np.arange(10), hashes)
    journaled = tmp_path / "journal" / "change-000000000001.hgi"
    aside = journaled.rename(tmp_path / "aside.hgi")
    journaled.mkdir()  # opening it fails, as a file on a failing disk would
    part = Shard(str(tmp_path), 0, 1, 256)
    with pytest.raises(ShardUnavailable, match=r"cannot load its part now: .*Is a directory"):
        part.query(1, hashes, 8)
    journaled.rmdir()
    aside.rename(journaled)
    assert part.usage().entries == 10
    assert part.compacted() == 1
    # A fault of the contents is kept: a restart would not mend it.
    base = tmp_path / "shard-0" / "base-000000000001.hgi"
    base.write_bytes(base.read_bytes()[:-1] + b"x")
    broken = Shard(str(tmp_path), 0, 1, 256)
    for _ in range(2):
        with pytest.raises(ShardDirectoryError, match="checksum mismatch"):
            broken.query(1, hashes, 8)


def test_a_shard_hung_while_it_loads_fails_the_open_and_its_close_is_no_start_that_died(
    ray_local: None, tmp_path: Path
) -> None:
    """A shard stuck loading (a journal file that never opens, as on a hung mount): the open
    fails after the timeout naming the shard, and the close that ends the loading is not
    counted against MAX_STARTS (a shard ended by close() did not die of its part)."""
    (tmp_path / "journal").mkdir()
    os.mkfifo(tmp_path / "journal" / "change-000000000001.hgi")  # open() waits for a writer
    # 10 s: the actor must have started and be stuck loading by then, even on a busy machine
    with pytest.raises(ShardUnavailable, match="shard 0 of 1: no answer within 10 s"):
        ShardedIndex(tmp_path, 1, num_cpus=0.5, timeout=10)
    assert (tmp_path / "shard-0" / "starts").read_bytes() == b"0"


def test_a_change_that_cannot_be_journaled_is_refused_with_nothing_changed(
    ray_local: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = clustered(37, 20)
    with ShardedIndex(tmp_path, 2, num_cpus=0.5) as sharded:
        sharded.add(np.arange(10), hashes[:10])

        def full_disk(*_: object) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patched:
            patched.setattr(shards_module, "record", full_disk)
            with pytest.raises(ShardUnavailable, match=r"cannot journal change 2 in .*: No space "
                               "left on device; nothing was changed"):  # fmt: skip
                sharded.add(np.arange(10, 20), hashes[10:])
        sharded.add(np.arange(10, 20), hashes[10:])  # numbered 2: no gap in the journal
        assert len(sharded) == 20


def test_shards_are_placed_first_fit_on_whole_nodes() -> None:
    """Two nodes of one CPU hold two shards of 0.6 CPUs, not three (1.8 <= 2 CPUs in all, but
    an actor runs on one node)."""
    assert placeable(2, 0.6, [1.0, 1.0])
    assert not placeable(3, 0.6, [1.0, 1.0])
    assert placeable(3, 0.3333, [1.0])
    assert not placeable(1, 0.0, [4.0])


def test_a_base_only_renamed_is_made_durable_before_it_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change with none of a shard's rows renames its base; the directory is synced before
    ``base()`` reports it (the driver then deletes the journal up to it)."""
    hashes = clustered(41, 20)
    part = Shard(str(tmp_path), 0, 2, 256)
    record(tmp_path, 1, "add", np.arange(0, 20, 2), hashes[:10])
    part.add(1, np.arange(0, 20, 2), hashes[:10])
    assert part.compacted() == 1
    synced: list[tuple[str, list[str]]] = []
    sync = shards_module.durable.sync_directory

    def recorded(folder: Path) -> None:
        synced.append((Path(folder).name, sorted(os.listdir(folder))))
        sync(folder)

    monkeypatch.setattr(shards_module.durable, "sync_directory", recorded)
    record(tmp_path, 2, "add", np.array([1]), hashes[10:11])  # shard 1's row only
    assert part.add(2, np.array([1]), hashes[10:11]) == 2
    assert ("shard-0", ["base-000000000002.hgi", "starts"]) in synced


def test_a_part_whose_loading_keeps_killing_its_process_stays_down_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(tmp_path, 1, "add", np.arange(10), clustered(29, 10))

    def dies(*_: object, **__: object) -> None:
        raise SystemExit(137)  # as the process would, killed by the OOM killer while loading

    with monkeypatch.context() as patched:
        patched.setattr(shards_module.fileformat, "read", dies)
        for _ in range(MAX_STARTS):
            with pytest.raises(SystemExit):
                Shard(str(tmp_path), 0, 1, 256)
    down = Shard(str(tmp_path), 0, 1, 256)  # up, but every call says why it cannot serve
    with pytest.raises(ShardDirectoryError, match=f"did not finish loading {MAX_STARTS} times"):
        down.query(1, clustered(29, 1), 8)
    (tmp_path / "shard-0" / "starts").unlink()  # as the message says, once the cause is fixed
    assert Shard(str(tmp_path), 0, 1, 256).usage().entries == 10


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, int, int]]]:
    """A shard count and a run of adds, removes and restarts (kind, how many, seed, which
    shards the change reaches: a bit each, the others missing it as a timeout would)."""
    shards = draw(st.integers(1, 3))
    step = st.tuples(
        st.sampled_from(["add", "remove", "restart"]),
        st.one_of(st.integers(1, 10), st.integers(50, 200)),  # small changes stay journaled
        st.integers(0, 2**32),
        st.integers(0, 2**shards - 1),
    )
    return shards, draw(st.lists(step, min_size=1, max_size=10))


@settings(max_examples=12, deadline=None)
@given(history=histories())
def test_parts_restarted_or_missing_changes_at_any_point_answer_as_one_index(
    tmp_path_factory: pytest.TempPathFactory,
    history: tuple[int, list[tuple[str, int, int, int]]],
) -> None:
    shards, steps = history
    folder = tmp_path_factory.mktemp("parts")

    def started() -> list[Shard]:
        return [Shard(str(folder), i, shards, 256) for i in range(shards)]

    parts = started()
    single = HammingIndex()
    added: list[np.ndarray] = []
    live = np.empty(0, np.int64)
    version = 0
    for kind, count, seed, reached in steps:
        if kind == "restart":
            for part in parts:
                part.compacted()  # one process per shard: the old one is gone first
            parts = started()
            continue
        version += 1
        sent = [part for i, part in enumerate(parts) if reached >> i & 1]
        if kind == "add":
            first = sum(map(len, added))
            ids = np.arange(first, first + count, dtype=np.int64)
            added.append(clustered(seed, count))
            single.add(ids, added[-1])
            record(folder, version, "add", ids, added[-1])
            for part in sent:
                part.add(version, ids, added[-1])
            live = np.concatenate([live, ids])
        else:
            ids = np.random.default_rng(seed).choice(live, min(count, len(live)), replace=False)
            single.remove(ids)
            record(folder, version, "remove", ids, None)
            for part in sent:
                part.remove(version, ids)
            live = np.setdiff1d(live, ids)
    if not added:
        return
    queries = near(np.random.default_rng(0), np.concatenate(added), 40, 40)
    for radius in (0, 31, 60, 256):
        found = merged([part.query(version, queries, radius) for part in parts])
        assert answers_equal(found, single.query(queries, radius))
    for part in parts:
        part.compacted()  # one process per shard: the old one is gone first
    reloaded = started()  # and once more, all reloaded from their files
    assert sum(part.usage().entries for part in reloaded) == len(single)
    for radius in (31, 256):
        found = merged([part.query(version, queries, radius) for part in reloaded])
        assert answers_equal(found, single.query(queries, radius))
    for part in reloaded:
        part.compacted()
