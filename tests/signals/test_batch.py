"""Hashing many files over processes: order, failures that stay per file, crashed decoders."""

import os
from pathlib import Path

import pytest

from hashguard.signals import batch
from hashguard.signals.batch import FileFailure, HashSettings, expand, hash_paths

from support.media import jpeg

real_hash_file = batch.hash_file


def crashing_hash_file(path: str, settings: HashSettings) -> batch.FileResult:
    if path.endswith("crash.jpg"):
        os._exit(3)  # what a decoder fault does to its process
    return real_hash_file(path, settings)


def _tree(root: Path, names: list[str]) -> list[str]:
    for seed, name in enumerate(names):
        (root / name).write_bytes(jpeg(seed, 96, 64))
    return [str(root / name) for name in names]


def test_results_come_in_input_order_with_any_number_of_jobs(tmp_path: Path) -> None:
    files = _tree(tmp_path, [f"{i:02d}.jpg" for i in range(12)])
    settings = HashSettings(("pdq", "md5"))
    here = list(hash_paths(files, settings, jobs=0))
    one = list(hash_paths(files, settings, jobs=1))
    two = list(hash_paths(files, settings, jobs=2))
    assert here == one == two
    assert [r.path for r in one if not isinstance(r, FileFailure)] == files
    assert list(expand([str(tmp_path)])) == files
    os.mkfifo(tmp_path / "pipe")  # reading it would block: a directory walk passes it over
    assert list(expand([str(tmp_path)])) == files


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_file_that_crashes_its_worker_fails_alone(tmp_path: Path, monkeypatch, jobs: int) -> None:
    names = [f"{i:02d}.jpg" for i in range(10)]
    names[4] = "04-crash.jpg"
    files = _tree(tmp_path, names)
    monkeypatch.setattr(batch, "hash_file", crashing_hash_file)
    results = list(hash_paths(files, HashSettings(("md5",)), jobs=jobs))
    assert len(results) == len(files)
    failures = [r for r in results if isinstance(r, FileFailure)]
    assert failures == [FileFailure(files[4], "the decoder process crashed on this file")]
    hashed = [r.path for r in results if not isinstance(r, FileFailure)]
    assert hashed == files[:4] + files[5:]
