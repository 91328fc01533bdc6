"""The sharded index against one HammingIndex: queries/s and memory per shard.

    .venv/bin/python bench/scale_shards.py [--quick] [--sizes 10000000] [--shards 2,4]

For each size (10M; --quick: 1M), on one hash set from ``hashsets.generate`` (realistic PDQ
clusters; queries half near-duplicates of entries, half new images), at radius 31: one
HammingIndex queried in this process (one core), then a ``ShardedIndex`` of K shards on a
local Ray instance with every core of the machine, the same batch of queries. The answers must
be equal. Ratios are against the single index measured in the same run. Memory, two honest
figures: the index arrays the shards hold, per entry (the single index's arrays likewise: the
figure to size with), and the largest shard process's resident memory once the add has settled
(anonymous and file pages, not the object store's shared memory), next to its resident memory
before the add (Ray's and numba's baseline). bench/scale.py calls ``measure`` and ``rows``.
"""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray

from hashguard.cluster.shards import ShardedIndex
from hashguard.index import HammingIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hashsets import generate
from matching import index_bytes, timed
from report import table

RADIUS = 31
SIZES = (10_000_000,)
QUICK_SIZES = (1_000_000,)
SHARDS = (2, 4)
HEADER = (
    "entries",
    "index",
    "queries/s",
    "vs one index",
    "resident per shard MB",
    "index array bytes per entry",
)


@dataclass(frozen=True)
class Measured:
    entries: int
    shards: int  # 0: the single HammingIndex in this process
    queries_per_s: float
    ratio: float  # queries/s against the single index's
    shard_resident_bytes: int  # the largest shard's resident memory after the add; single: 0
    shard_baseline_bytes: int  # that shard's resident memory before its part was added
    bytes_per_entry: float  # the index arrays held (all shards together), per entry


def measure(
    size: int, shard_counts: Sequence[int] = SHARDS, query_count: int = 2000, seed: int = 1
) -> list[Measured]:
    """Queries/s of one index and of each sharded one on ``size`` entries. Starts a local Ray
    instance unless one is running. Exits (SystemExit) if any answer differs."""
    print(f"\n== {size:,} entries: generating ...", flush=True)
    hashes = generate(size, queries=query_count, seed=seed)
    ids = np.arange(size, dtype=np.int64)
    single = HammingIndex()
    single.add(ids, hashes.entries)
    single.query(hashes.queries[:10], RADIUS)  # compile or load the kernels
    seconds, expected = timed(lambda: single.query(hashes.queries, RADIUS), repeat=3)
    reference = query_count / seconds
    arrays = index_bytes(single)
    results = [Measured(size, 0, reference, 1.0, 0, 0, arrays / size)]
    print(f"one index: {reference:,.0f} queries/s", flush=True)
    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    for count in shard_counts:
        with tempfile.TemporaryDirectory() as directory, ShardedIndex(directory, count) as sharded:
            before = [usage.resident for usage in sharded.usage()]
            sharded.add(ids, hashes.entries)
            sharded.query(hashes.queries[:10], RADIUS)
            seconds, found = timed(lambda s=sharded: s.query(hashes.queries, RADIUS), repeat=3)
            if not all(
                np.array_equal(a, b) and a.dtype == b.dtype
                for a, b in zip(found, expected, strict=True)
            ):
                raise SystemExit(f"{count} shards answer differently from one index")
            ray.get([shard.compacted.remote() for shard in sharded.shards])  # settled
            after = sharded.usage()
            largest = max(range(count), key=lambda i: after[i].resident)
            rate = query_count / seconds
            results.append(
                Measured(
                    size,
                    count,
                    rate,
                    rate / reference,
                    after[largest].resident,
                    before[largest],
                    sum(usage.array_bytes for usage in after) / size,
                )
            )
            print(f"{count} shards: {rate:,.0f} queries/s", flush=True)
    return results


def rows(results: Sequence[Measured]) -> list[list[str]]:
    """``results`` as strings for ``report.table`` under HEADER."""
    return [
        [
            f"{m.entries:,}",
            "one HammingIndex (1 core)" if not m.shards else f"{m.shards} shards on Ray",
            f"{m.queries_per_s:,.0f}",
            f"{m.ratio:.2f}x",
            "-"
            if not m.shards
            else f"{m.shard_resident_bytes / 2**20:,.0f} ({m.shard_baseline_bytes / 2**20:,.0f}"
            " before the add)",
            f"{m.bytes_per_entry:,.0f}",
        ]
        for m in results
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M entries instead of 10M")
    parser.add_argument("--sizes", help="comma-separated entry counts (overrides --quick)")
    parser.add_argument("--shards", default=",".join(map(str, SHARDS)))
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    sizes = (
        [int(s) for s in options.sizes.split(",")]
        if options.sizes
        else (QUICK_SIZES if options.quick else SIZES)
    )
    shard_counts = [int(k) for k in options.shards.split(",")]
    print(f"{os.cpu_count()} cores; radius {RADIUS}; {options.queries:,} queries, half near")
    results: list[Measured] = []
    for size in sizes:
        results.extend(measure(size, shard_counts, options.queries, options.seed))
    table(HEADER, rows(results))


if __name__ == "__main__":
    main()
