"""Scan throughput by engine: what Ray costs against the process pool.

    .venv/bin/python bench/scale_scan.py [--files N] [--part-size N] [--workers N] [--entries N]

Generates N benign scenes (JPEG, 512 px by default; a list of 1,000 PDQ hashes holds some of
them) in a temporary directory, then scans them with ``scan_part`` as ``hashguard scan`` does:

  (a) in this process (``--workers 0``);
  (b) the local engine, a process pool of ``--workers`` (default 2);
  (c) Ray, a local instance of ``--workers`` CPUs (its start-up not counted).

It prints files/s per engine with its ratio to the process pool (issue 22's bar: Ray >= 85 %),
Ray's overhead per file: (Ray's seconds - the pool's) / files, Ray's share of ideal scaling
(its files/s / (workers x the single process's)), Ray's one-off start (the Matcher put into the
object store, once per scan; the pool's forked workers get it for nothing) with Ray's share of
the pool's files/s without it, and the memory the Matcher takes on a node:
its copy in the object store (pickled with protocol 5, as Ray stores it) and what one worker
process holds of its own once it has loaded it (tracemalloc: the Python objects unpickled; the
arrays Ray maps from the store are shared by the node's workers). Every engine's rows must equal
the single-process run's, or the script fails.
"""

import argparse
import os
import pickle
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np

from hashguard.lists.model import Category
from hashguard.lists.records import Submission
from hashguard.matching import Matcher
from hashguard.media.synthetic import encode, scene
from hashguard.scan.pool import scan_locally
from hashguard.scan.source import open_source
from hashguard.scan.work import ScanSettings
from hashguard.signals.pdq import PdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table

HEADER = ("engine", "seconds", "files/s", "vs the pool")


@dataclass(frozen=True)
class ScanMeasured:
    files: int
    size: int  # px
    entries: int  # in the list matched against
    workers: int
    seconds: dict[str, float]  # per engine, in the order run: single, pool, Ray
    listing: float = 0.0  # seconds to list the directory
    loads: tuple[int, int] = (0, 0)  # on Ray: Matcher loads, worker processes that scanned
    store_bytes: int = 0  # the Matcher's copy in Ray's object store (one per node)
    worker_bytes: int = 0  # what one Ray worker process holds of its own once it loaded it
    put: float = 0.0  # seconds to put the Matcher into Ray's object store: once per scan

    @property
    def pool(self) -> float:
        return self.seconds[f"local, {self.workers} workers"]

    @property
    def ray(self) -> float | None:
        return next((t for n, t in self.seconds.items() if n.startswith("ray")), None)

    @property
    def single_files_per_s(self) -> float:
        return self.files / self.seconds["single process"]

    @property
    def efficiency(self) -> float | None:
        """Ray's files/s as a share of the process pool's (issue 22: >= 85 %)."""
        return None if self.ray is None else self.pool / self.ray

    @property
    def efficiency_after_start(self) -> float | None:
        """Ray's files/s as a share of the pool's without its one-off start, the Matcher put
        into the object store (a fork hands the pool its Matcher for nothing): what a scan
        long enough for that start not to count reaches."""
        return None if self.ray is None else self.pool / (self.ray - self.put)

    @property
    def scaling(self) -> float | None:
        """Ray's files/s as a share of ideal scaling: workers x the single process's."""
        single = self.seconds["single process"]
        return None if self.ray is None else single / (self.workers * self.ray)

    @property
    def scaling_after_start(self) -> float | None:
        """``scaling`` without Ray's one-off start: what a long scan reaches."""
        single = self.seconds["single process"]
        return None if self.ray is None else single / (self.workers * (self.ray - self.put))

    @property
    def ray_overhead_ms(self) -> float | None:
        """Ray's extra wall time per file against the pool."""
        return None if self.ray is None else (self.ray - self.pool) / self.files * 1000


def corpus(directory: Path, files: int, size: int, entries: int = 1000) -> Matcher:
    """``files`` scenes in ``directory``/media, and a Matcher of a list of ``entries`` PDQ
    hashes: every tenth scene's (up to 1,000), the rest random values (a list of realistic
    size costs the engines what shipping its index to workers costs)."""
    media = directory / "media"
    media.mkdir()
    listed = []
    for number in range(files):
        data = encode(scene(number, size, size), "JPEG")
        (media / f"{number:07d}.jpg").write_bytes(data)
        if number % 10 == 0 and len(listed) < min(1000, entries):
            listed.append(PdqSignal().hash(data).hex)
    random = np.random.default_rng(7).integers(0, 256, (max(0, entries - len(listed)), 32),
                                               dtype=np.uint8)  # fmt: skip
    listed.extend(bytes(row).hex() for row in random)
    engine = open_engine(f"sqlite:///{directory / 'lists.db'}")
    store = ListStore(engine)
    store.create("bench", "Bench", Category.TEST)
    store.apply("bench", (Submission("pdq", value) for value in listed))
    return Matcher(store, ["bench"])


