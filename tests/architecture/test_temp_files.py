"""Processes leave the temporary directory as they found it. rbcl (libsodium, for the VOPRF)
writes a copy of its 2.8 MB shared library there when imported and never removes it; hashguard
imports it only when the VOPRF is used and removes the copy once loaded. Each process here runs
with TMPDIR pointing at an empty directory of its own, which must be empty again when it ends."""

import base64
import os
import subprocess
from pathlib import Path

import pytest

from hashguard.device import oprf

from support.server import HASHGUARD, running


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """An empty directory for a child process's TMPDIR."""
    directory = tmp_path / "tmpdir"
    directory.mkdir()
    return directory


def _hashguard(temp_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HASHGUARD, *arguments],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(temp_dir)},
    )  # fmt: skip


def test_the_version_leaves_nothing_behind(temp_dir: Path) -> None:
    result = _hashguard(temp_dir, "--version")
    assert result.returncode == 0, result.stderr
    assert list(temp_dir.iterdir()) == []


def test_a_command_using_the_voprf_leaves_nothing_behind(temp_dir: Path, tmp_path: Path) -> None:
    # keygen draws a random scalar and multiplies by the base point: libsodium is loaded.
    result = _hashguard(temp_dir, "device", "keygen", "--out", str(tmp_path / "oprf.key"))
    assert result.returncode == 0, result.stderr
    assert oprf.ServerKey.load(tmp_path / "oprf.key").public.hex() in result.stdout
    assert list(temp_dir.iterdir()) == []


def test_a_server_evaluating_the_voprf_leaves_nothing_behind(
    temp_dir: Path, tmp_path: Path
) -> None:
    oprf.ServerKey.generate().save(tmp_path / "oprf.key")
    database = f"sqlite:///{tmp_path / 'db'}"
    options = ("--oprf-key", str(tmp_path / "oprf.key"))
    with running(database, *options, environment={"TMPDIR": str(temp_dir)}) as server:
        elements = [base64.b64encode(e).decode() for e in oprf.blind([b"a"]).elements]
        answer = server.post("/v1/device/evaluate", "device", json={"elements": elements})
        assert answer.status_code == 200, answer.text
    assert server.process.returncode is not None
    assert list(temp_dir.iterdir()) == []
