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

from hashguard.cluster.shards import (
    MAX_CHANGES,
    Shard,
    ShardDirectoryError,
    ShardedIndex,
    ShardUnavailable,
)
from hashguard.errors import Unavailable
from hashguard.index import HammingIndex
from hashguard.index.hamming import merged

from support.hashes import clustered, near
from support.waiting import eventually

pytestmark = pytest.mark.ray

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
        sharded.add(np.arange(20), hashes[:20])
        # 21 and 22 are new and would go to both shards; 3 is present: nothing is added.
        with pytest.raises(ValueError, match=r"already in the index: 3$"):
            sharded.add([21, 22, 3], hashes[20:23])
        with pytest.raises(ValueError, match="not in the index: 25, 31"):
            sharded.remove([1, 2, 25, 31])
        with pytest.raises(ValueError, match="2 ids but 3 hashes"):
            sharded.add([30, 31], hashes[:3])
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
    for folder in sorted(tmp_path.glob("shard-*")):
        names = [path.name for path in folder.iterdir()]
        assert sum(name.startswith("base-") for name in names) == 1
        assert sum(name.startswith("change-") for name in names) < MAX_CHANGES
        assert len(names) < MAX_CHANGES + 1  # nothing else left behind
    with pytest.raises(ShardDirectoryError, match="holds 2 shards of 256-bit hashes, not 3"):
        ShardedIndex(tmp_path, 3)
    with ShardedIndex(tmp_path, 2) as reopened:
        queries = near(rng, hashes, 100, 20)
        assert same(reopened, single, queries, 31)
        reopened.add([5000], hashes[:1])  # numbering goes on after the changes on file
        single.add([5000], hashes[:1])
        assert same(reopened, single, queries, 31)
    (base,) = (tmp_path / "shard-1").glob("base-*.hgi")
    corrupt = bytearray(base.read_bytes())
    corrupt[100] ^= 1
    base.write_bytes(corrupt)
    with pytest.raises(ShardUnavailable, match=r"shard 1 of 2: .*base-.*checksum mismatch"):
        ShardedIndex(tmp_path, 2)


def test_a_part_left_between_its_new_base_and_the_old_files_loads_the_new_base(
    tmp_path: Path,
) -> None:
    hashes = clustered(13, 3000)
    first = Shard(str(tmp_path / "first"), 0, 1, 256)
    first.add(1, np.arange(2000), hashes[:2000])  # written as a base
    first.add(2, np.arange(2000, 2100), hashes[2000:2100])  # a change file beside it
    crashed = tmp_path / "crashed"
    shutil.copytree(tmp_path / "first", crashed)
    first.add(3, np.arange(2100, 3000), hashes[2100:])  # a new base; the older files go
    assert os.listdir(tmp_path / "first") == ["base-000000000003.hgi"]
    # A crash after the new base was written, before the older files were deleted:
    shutil.copy(tmp_path / "first" / "base-000000000003.hgi", crashed)
    reloaded = Shard(str(crashed), 0, 1, 256)
    assert reloaded.version() == 3
    assert os.listdir(crashed) == ["base-000000000003.hgi"]
    found, expected = reloaded.query(hashes, 0), first.query(hashes, 0)
    assert all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True))
    reloaded.add(3, np.arange(2100, 3000), hashes[2100:])  # a retried change: already applied
    assert reloaded.usage().entries == 3000


@st.composite
def histories(draw: st.DrawFn) -> tuple[int, list[tuple[str, int, int]]]:
    """A shard count and a run of adds, removes and restarts (kind, how many, seed)."""
    shards = draw(st.integers(1, 3))
    step = st.tuples(
        st.sampled_from(["add", "remove", "restart"]),
        st.one_of(st.integers(1, 10), st.integers(50, 200)),  # small changes stay change files
        st.integers(0, 2**32),
    )
    return shards, draw(st.lists(step, min_size=1, max_size=10))


@settings(max_examples=12, deadline=None)
@given(history=histories())
def test_parts_restarted_at_any_point_answer_as_one_index(
    tmp_path_factory: pytest.TempPathFactory, history: tuple[int, list[tuple[str, int, int]]]
) -> None:
    shards, steps = history
    folder = tmp_path_factory.mktemp("parts")

    def started() -> list[Shard]:
        return [Shard(str(folder / f"shard-{i}"), i, shards, 256) for i in range(shards)]

    parts = started()
    single = HammingIndex()
    added: list[np.ndarray] = []
    live = np.empty(0, np.int64)
    for version, (kind, count, seed) in enumerate(steps, start=1):
        if kind == "restart":
            parts = started()
        elif kind == "add":
            first = sum(map(len, added))
            ids = np.arange(first, first + count, dtype=np.int64)
            added.append(clustered(seed, count))
            single.add(ids, added[-1])
            for part in parts:
                part.add(version, ids, added[-1])
            live = np.concatenate([live, ids])
        else:
            ids = np.random.default_rng(seed).choice(live, min(count, len(live)), replace=False)
            single.remove(ids)
            for part in parts:
                part.remove(version, ids)
            live = np.setdiff1d(live, ids)
    if not added:
        return
    queries = near(np.random.default_rng(0), np.concatenate(added), 40, 40)
    for answering in (parts, started()):  # and once more, all reloaded from their files
        for radius in (0, 31, 60):
            found = merged([part.query(queries, radius) for part in answering])
            expected = single.query(queries, radius)
            assert all(np.array_equal(a, b) for a, b in zip(found, expected, strict=True))
