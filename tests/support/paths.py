"""Where things are in this repository, for tests that read its files or import its benchmarks."""

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "src" / "hashguard"
BENCH = REPOSITORY / "bench"
FUZZ = REPOSITORY / "fuzz"
