"""A list grown by small imports, as the soak's second list grows: what a query costs as its
index's parts pile up and merge, against the same entries in one part, in the same run.

    make bench-parts   # or: .venv/bin/python bench/parts.py [--step 200] [--entries 360000]

A ``HammingIndex`` gets ``--step`` new 256-bit hashes per add (random: the cost of a part does
not hang on how the hashes cluster) up to ``--entries``. At each checkpoint: the parts and their
sizes, the microseconds a query takes (radius 31, one hash per call, as a request asks), the
same for an index holding the same entries in one part (one add), the ratio, and the time all
the adds so far took (the merges included). Best of 3 passes over 400 queries, one core.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from hashguard.index import HammingIndex

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table

RADIUS = 31
CHECKPOINTS = 12


def per_query(index: HammingIndex, queries: np.ndarray) -> float:
    """Microseconds a query of one hash takes: the best of 3 passes."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for row in queries:
            index.query(row[None, :], RADIUS)
        best = min(best, (time.perf_counter() - started) / len(queries))
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=int, default=200, help="hashes per add (the soak's 200)")
    parser.add_argument("--entries", type=int, default=360_000, help="hashes in the end")
    options = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 256, (options.entries, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, (400, 32), dtype=np.uint8)
    grown = HammingIndex()
    warm = HammingIndex()  # compiles the kernels before anything is timed
    warm.add(np.arange(20_000), hashes[:20_000])
    per_query(warm, queries[:10])
    every = max(options.step, options.entries // CHECKPOINTS // options.step * options.step)
    rows = []
    adding = 0.0
    for start in range(0, options.entries, options.step):
        ids = np.arange(start, min(start + options.step, options.entries))
        started = time.perf_counter()
        grown.add(ids, hashes[ids])
        adding += time.perf_counter() - started
        held = int(ids[-1]) + 1
        if held % every and held != options.entries:
            continue
        whole = HammingIndex()
        whole.add(np.arange(held), hashes[:held])
        sizes = [part.rows for part in grown.snapshot().parts]
        parts_us, whole_us = per_query(grown, queries), per_query(whole, queries)
        rows.append([f"{held:,}", f"{len(sizes)}: {', '.join(f'{s:,}' for s in sizes)}",
                     f"{parts_us:.0f}", f"{whole_us:.0f}", f"{parts_us / whole_us:.2f}",
                     f"{adding:.2f}"])  # fmt: skip
    print(f"\nA HammingIndex grown by {options.step:,} random hashes per add; radius {RADIUS}, "
          "one hash per query, one core\n")  # fmt: skip
    table(["entries", "parts: their rows", "us/query, as grown", "us/query, one part",
           "ratio", "all adds so far, s"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
