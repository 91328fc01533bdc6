"""Scan throughput by engine: what Ray costs against the process pool.

    .venv/bin/python bench/scale_scan.py [--files N] [--part-size N] [--workers N]

Generates N benign scenes (JPEG, 512 px by default; a list of 1,000 PDQ hashes holds some of
them) in a temporary directory, then scans them with ``scan_part`` as ``hashguard scan`` does:

  (a) in this process (``--workers 0``);
  (b) the local engine, a process pool of ``--workers`` (default 2);
  (c) Ray, a local instance of ``--workers`` CPUs (its start-up not counted).

It prints files/s per engine with its ratio to the process pool (issue 22's bar: Ray >= 85 %),
and Ray's overhead per file: (Ray's seconds - the pool's) / files. Every engine's rows must equal
the single-process run's, or the script fails.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

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


def corpus(directory: Path, files: int, size: int) -> Matcher:
    """``files`` scenes in ``directory``/media, and a Matcher of a list holding every tenth."""
    media = directory / "media"
    media.mkdir()
    listed = []
    for number in range(files):
        data = encode(scene(number, size, size), "JPEG")
        (media / f"{number:07d}.jpg").write_bytes(data)
        if number % 10 == 0 and len(listed) < 1000:
            listed.append(PdqSignal().hash(data).hex)
    engine = open_engine(f"sqlite:///{directory / 'lists.db'}")
    store = ListStore(engine)
    store.create("bench", "Bench", Category.TEST)
    store.apply("bench", [Submission("pdq", value) for value in listed])
    return Matcher(store, ["bench"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--part-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        matcher = corpus(Path(scratch), options.files, options.size)
        source = open_source(str(Path(scratch) / "media"))
        files = source.files()
        parts = [(n, files[s : s + options.part_size])
                 for n, s in enumerate(range(0, len(files), options.part_size))]  # fmt: skip
        settings = ScanSettings(matcher.variant_families(), matcher.versions())

        def timed(run: object) -> tuple[float, list[object]]:
            start = time.perf_counter()
            rows = sorted(run, key=lambda p: p[0])  # type: ignore[call-overload]
            return time.perf_counter() - start, [r.to_pylist() for _, r in rows]

        seconds: dict[str, float] = {}
        seconds["single process"], reference = timed(
            scan_locally(parts, source.reader, matcher, settings, 0)
        )
        seconds[f"local, {options.workers} workers"], pooled = timed(
            scan_locally(parts, source.reader, matcher, settings, options.workers)
        )
        if pooled != reference:
            sys.exit("the process pool's rows differ from the single process's")
        try:
            import ray

            from hashguard.cluster.scan import scan_on_ray
        except ImportError:
            print("Ray not installed: pip install 'hashguard[ray]'")
        else:
            ray.init(num_cpus=options.workers, include_dashboard=False, log_to_driver=False)
            try:
                seconds[f"ray, {options.workers} CPUs"], on_ray = timed(
                    scan_on_ray(parts, source.reader, matcher, settings, options.workers)
                )
            finally:
                ray.shutdown()
            if on_ray != reference:
                sys.exit("Ray's rows differ from the single process's")
    pool = seconds[f"local, {options.workers} workers"]
    print(f"{len(files)} files of {options.size} px, parts of {options.part_size}\n")
    print(f"{'engine':<22} {'seconds':>8} {'files/s':>8} {'vs pool':>8}")
    for name, took in seconds.items():
        print(f"{name:<22} {took:>8.2f} {len(files) / took:>8.1f} {pool / took:>7.0%}")
    ray_seconds = next((t for n, t in seconds.items() if n.startswith("ray")), None)
    if ray_seconds is not None:
        overhead = (ray_seconds - pool) / len(files) * 1000
        print(f"\nRay's overhead per file against the pool: {overhead:.2f} ms")


if __name__ == "__main__":
    main()
