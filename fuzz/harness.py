"""Runs one fuzz target under atheris (coverage-guided, libFuzzer's engine), or replays inputs
through it in plain Python.

A target (``fuzz/targets/<name>.py``) defines ``one(data, scratch)``: it hands ``data`` to one
parser of untrusted input (``scratch`` is a directory of its own for parsers that read files).
Refusing the input with one of hashguard's own error kinds (``hashguard.errors``) is what a
parser should do; any other exception is a crash, and so is running past libFuzzer's timeout or
memory limit.

    python fuzz/harness.py NAME [libFuzzer options] [corpus directories]

``fuzz/run.py`` runs every target this way; tests/fuzz/test_replay.py replays the corpus and
the regressions without atheris.
"""

import contextlib
import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

FUZZ = Path(__file__).resolve().parent
TARGETS = FUZZ / "targets"
CORPUS = FUZZ / "corpus"
REGRESSIONS = FUZZ / "regressions"
WORK = FUZZ / ".work"  # what runs learn, and the targets' scratch (not in the repository)


def names() -> list[str]:
    """Every target's name."""
    return sorted(path.stem for path in TARGETS.glob("[!_]*.py"))


def load(name: str) -> ModuleType:
    """The target module ``name`` (imported by path: fuzz/ is no package of hashguard's)."""
    path = TARGETS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"hashguard_fuzz_{name}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"no fuzz target {name!r}: expected {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked(one: Callable[[bytes, Path], object], scratch: Path) -> Callable[[bytes], None]:
    """``one`` on an input, a refusal of hashguard's own kinds taken as the right answer."""
    from hashguard.errors import HashguardError

    def run(data: bytes) -> None:
        with contextlib.suppress(HashguardError):
            one(data, scratch)

    return run


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in names():
        raise SystemExit(f"usage: harness.py NAME [libFuzzer options]; NAME: {', '.join(names())}")
    name = sys.argv.pop(1)
    import atheris

    # Coverage of hashguard's own code, and of the pure-Python libraries its parsers use.
    with atheris.instrument_imports(include=["hashguard", "defusedxml", "xarf"]):
        target = load(name)
    # libFuzzer ends the process from C, so nothing would remove a temporary directory: the
    # target's scratch is a fixed one in its work directory, emptied at each start.
    scratch = WORK / name / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    atheris.Setup(sys.argv, checked(target.one, scratch))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
