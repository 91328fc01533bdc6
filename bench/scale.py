"""Scale-out (issue 22): scan throughput per engine, replica propagation, the sharded index
against one index, and from these measured figures the sizing table for 1 billion files.

    scripts/with-postgresql .venv/bin/python bench/scale.py [--quick]   (make bench-scale)

(1) ``hashguard scan``'s work on 512 px JPEG scenes (bench/scale_scan.py): one process, the
    process pool of 2 workers, Ray with 2 CPUs; Ray's share of the pool's files/s (bar: 85 %)
    and its overhead per file; once against a list of 1,000 entries and once against 1M (what
    shipping the Matcher costs, and its memory on a node: the object store's copy and each
    worker's own).
(2) Replicas (bench/scale_replicas.py, needs PostgreSQL: run under scripts/with-postgresql):
    propagation p50/p99 of 50 changes between two ``hashguard serve`` (target p99 <= 1 s), and
    load time of a list from the database against a signed snapshot.
(3) The sharded index (bench/scale_shards.py): queries/s at 10M entries, one HammingIndex
    against K = 2 and 4 shards on Ray.
(4) The sizing table (bench/scale_sizing.py) for 1 billion files against 100M entries, from
    (1)'s single-process files/s, (3)'s one-index queries/s, and from (1)'s run against the big
    list: Ray's share of ideal scaling and the Matcher's bytes per entry in the object store and
    in each worker, with the arithmetic printed and the sizes it extrapolates from.

--quick: 400 files, lists of 100k, 1M entries for the shards, 100k for the load times.
"""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DISABLE_IMPORT_WARNING", "1")

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import ray

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_replicas
import scale_scan
import scale_shards
import scale_sizing
from hashguard.store.database import temporary_database
from report import table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    options = parser.parse_args()
    quick = options.quick
    files, big_list = (400, 100_000) if quick else (4000, 1_000_000)
    shard_entries, load_entries = (1_000_000, 100_000) if quick else (10_000_000, 1_000_000)
    print(f"{os.cpu_count()} cores\n")

    print("## (1) Scan throughput: 512 px JPEG scenes, parts of 100 files\n")
    scans = []
    for entries in (1000, big_list):
        measured = scale_scan.measure(files, 512, 100, 2, entries)
        scans.append(measured)
        print(f"{files:,} files against a list of {entries:,} entries:\n")
        table(scale_scan.HEADER, scale_scan.rows(measured))
        if measured.efficiency is not None:
            print(f"Ray: {measured.efficiency:.0%} of the pool's files/s (bar: >= 85 %), "
                  f"{measured.ray_overhead_ms:.2f} ms more per file, {measured.scaling:.0%} of "
                  f"ideal scaling\n{scale_scan.start(measured)}\n"
                  f"{scale_scan.memory(measured)}\n")  # fmt: skip

    print("## (2) Replicas\n")
    server = os.environ.get("HASHGUARD_TEST_POSTGRES_URL")
    if not server:
        print("skipped: needs PostgreSQL (run under scripts/with-postgresql)\n")
    else:
        with tempfile.TemporaryDirectory() as directory, temporary_database(server) as url:
            scratch = Path(directory)
            delays = scale_replicas.replicas(url, 50, scratch)
            p99 = scale_replicas.percentile(delays, 0.99)
            print(f"propagation of {len(delays)} changes: p50 "
                  f"{statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
                  f"{max(delays) * 1000:.0f} ms (target p99 <= 1000 ms)\n")  # fmt: skip
            database_s, snapshot_s = scale_replicas.load_times(url, load_entries, scratch)
            table(("entries", "from the database", "from a snapshot", "ratio"),
                  [[f"{load_entries:,}", f"{database_s:.2f} s", f"{snapshot_s:.2f} s",
                    f"{database_s / snapshot_s:.1f}x"]])  # fmt: skip

    print(f"## (3) Sharded index: {shard_entries:,} entries, radius 31\n")
    shards = scale_shards.measure(shard_entries, (2, 4))
    ray.shutdown()
    table(scale_shards.HEADER, scale_shards.rows(shards))

    single = next(m for m in shards if m.shards == 0)
    big = scans[-1]
    if big.scaling_after_start is None:
        sys.exit("the sizing needs Ray's figures: pip install 'hashguard[ray]'")
    print(f"## (4) Sizing: 1 billion files against 100M entries, extrapolated from queries "
          f"against {shard_entries:,} entries and a Matcher of {big.entries:,}\n")  # fmt: skip
    # A scan of a billion files runs for hours: Ray's one-off start (seconds) does not count.
    efficiency = min(1.0, big.scaling_after_start)
    figures = scale_sizing.PerCore(
        hash_files_per_s=scans[0].single_files_per_s,
        match_queries_per_s=single.queries_per_s,
        store_bytes_per_entry=big.store_bytes / big.entries,
        worker_bytes_per_entry=big.worker_bytes / big.entries,
        measured_entries=shard_entries,
    )
    workload = scale_sizing.Workload(efficiency=efficiency)
    for line in scale_sizing.explain(figures, workload):
        print(f"- {line}")
    print()
    table(scale_sizing.HEADER, scale_sizing.table_rows(scale_sizing.sizing(figures, workload)))


if __name__ == "__main__":
    main()
