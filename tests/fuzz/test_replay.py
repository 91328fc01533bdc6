"""Every fuzz target's corpus and every crash the fuzzer ever found (fuzz/regressions), replayed
through its parser in plain Python: each input is read or refused with one of hashguard's own
errors, never a crash, so a crash once fixed stays fixed. ``make fuzz-parsers`` runs the same
targets under atheris."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from support.paths import FUZZ


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hashguard_fuzz_harness", FUZZ / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HARNESS = _harness()


def _inputs() -> list[object]:
    found = []
    for name in HARNESS.names():
        for kind in ("corpus", "regressions"):
            for path in sorted((FUZZ / kind / name).glob("*")):
                found.append(pytest.param(name, path, id=f"{name}/{kind}/{path.name}"))
    return found


def test_every_target_has_seeds() -> None:
    assert HARNESS.names(), "no fuzz targets found"
    for name in HARNESS.names():
        assert any((FUZZ / "corpus" / name).iterdir()), f"fuzz/corpus/{name} holds no seeds"


@pytest.mark.parametrize(("name", "path"), _inputs())
def test_input_is_read_or_refused(name: str, path: Path, tmp_path: Path) -> None:
    # Any exception but a refusal of hashguard's own kinds fails the test with its traceback.
    HARNESS.checked(HARNESS.load(name).one, tmp_path)(path.read_bytes())
