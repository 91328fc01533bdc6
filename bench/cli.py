"""Command-line start-up: how long a user waits for ``hashguard`` to answer.

    make bench-cli      # or: .venv/bin/python bench/cli.py [--runs N]

Each command runs N times (default 15) in a fresh process, as a user runs it (the console script
beside this Python, else ``python -m hashguard``), after one unmeasured warm-up run that fills the
file cache:

  (a) ``hashguard --version``;
  (b) ``hashguard --help``;
  (c) ``hashguard lists show bench`` on a small SQLite database (one list of 1,000 PDQ hashes)
      the script creates in a temporary directory with ``lists create`` and ``lists import``.

Targets (issue 16): (a) and (b) <= 0.3 s, (c) <= 1 s on a warm machine (median).
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"--version": 0.3, "--help": 0.3, "lists show": 1.0}


def hashguard_command() -> list[str]:
    """The console script installed beside this Python, else the package run as a module."""
    script = Path(sys.executable).with_name("hashguard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hashguard"]


def run(command: list[str], cwd: Path) -> float:
    """Seconds ``command`` took, in a new process; fails if it did not exit 0."""
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def small_database(hashguard: list[str], directory: Path) -> None:
    """``directory/hashguard.db`` holding the list ``bench`` of 1,000 random PDQ hashes."""
    values = random.Random(1).randbytes(32 * 1000)
    hashes = directory / "bench.txt"
    hashes.write_text("".join(values[n : n + 32].hex() + "\n" for n in range(0, len(values), 32)))
    run(
        [*hashguard, "lists", "create", "bench", "--owner", "bench", "--category", "test"],
        directory,
    )
    run([*hashguard, "lists", "import", "bench", str(hashes), "-f", "text", "-s", "pdq"], directory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Runs per command (default 15).")
    runs = parser.parse_args().runs
    hashguard = hashguard_command()
    os.environ.pop("HASHGUARD_DATABASE_URL", None)  # the database in the working directory
    print(f"{' '.join(hashguard)}: {runs} fresh processes per command", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="hashguard-bench-cli-") as scratch:
        directory = Path(scratch)
        small_database(hashguard, directory)
        for label, arguments in (
            ("--version", ["--version"]),
            ("--help", ["--help"]),
            ("lists show", ["lists", "show", "bench"]),
        ):
            command = [*hashguard, *arguments]
            run(command, directory)  # warm-up: the file cache, compiled bytecode
            seconds = [run(command, directory) for _ in range(runs)]
            median, best = statistics.median(seconds), min(seconds)
            target = TARGETS[label]
            verdict = "met" if median <= target else "MISSED"
            rows.append([f"hashguard {' '.join(arguments)}", f"{median:.3f}", f"{best:.3f}",
                         f"<= {target:g} s", verdict])  # fmt: skip
            print(f"{label}: median {median:.3f} s, best {best:.3f} s", flush=True)
    print()
    print("| command | median (s) | best (s) | target | |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
