"""The Hamming index: exact against brute force, incremental, thread-safe, saved and loaded."""

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashguard.index import ExactIndex, HammingIndex, IndexFileError, fileformat, hamming, segments
from hashguard.index.segments import MERGE_RATIO
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqSignal

from support.hashes import clustered, near
from support.paths import BENCH

sys.path.insert(0, str(BENCH))
from hashsets import generate, pool

Result = set[tuple[int, int, int]]


def brute(entries: dict[int, np.ndarray], queries: np.ndarray, radius: int) -> Result:
    """Every (query row, id, distance) within ``radius``, by comparing with every entry."""
    if not entries:
        return set()
    ids = np.array(list(entries))
    stored = np.stack(list(entries.values()))
    width = stored.shape[1]
    pad = (-width) % 8
    a = np.pad(queries, ((0, 0), (0, pad))).view(np.uint64)
    b = np.pad(stored, ((0, 0), (0, pad))).view(np.uint64)
    d = np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2)
    rows, cols = np.nonzero(d <= radius)
    return set(zip(rows.tolist(), ids[cols].tolist(), d[rows, cols].tolist(), strict=True))


def as_set(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Result:
    rows, ids, distances = found
    result = set(zip(rows.tolist(), ids.tolist(), distances.tolist(), strict=True))
    assert len(result) == len(rows), "an entry was returned twice for one query"
    return result


@contextmanager
def strategy(kind: str) -> Iterator[None]:
    """Make every segment use the tables ("tables") or the scan ("scan"), whatever its size."""
    with pytest.MonkeyPatch.context() as patch:
        if kind == "tables":
            patch.setattr(hamming, "TABLE_MIN_ROWS", 1)
            patch.setattr(
                hamming,
                "_tables_pay",
                lambda layout, rows, high_bits, radius: int(layout.subradii(radius).max()) <= 4,
            )
        else:
            patch.setattr(hamming, "_tables_pay", lambda *args: False)
        yield


@pytest.fixture(scope="module")
def realistic():
    return generate(20_000, queries=300, seed=11, base=pool(scenes=12, photos=None))


# --- exactness ---------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0, 1, 8, 16, 24, 31, 32, 40, 48, 56, 64])
def test_realistic_set_every_radius_equals_brute_force(realistic, radius) -> None:
    index = HammingIndex()
    ids = np.arange(len(realistic.entries), dtype=np.int64) * 7 + 3
    index.add(ids, realistic.entries)
    assert all(part.segment.entries is not None for part in index.snapshot().parts)
    expected = brute(
        dict(zip(ids.tolist(), realistic.entries, strict=True)), realistic.queries, radius
    )
    assert as_set(index.query(realistic.queries, radius)) == expected


def test_tables_and_scan_agree_on_realistic_set(realistic) -> None:
    index = HammingIndex()
    index.add(np.arange(len(realistic.entries)), realistic.entries)
    for radius in (0, 16, 31, 48):
        with strategy("tables"):
            tables = as_set(index.query(realistic.queries, radius))
        with strategy("scan"):
            scan = as_set(index.query(realistic.queries, radius))
        assert tables == scan


@pytest.mark.parametrize("bits", [256, 64])
def test_flips_spread_evenly_over_the_tables_are_found_at_every_radius(bits) -> None:
    # The hardest case for multi-index hashing: a distance split as evenly as possible over the
    # tables' keys, so that each key differs as much as it can. Every such entry must be found.
    rng = np.random.default_rng(bits)
    index = HammingIndex(bits)
    table_bits = index.layout.table_bits
    query = rng.integers(0, 256, (1, bits // 8), dtype=np.uint8)
    entries = []
    expected = {}
    for radius in range(0, min(66, bits + 1)):
        for offset in range(len(table_bits)):
            bits_of = [list(row[row >= 0]) for row in table_bits]
            flipped = np.unpackbits(query[0].view("<u8").view(np.uint8), bitorder="little")
            turn = offset
            for _ in range(radius):
                while not bits_of[turn % len(bits_of)]:
                    turn += 1  # this table's bits are all flipped: on to the next
                table = bits_of[turn % len(bits_of)]
                flipped[table.pop(rng.integers(0, len(table)))] ^= 1
                turn += 1
            entry = np.packbits(flipped, bitorder="little")
            expected[len(entries)] = radius
            entries.append(entry)
    with strategy("tables"):
        index.add(np.arange(len(entries)), np.stack(entries))
        for radius in (0, 1, 5, 10, 11, 12, 16, 22, 23, 31, 32, 33, 40, 47, 48):
            _, ids, distances = index.query(query, radius)
            wanted = sorted(i for i, d in expected.items() if d <= radius)
            assert sorted(ids.tolist()) == wanted
            assert all(
                expected[i] == d for i, d in zip(ids.tolist(), distances.tolist(), strict=True)
            )


@st.composite
def scenarios(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    bits = draw(st.sampled_from([256, 256, 256, 64, 128, 192]))
    steps = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("add"), st.integers(1, 300)),
                st.tuples(st.just("remove"), st.integers(1, 200)),
                st.tuples(st.just("query"), st.integers(0, 64)),
            ),
            min_size=1,
            max_size=12,
        )
    )
    data = draw(st.sampled_from(["clustered", "uniform"]))
    return seed, bits, steps, draw(st.sampled_from(["tables", "scan"])), data


