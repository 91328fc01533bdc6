"""Matching speed and memory: hashguard's HammingIndex against faiss, on realistic PDQ hash sets.

    make bench-matching   # or: .venv/bin/python bench/matching.py [--sizes 1000000,10000000]

For each size, on one hash set from ``hashsets.generate`` (power-law clusters of variants of
real PDQ spectra; queries half near, half new), pinned to one core, same queries, same run:

  (a) faiss ``IndexBinaryFlat.range_search`` (exhaustive, exact),
  (b) faiss ``IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = 1`` (HMA's PDQ index),
  (c) hashguard ``HammingIndex``,

at radius 31 (PDQ's threshold; faiss is asked for < 32), plus hashguard at radius 16 and 48 and
with 2 threads. Recall is against (a), which compares every pair. Then hashguard's build, save,
load, and an update: add 100k new hashes to the full index and find them all (radius 0), then
remove them and check none is returned again.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import gc
import multiprocessing
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

import faiss
import numpy as np

from hashguard.index import HammingIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hashsets import generate
from report import table

RADIUS = 31
UPDATE = 100_000


def pin(cores: int) -> None:
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
        os.sched_setaffinity(0, set(available[:cores]))


def resident() -> int:
    """Resident memory of this process now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def anonymous_resident() -> int:
    """Anonymous resident memory (heap, not mapped files) of this process, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def _grow(kind: str, path: str, send: Connection) -> None:
    entries = np.load(path, mmap_mode="r")  # file pages: not counted as anonymous memory
    before = anonymous_resident()
    built = BUILDERS[kind](entries)
    gc.collect()
    send.send(anonymous_resident() - before)
    del built


def growth(kind: str, path: Path, grow: Callable[[str, str, Connection], None] = _grow) -> int:
    """Memory an index of ``kind`` keeps after ``grow`` builds it from what is saved at
    ``path`` (by default the hashes of this benchmark), measured in a fresh process so that
    memory freed earlier in this one is not reused."""
    receive, send = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("spawn").Process(
        target=grow, args=(kind, str(path), send)
    )
    process.start()
    grown = receive.recv()
    process.join()
    return int(grown)


def timed(run: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def build_flat(entries: np.ndarray) -> object:
    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryFlat(256)
    index.add(np.ascontiguousarray(entries[:0]))
    for start in range(0, len(entries), 1_000_000):  # no full in-memory copy of the input
        index.add(np.ascontiguousarray(entries[start : start + 1_000_000]))
    return index


def build_multihash(entries: np.ndarray) -> object:
    faiss.omp_set_num_threads(1)
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    for start in range(0, len(entries), 1_000_000):
        index.add(np.ascontiguousarray(entries[start : start + 1_000_000]))
    return index


def build_hashguard(entries: np.ndarray) -> object:
    index = HammingIndex()
    index.add(np.arange(len(entries), dtype=np.int64), entries)
    return index


BUILDERS: dict[str, Callable[[np.ndarray], object]] = {
    "flat": build_flat,
    "multihash": build_multihash,
    "hashguard": build_hashguard,
}


def pairs_faiss(limits: np.ndarray, labels: np.ndarray) -> set[tuple[int, int]]:
    rows = np.repeat(np.arange(len(limits) - 1), np.diff(limits.astype(np.int64)))
    return set(zip(rows.tolist(), labels.tolist(), strict=True))


def pairs(found: tuple[np.ndarray, np.ndarray, np.ndarray]) -> set[tuple[int, int]]:
    return set(zip(found[0].tolist(), found[1].tolist(), strict=True))


def recall(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> str:
    extra = len(found - truth)
    share = len(found & truth) / len(truth) if truth else 1.0
    return f"{100 * share:.2f} %" + (f" (+{extra} wrong)" if extra else "")


def index_bytes(index: HammingIndex) -> int:
    return index.array_bytes()


def measure(size: int, query_count: int, seed: int, scratch: Path) -> list[list[str]]:
    print(f"\n== {size:,} hashes: generating ...", flush=True)
    hashes = generate(size, queries=query_count, seed=seed)
    entries, queries = hashes.entries, hashes.queries
    fresh = generate(UPDATE, queries=0, seed=seed + 1).entries
    rows: list[list[str]] = []
    q = len(queries)

    flat = faiss.IndexBinaryFlat(256)
    flat_build, _ = timed(lambda: flat.add(entries))
    saved = scratch / "entries.npy"
    np.save(saved, entries)
    flat_memory = growth("flat", saved)
    flat_time, flat_result = timed(lambda: flat.range_search(queries, RADIUS + 1))
    truth = pairs_faiss(flat_result[0], flat_result[2])
    print(f"faiss flat: {q / flat_time:.0f} q/s", flush=True)

    multi = faiss.IndexBinaryMultiHash(256, 16, 16)
    multi.nflip = 1
    multi_build, _ = timed(lambda: multi.add(entries))
    multi.reset()
    multi_memory = growth("multihash", saved)
    multi.add(entries)
    multi_time, multi_result = timed(lambda: multi.range_search(queries, RADIUS + 1))
    multi_pairs = pairs_faiss(multi_result[0], multi_result[2])
    print(f"faiss multihash: {q / multi_time:.0f} q/s", flush=True)
    multi.reset()  # frees its tables
    gc.collect()

    index = HammingIndex()
    ids = np.arange(size, dtype=np.int64)
    hg_resident = growth("hashguard", saved)
    build, _ = timed(lambda: index.add(ids, entries))
    hg_bytes = index_bytes(index)
    index.query(queries[:10], RADIUS)  # compile or load the kernels
    hg_time, found = timed(lambda: index.query(queries, RADIUS), repeat=3)
    print(f"hashguard: {q / hg_time:.0f} q/s", flush=True)
    best_faiss = max(q / flat_time, q / multi_time)
    ratio = q / hg_time / best_faiss

    def row(name: str, build_s: float, memory: str, seconds: float, found_recall: str) -> None:
        rows.append(
            [
                f"{size:,}",
                name,
                f"{build_s:.1f}",
                memory,
                f"{q / seconds:,.0f}",
                f"{q / seconds / best_faiss:.1f}x",
                found_recall,
            ]
        )

    row(
        "faiss IndexBinaryFlat", flat_build, f"{flat_memory / size:.0f}", flat_time, "100 % (truth)"
    )
    row(
        "faiss MultiHash 16x16, nflip=1",
        multi_build,
        f"{multi_memory / size:.0f}",
        multi_time,
        recall(multi_pairs, truth),
    )
    row(
        "hashguard HammingIndex",
        build,
        f"{hg_bytes / size:.0f} ({hg_resident / size:.0f} RSS)",
        hg_time,
        recall(pairs(found), truth),
    )

    extra: list[list[str]] = []
    for radius in (16, 48):
        flat_r, truth_r = timed(lambda r=radius: flat.range_search(queries, r + 1))
        seconds, found_r = timed(lambda r=radius: index.query(queries, r), repeat=2)
        truth_pairs = pairs_faiss(truth_r[0], truth_r[2])
        extra.append(
            [
                f"{size:,}",
                f"radius {radius}",
                f"{q / flat_r:,.0f} (flat)",
                f"{q / seconds:,.0f}",
                f"{flat_r / seconds:.1f}x vs flat",
                recall(pairs(found_r), truth_pairs),
            ]
        )
    flat.reset()
    gc.collect()

    pin(2)
    halves = np.array_split(queries, 2)
    with ThreadPoolExecutor(2) as pool:
        two, _ = timed(lambda: list(pool.map(lambda h: index.query(h, RADIUS), halves)), repeat=3)
    pin(1)
    extra.append(
        [
            f"{size:,}",
            "radius 31, 2 threads",
            "",
            f"{q / two:,.0f}",
            f"{hg_time / two:.2f}x vs 1 thread",
            "",
        ]
    )

    path = scratch / "index.hgi"
    save, _ = timed(lambda: index.save(path))
    load, _ = timed(lambda: HammingIndex.load(path), repeat=2)
    load_fast, _ = timed(lambda: HammingIndex.load(path, verify=False), repeat=2)
    mapped_time = mapped_query_time(path, queries, pairs(found))
    file_size = path.stat().st_size

    new_ids = np.arange(size, size + UPDATE, dtype=np.int64)

    def add_and_find() -> bool:
        index.add(new_ids, fresh)
        _, got, _ = index.query(fresh, 0)
        return bool(np.isin(new_ids, got).all())

    update, all_found = timed(add_and_find)
    removal, _ = timed(lambda: index.remove(new_ids))
    _, gone, _ = index.query(fresh, RADIUS)
    never_again = not np.isin(gone, new_ids).any()

    print(
        f"\nhashguard at {size:,}: {ratio:.1f}x the faster faiss index at radius 31; "
        f"save {save:.1f} s, file {file_size / size:.0f} B/hash; load {load:.2f} s with "
        f"checksum, {load_fast:.2f} s without; queries on the mapped index "
        f"{q / mapped_time:,.0f}/s; add {UPDATE:,} and find them all {update:.2f} s "
        f"(all found: {all_found}); remove them {removal:.2f} s (never returned again: "
        f"{never_again})",
        flush=True,
    )
    table(
        ["hashes", "index", "build s", "bytes/hash", "queries/s", "vs best faiss", "recall"], rows
    )
    table(["hashes", "hashguard", "reference", "queries/s", "ratio", "recall"], extra)
    return rows


def mapped_query_time(path: Path, queries: np.ndarray, expected: set[tuple[int, int]]) -> float:
    loaded = HammingIndex.load(path)
    loaded.query(queries[:10], RADIUS)
    seconds, found = timed(lambda: loaded.query(queries, RADIUS), repeat=3)
    assert pairs(found) == expected  # type: ignore[arg-type]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    pin(1)
    faiss.omp_set_num_threads(1)
    for size in (int(s) for s in options.sizes.split(",")):
        with tempfile.TemporaryDirectory() as scratch:
            measure(size, options.queries, options.seed, Path(scratch))


if __name__ == "__main__":
    main()
