"""Fixtures for the command's tests: files hashguard cannot read."""

import os
from pathlib import Path

import pytest

from support.media import jpeg, png_declaring


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of files that cannot be hashed (empty, truncated, corrupt, not media, a bomb)
    beside one good JPEG."""
    root = tmp_path_factory.mktemp("bad")
    data = jpeg(4)
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "corrupt.jpg").write_bytes(data[:4] + os.urandom(3000))
    (root / "notes.txt").write_text("not an image\n" * 20)
    (root / "huge.png").write_bytes(png_declaring(100_000, 100_000))
    (root / "good.jpg").write_bytes(data)
    return root