@settings(max_examples=60)
@given(scenarios())
def test_interleaved_adds_removes_and_queries_equal_brute_force(tmp_path_factory, scenario) -> None:
    seed, bits, steps, kind, data = scenario
    rng = np.random.default_rng(seed)
    width = bits // 8
    if data == "clustered":
        pool_hashes = clustered(seed, 2000, width)
    else:
        pool_hashes = rng.integers(0, 256, (2000, width), dtype=np.uint8)
    index = HammingIndex(bits)
    model: dict[int, np.ndarray] = {}
    next_id = int(rng.integers(-(2**40), 2**40))
    with strategy(kind):
        for action, amount in [*steps, ("query", int(rng.integers(0, 65)))]:
            if action == "add":
                ids = np.arange(next_id, next_id + amount, dtype=np.int64)
                rng.shuffle(ids)
                next_id += amount + int(rng.integers(0, 5))
                hashes = pool_hashes[rng.integers(0, len(pool_hashes), amount)]
                index.add(ids, hashes)
                model.update(zip(ids.tolist(), hashes, strict=True))
            elif action == "remove" and model:
                gone = rng.choice(list(model), min(amount, len(model)), replace=False)
                index.remove(gone)
                for i in gone.tolist():
                    del model[i]
            else:
                queries = np.concatenate(
                    [near(rng, pool_hashes, 20, 40), clustered(seed + 1, 5, width)]
                )
                radius = min(amount, bits)
                assert as_set(index.query(queries, radius)) == brute(model, queries, radius)
            assert len(index) == len(model)
        path = tmp_path_factory.mktemp("index") / "saved.hgi"
        index.save(path)
        loaded = HammingIndex.load(path)
        queries = near(rng, pool_hashes, 20, 40)
        assert len(loaded) == len(model)
        assert as_set(loaded.query(queries, 31)) == brute(model, queries, 31)


def test_many_small_adds_merge_into_few_segments_and_stay_exact() -> None:
    """A list grown by many small imports: every part holds more than MERGE_RATIO times the
    rows of all the smaller parts together, and the parts too small for tables are one, so a
    query meets a few parts, not one per add."""
    rng = np.random.default_rng(4)
    hashes = clustered(4, 60_000)
    index = HammingIndex()
    model = {}
    for start in range(0, len(hashes), 700):
        ids = np.arange(start, min(start + 700, len(hashes)))
        index.add(ids, hashes[ids])
        model.update(zip(ids.tolist(), hashes[ids], strict=True))
        sizes = sorted(part.rows for part in index.snapshot().parts)
        assert sum(sizes) == len(model)
        for k in range(1, len(sizes)):
            assert sizes[k] >= index.small_rows and sizes[k] > MERGE_RATIO * sum(sizes[:k]), sizes
    assert 1 < len(sizes) <= 3
    queries = near(rng, hashes, 50, 35)
    assert as_set(index.query(queries, 31)) == brute(model, queries, 31)


