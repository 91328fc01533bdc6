"""The command line starts without what its answer does not need: ``hashguard --version``,
``--help`` and a command group's help load no array, JIT, ORM, web or cryptography library, so
the start-up bench/cli.py measures cannot slowly grow back (each command imports its
dependencies when it runs; see hashguard/cli/common.py). No timing is asserted: what is
imported is."""

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "numba", "sqlalchemy", "alembic", "fastapi", "cryptography", "PIL")


def imported(*arguments: str) -> set[str]:
    """The top-level packages ``hashguard ARGUMENTS`` imports in a new process (exit status 0),
    as ``python -X importtime`` reports them."""
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hashguard", *arguments],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    # Lines read "import time: SELF | CUMULATIVE | [indent]package.module".
    lines = [line for line in ran.stderr.splitlines() if line.startswith("import time:")]
    assert lines, ran.stderr
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}


@pytest.mark.parametrize(
    "arguments",
    [
        ["--version"],
        ["--help"],
        # The groups whose options need nothing heavy (keys: its roles come from the store).
        ["lists", "--help"],
        ["audit", "--help"],
        ["services", "--help"],
        ["stats", "--help"],
        ["device", "--help"],
        ["victims", "--help"],
        ["hotline", "--help"],
        ["hotline", "assess", "--help"],
        ["exchanges", "--help"],
        ["exchanges", "add", "--help"],
    ],
    ids=" ".join,
)
def test_answering_loads_no_heavy_library(arguments: list[str]) -> None:
    loaded = imported(*arguments)
    assert {"hashguard", "typer"} <= loaded  # the report was read
    assert not loaded & set(HEAVY), f"hashguard {' '.join(arguments)} imports {loaded & set(HEAVY)}"


def test_reading_lists_loads_no_decoder_or_compiler(tmp_path: Path) -> None:
    """``lists show`` needs the store and the signals' string forms, not the decoders (Pillow,
    PyAV) or the numba kernels, which load when something is hashed."""
    loaded = imported("lists", "show", "--database-url", f"sqlite:///{tmp_path / 'h.db'}")
    assert "sqlalchemy" in loaded
    assert not loaded & {"numba", "llvmlite", "av", "PIL"}, loaded & {"numba", "av", "PIL"}