def measure(
    files: int, size: int = 512, part_size: int = 100, workers: int = 2, entries: int = 1000
) -> ScanMeasured:
    """Seconds to scan ``files`` scenes of ``size`` px against a list of ``entries``: in one
    process, in the process pool and on Ray (a local instance of ``workers`` CPUs, its start-up
    not counted). Exits if any engine's rows differ from the single process's."""
    seconds: dict[str, float] = {}
    loads: Counter[int] = Counter()  # on Ray, per worker process
    with tempfile.TemporaryDirectory() as scratch:
        matcher = corpus(Path(scratch), files, size, entries)
        source = open_source(str(Path(scratch) / "media"))
        start = time.perf_counter()
        listed = list(source.files())
        listing = time.perf_counter() - start
        parts = [(n, listed[s : s + part_size])
                 for n, s in enumerate(range(0, len(listed), part_size))]  # fmt: skip
        settings = ScanSettings(matcher.variant_families(), matcher.versions())

        def timed(run: Iterable[tuple[int, Any]]) -> tuple[float, list[object]]:
            start = time.perf_counter()
            rows = sorted(run, key=lambda p: p[0])
            return time.perf_counter() - start, [r.to_pylist() for _, r in rows]

        seconds["single process"], reference = timed(
            scan_locally(parts, source.reader, matcher, settings, 0)
        )
        seconds[f"local, {workers} workers"], pooled = timed(
            scan_locally(parts, source.reader, matcher, settings, workers)
        )
        if pooled != reference:
            sys.exit("the process pool's rows differ from the single process's")
        try:
            import ray

            from hashguard.cluster.scan import scan_on_ray
        except ImportError:
            print("Ray not installed: pip install 'hashguard[ray]'")
        else:

            def held_by_a_worker(shared: list[Any]) -> int:
                """In a Ray worker (defined here: Ray sends it by value, as workers cannot
                import the bench's modules): the bytes it allocates to load the Matcher (the
                arrays mapped from the object store are not its own)."""
                import tracemalloc

                tracemalloc.start()
                try:
                    loaded = ray.get(shared[0])  # held while measured
                    held, _ = tracemalloc.get_traced_memory()
                    del loaded
                finally:
                    tracemalloc.stop()
                return held

            ray.init(
                address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False
            )
            try:
                seconds[f"ray, {workers} CPUs"], on_ray = timed(
                    scan_on_ray(parts, source.reader, matcher, settings, workers, loads=loads)
                )
                started = time.perf_counter()
                shared = ray.put(matcher)
                put = time.perf_counter() - started
                held = ray.get(ray.remote(held_by_a_worker).remote([shared]))
            finally:
                ray.shutdown()
            if on_ray != reference:
                sys.exit("Ray's rows differ from the single process's")
            loaded = (sum(loads.values()), len(loads))
            return ScanMeasured(files, size, entries, workers, seconds, listing, loaded,
                                stored(matcher), held, put)  # fmt: skip
    return ScanMeasured(files, size, entries, workers, seconds, listing)


def stored(matcher: Matcher) -> int:
    """The bytes of ``matcher``'s copy as Ray stores it: pickled with protocol 5, in band and
    its out-of-band buffers."""
    buffers: list[pickle.PickleBuffer] = []
    in_band = pickle.dumps(matcher, 5, buffer_callback=buffers.append)
    return len(in_band) + sum(buffer.raw().nbytes for buffer in buffers)


def rows(measured: ScanMeasured) -> list[list[str]]:
    """``measured`` as strings for ``report.table`` under HEADER."""
    return [
        [name, f"{took:.2f}", f"{measured.files / took:.1f}", f"{measured.pool / took:.0%}"]
        for name, took in measured.seconds.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--part-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--entries", type=int, default=1000)
    options = parser.parse_args()
    measured = measure(options.files, options.size, options.part_size, options.workers,
                       options.entries)  # fmt: skip
    print(f"{measured.files} files of {measured.size} px, parts of {options.part_size}, "
          f"a list of {measured.entries:,} entries\n")  # fmt: skip
    table(HEADER, rows(measured))
    print(f"\nlisted {measured.files} files in {measured.listing:.3f} s: "
          f"{measured.files / measured.listing:,.0f} files/s")  # fmt: skip
    if measured.loads[1]:
        print(f"Ray: the Matcher loaded {measured.loads[0]} times by "
              f"{measured.loads[1]} worker processes")  # fmt: skip
    if measured.ray_overhead_ms is not None:
        print(f"Ray's overhead per file against the pool: {measured.ray_overhead_ms:.2f} ms")
        print(f"Ray's share of ideal scaling: {measured.scaling:.0%}")
        print(start(measured))
        print(memory(measured))


def start(measured: ScanMeasured) -> str:
    """Ray's one-off start, and its share of the pool without it."""
    return (
        f"Ray's one-off start, the Matcher put into the object store: {measured.put:.2f} s; "
        f"without it, {measured.efficiency_after_start:.0%} of the pool's files/s and "
        f"{measured.scaling_after_start:.0%} of ideal scaling"
    )


def memory(measured: ScanMeasured) -> str:
    """The Matcher's memory on a Ray node, per entry of the list."""
    return (
        f"the Matcher of {measured.entries:,} entries on a Ray node: "
        f"{measured.store_bytes / 1e6:,.1f} MB in the object store "
        f"({measured.store_bytes / measured.entries:,.0f} B/entry, one copy per node), "
        f"{measured.worker_bytes / 1e6:,.1f} MB of each worker's own "
        f"({measured.worker_bytes / measured.entries:,.0f} B/entry per worker process)"
    )


if __name__ == "__main__":
    main()