def test_a_large_list_grown_by_imports_is_not_rebuilt_each_time_it_grows_by_a_quarter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Beyond EAGER_ROWS a merge waits for MERGE_FANOUT parts of a size: a run of imports into
    a large list builds parts beside it, not the whole list again and again."""
    monkeypatch.setattr(segments, "EAGER_ROWS", 20_000)
    hashes = clustered(5, 100_000)
    index = HammingIndex()
    index.add(np.arange(50_000), hashes[:50_000])
    [large] = index.snapshot().parts
    for start in range(50_000, 100_000, 1000):
        index.add(np.arange(start, start + 1000), hashes[start : start + 1000])
        parts = index.snapshot().parts
        assert parts[0] is large and len(parts) <= 6, [part.rows for part in parts]
    queries = near(np.random.default_rng(5), hashes, 50, 35)
    model = dict(enumerate(hashes))
    assert as_set(index.query(queries, 31)) == brute(model, queries, 31)


def test_beyond_eager_rows_four_parts_of_a_size_merge_and_three_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segments, "EAGER_ROWS", 1000)
    hashes = clustered(6, 4800)
    index = HammingIndex()
    index.small_rows = 0
    parts = [index._part(index._build(np.arange(i, i + 1200), index._words(hashes[i : i + 1200])))
             for i in range(0, 4800, 1200)]  # fmt: skip
    assert [part.rows for part in index._settle(parts[:3])] == [1200, 1200, 1200]
    assert [part.rows for part in index._settle(parts)] == [4800]


def test_removed_ids_never_come_back_and_can_be_added_again() -> None:
    hashes = clustered(8, 3000)
    index = HammingIndex()
    index.add(np.arange(3000), hashes)
    index.remove(np.arange(0, 3000, 2))
    _, ids, _ = index.query(hashes, 0)
    assert len(ids) and not (ids % 2 == 0).any()
    assert len(index) == 1500
    index.remove(np.arange(1, 3000, 2))  # more than half: the segment is rebuilt, then dropped
    assert len(index) == 0 and index.query(hashes, 64)[0].size == 0
    index.add([0, 2], hashes[[5, 6]])
    _, ids, distances = index.query(hashes[[5]], 0)
    assert ids.tolist() == [0] and distances.tolist() == [0]


def test_present_says_which_ids_the_index_holds() -> None:
    index = HammingIndex()
    index.add([4, 7, 9], np.zeros((3, 32), np.uint8))
    index.remove([7])
    assert index.present([9, 7, 4, 5]).tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="repeat"):
        index.present([4, 4])


def test_empty_batches_and_empty_indexes_give_empty_results() -> None:
    index = HammingIndex()
    assert [a.size for a in index.query(np.zeros((3, 32), np.uint8), 31)] == [0, 0, 0]
    index.add([1], np.zeros((1, 32), np.uint8))
    assert [a.size for a in index.query(np.zeros((0, 32), np.uint8), 31)] == [0, 0, 0]
    assert [a.size for a in index.query_dihedral(np.zeros((0, 8, 32), np.uint8), 31)] == [0] * 3
    index.add([], np.zeros((0, 32), np.uint8))
    index.remove([])
    assert len(index) == 1


def test_results_are_ordered_by_query_distance_then_id() -> None:
    index = HammingIndex()
    base = np.zeros((1, 32), np.uint8)
    hashes = np.repeat(base, 4, axis=0)
    hashes[1, 0] = 0b1
    hashes[2, 0] = 0b11
    index.add([40, 30, 20, 10], hashes)
    rows, ids, distances = index.query(np.concatenate([base, base]), 5)
    assert rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert ids.tolist() == [10, 40, 30, 20] * 2
    assert distances.tolist() == [0, 0, 1, 2] * 2
    assert ids.dtype == np.int64 and rows.dtype == np.int64 and distances.dtype == np.int32


# --- dihedral ----------------------------------------------------------------------------------


def test_dihedral_query_finds_a_rotated_image_once_with_its_best_distance() -> None:
    signal = PdqSignal()
    images = [scene(seed, 320, 240) for seed in range(6)]
    stored = np.stack(
        [np.frombuffer(signal.hash(encode(image, "PNG")).bits, np.uint8) for image in images]
    )
    index = HammingIndex()
    index.add(np.arange(100, 106), stored)
    rotated = encode(images[2].rotate(90, expand=True), "PNG")
    variants = signal.hash_dihedral(rotated)
    array = np.stack([np.frombuffer(v.bits, np.uint8) for v in variants.variants.values()])
    plain = index.query(array[:1], 31)
    assert 102 not in plain[1].tolist()  # the rotated image's own hash does not match
    _, ids, distances = index.query_dihedral(array[None], 31)
    assert ids.tolist().count(102) == 1
    best = np.bitwise_count(array ^ stored[2]).sum(axis=1).min()
    assert distances[ids == 102].tolist() == [best] and best <= 31


# --- concurrency -------------------------------------------------------------------------------


def test_readers_see_consistent_snapshots_while_a_writer_changes_the_index() -> None:
    rng = np.random.default_rng(12)
    hashes = clustered(12, 4000)
    queries = near(rng, hashes, 40, 30)
    index = HammingIndex()
    index.add(np.arange(2000), hashes[:2000])
    model = dict(zip(range(2000), hashes[:2000], strict=True))
    states = [frozenset(as_set(index.query(queries, 31)))]
    operations = []
    for step in range(20):
        if step % 2 == 0:
            ids = np.arange(2000 + step * 100, 2100 + step * 100)
            operations.append(("add", ids))
            model.update(zip(ids.tolist(), hashes[ids], strict=True))
        else:
            ids = rng.choice(list(model), 150, replace=False)
            operations.append(("remove", ids))
            for i in ids.tolist():
                del model[i]
        states.append(frozenset(brute(model, queries, 31)))
    seen: list[frozenset] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            seen.append(frozenset(as_set(index.query(queries, 31))))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for action, ids in operations:
        if action == "add":
            index.add(ids, hashes[ids])
        else:
            index.remove(ids)
    done.set()
    for thread in threads:
        thread.join()
    assert seen and all(result in states for result in seen)
    assert frozenset(as_set(index.query(queries, 31))) == states[-1]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "hashes", "message"),
    [
        ([1, 2], np.zeros((2, 32), np.float64), "uint8"),
        ([1, 2], np.zeros((2, 31), np.uint8), r"shape \(n, 32\)"),
        ([1], np.zeros(32, np.uint8), r"shape \(n, 32\)"),
        ([1, 2, 3], np.zeros((2, 32), np.uint8), "3 ids but 2 hashes"),
        ([1.5, 2.0], np.zeros((2, 32), np.uint8), "integers"),
        ([[1, 2]], np.zeros((2, 32), np.uint8), "1-D"),
        ([4, 4], np.zeros((2, 32), np.uint8), "repeat within one call: 4"),
        (np.array([2**63], np.uint64), np.zeros((1, 32), np.uint8), "int64"),
    ],
)
def test_bad_adds_name_the_problem_and_change_nothing(ids, hashes, message) -> None:
    index = HammingIndex()
    index.add([7], np.zeros((1, 32), np.uint8))
    with pytest.raises(ValueError, match=message):
        index.add(ids, hashes)
    assert len(index) == 1


def test_adding_a_present_id_or_removing_an_unknown_one_changes_nothing() -> None:
    index = HammingIndex()
    index.add([1, 2, 3], np.zeros((3, 32), np.uint8))
    with pytest.raises(ValueError, match="already in the index: 2, 3"):
        index.add([2, 3, 9], np.ones((3, 32), np.uint8))
    with pytest.raises(ValueError, match="not in the index: 5"):
        index.remove([1, 5])
    assert len(index) == 3
    assert index.query(np.zeros((1, 32), np.uint8), 0)[1].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("radius", "message"),
    [(-1, "between 0 and 256"), (257, "between 0 and 256"), (3.0, "integer"), (True, "integer")],
)
def test_bad_radius_is_refused(radius, message) -> None:
    with pytest.raises(ValueError, match=message):
        HammingIndex().query(np.zeros((1, 32), np.uint8), radius)


def test_unsupported_widths_and_bad_dihedral_shapes_are_refused() -> None:
    for bits in (100, 256.0, True):
        with pytest.raises(ValueError, match="bits must be one of"):
            HammingIndex(bits)
    assert HammingIndex(np.int64(64)).bits == 64
    with pytest.raises(ValueError, match="hashes must be a uint8 array"):
        HammingIndex().add([1, 2], [[1, 2], [3]])
    with pytest.raises(ValueError, match=r"shape \(items, k, 32\)"):
        HammingIndex().query_dihedral(np.zeros((8, 32), np.uint8), 31)


# --- files -------------------------------------------------------------------------------------


def saved(tmp_path: Path, rows: int = 10_000) -> tuple[Path, np.ndarray]:
    hashes = clustered(21, rows)
    index = HammingIndex()
    index.add(np.arange(rows), hashes)
    index.remove(np.arange(0, rows, 3))
    path = tmp_path / "list.hgi"
    index.save(path)
    return path, hashes


@pytest.mark.parametrize("memory_map", [True, False])
def test_saved_index_loads_with_tables_and_deletions_and_stays_editable(
    tmp_path, memory_map
) -> None:
    path, hashes = saved(tmp_path)
    loaded = HammingIndex.load(path, memory_map=memory_map)
    assert len(loaded) == 10_000 - 3334
    assert loaded.snapshot().parts[0].segment.entries is not None
    model = {i: hashes[i] for i in range(10_000) if i % 3}
    queries = near(np.random.default_rng(1), hashes, 30, 30)
    assert as_set(loaded.query(queries, 31)) == brute(model, queries, 31)
    loaded.remove([1])
    loaded.add([10_000], hashes[:1])
    del model[1]
    model[10_000] = hashes[0]
    assert as_set(loaded.query(queries, 31)) == brute(model, queries, 31)
    loaded.save(path)  # over the file it was mapped from
    assert as_set(HammingIndex.load(path).query(queries, 31)) == brute(model, queries, 31)


def test_corrupt_truncated_and_foreign_files_are_refused_by_name(tmp_path) -> None:
    path, _ = saved(tmp_path)
    data = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.hgi"
    data[len(data) // 2] ^= 1
    flipped.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match=r"flipped\.hgi: checksum mismatch"):
        HammingIndex.load(flipped)
    truncated = tmp_path / "truncated.hgi"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(IndexFileError, match=r"truncated\.hgi"):
        HammingIndex.load(truncated, verify=False)
    other = tmp_path / "other.bin"
    other.write_bytes(b"\x89PNG" + bytes(100))
    with pytest.raises(IndexFileError, match="not a hashguard index file"):
        HammingIndex.load(other)
    with pytest.raises(IndexFileError, match="No such file"):
        HammingIndex.load(tmp_path / "missing.hgi")
    exact = ExactIndex(16)
    exact.add([1], [bytes(16)])
    exact.save(tmp_path / "exact.hgi")
    with pytest.raises(IndexFileError, match="holds a 'exact' index"):
        HammingIndex.load(tmp_path / "exact.hgi")


def tampered(path: Path, out: Path, change) -> Path:
    """``path``'s index with ``change`` applied to its arrays, under a valid checksum."""
    meta, arrays = fileformat.read(path, "hamming", memory_map=False)
    arrays = {name: array.copy() for name, array in arrays.items()}
    change(arrays)
    fileformat.write(out, "hamming", meta, arrays)
    return out


def _row_past_end(arrays) -> None:
    arrays["0.entries"][0, 0] |= np.uint32(0xFFFFFF)


def _directory_going_back(arrays) -> None:
    arrays["0.dirs"][:, 1:-1] = 1 << 26


def _ids_out_of_order(arrays) -> None:
    arrays["0.ids"][:2] = [np.iinfo(np.int64).max, np.iinfo(np.int64).min]


def _wide_low_bits(arrays) -> None:
    arrays["0.entries"][5, 0] |= np.uint32(0xFF << 24)  # table 5: 23-bit keys, 7 low bits


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_row_past_end, "point past the last row"),
        (_directory_going_back, "directories are not offsets"),
        (_ids_out_of_order, "ids must be strictly increasing"),
        (_wide_low_bits, "keys wider than the layout"),
    ],
)
def test_load_refuses_tables_that_would_read_out_of_bounds(tmp_path, change, message) -> None:
    path, _ = saved(tmp_path)
    bad = tampered(path, tmp_path / "bad.hgi", change)
    with pytest.raises(IndexFileError, match=message):
        HammingIndex.load(bad)


def test_ids_across_the_whole_int64_range_save_and_load(tmp_path) -> None:
    ids = np.array([np.iinfo(np.int64).min, -1, 0, 2**62 + 2**61], np.int64)
    index = HammingIndex()
    index.add(ids, clustered(3, 4))
    index.save(tmp_path / "wide.hgi")
    assert sorted(HammingIndex.load(tmp_path / "wide.hgi").query(clustered(3, 4), 0)[1]) == sorted(
        ids.tolist()
    )


def test_concurrent_saves_to_one_path_leave_a_whole_file(tmp_path) -> None:
    indexes = []
    for seed in range(4):
        index = HammingIndex()
        index.add(np.arange(3000), clustered(seed, 3000))
        indexes.append(index)
    path = tmp_path / "shared.hgi"
    threads = [threading.Thread(target=index.save, args=(path,)) for index in indexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(HammingIndex.load(path)) == 3000
    assert [p.name for p in tmp_path.iterdir()] == ["shared.hgi"]  # no temporary files left


def test_snapshots_cannot_be_written_through() -> None:
    index = HammingIndex()
    index.add(np.arange(9000), clustered(5, 9000))
    part = index.snapshot().parts[0]
    for array in (part.segment.values, part.segment.entries, part.segment.ids, part.deleted):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
