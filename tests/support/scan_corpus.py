"""A generated corpus for ``hashguard scan``: small benign scenes in nested folders; planted
edits (JPEG re-encoded, halved, mirrored) of scenes whose PDQ hashes a list holds; files that
cannot be hashed (truncated, empty, not an image); and the list in a SQLite database."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps

from hashguard.lists.model import Category, ListPolicy
from hashguard.lists.records import Submission
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqSignal
from hashguard.store.database import open_engine
from hashguard.store.lists import ListStore

LIST = "known"
EDITS = ("reencoded", "halved", "mirrored")
# Columns that change from run to run (none yet besides these): left out of comparisons.
TIMING: frozenset[str] = frozenset()


@dataclass
class Corpus:
    root: Path
    database_url: str
    planted: dict[str, str] = field(default_factory=dict)  # key -> the edit
    broken: dict[str, str] = field(default_factory=dict)  # key -> the error kind expected

    @property
    def count(self) -> int:
        return sum(1 for _ in self.root.rglob("*") if _.is_file())


def _edit(original: Image.Image, edit: str) -> bytes:
    if edit == "reencoded":
        return encode(original, "JPEG", quality=50)
    if edit == "halved":
        return encode(original.resize((original.width // 2, original.height // 2)), "PNG")
    return encode(ImageOps.mirror(original), "JPEG")


def _field(seed: int, size: int) -> Image.Image:
    """A smooth random colour field: cheap to make (a scene takes 4 times as long)."""
    cells = np.random.default_rng(seed).integers(0, 256, size=(5, 5, 3), dtype=np.uint8)
    return Image.fromarray(cells, "RGB").resize((size, size), Image.Resampling.BICUBIC)


def make_corpus(directory: Path, files: int, planted: int = 30, size: int = 128) -> Corpus:
    """``files`` files under ``directory``/media (``planted`` of them edits of listed scenes,
    a few broken ones among them), and a database holding the list ``LIST`` (PDQ, its
    dihedral variants allowed: the mirrored copies match through them; at PDQ distance 40,
    as a mirror image's variant that undoes the mirror hashes 18-34 bits from the original's
    hash here)."""
    root = directory / "media"
    corpus = Corpus(root, f"sqlite:///{directory / 'lists.db'}")
    listed = []
    signal = PdqSignal()
    broken_every = max(1, files // 12)
    for number in range(files):
        folder = root / f"{number % 7:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        if number < planted:
            original = scene(100_000 + number, 2 * size, 2 * size, grain=8.0)  # not flat
            listed.append(signal.hash(encode(original, "BMP")).hex)  # lossless, and fast
            edit = EDITS[number % len(EDITS)]
            name = f"planted-{number:05d}-{edit}.img"
            (folder / name).write_bytes(_edit(original, edit))
            corpus.planted[f"{folder.name}/{name}"] = edit
            continue
        data = encode(_field(number, size), "JPEG")
        name = f"file-{number:05d}.jpg"
        kind = ("corrupt", "empty", "not media")[number // broken_every % 3]
        if number % broken_every == 0:
            data = {"corrupt": data[: len(data) // 2], "empty": b"", "not media": os.urandom(999)}[
                kind
            ]
            corpus.broken[f"{folder.name}/{name}"] = kind
        (folder / name).write_bytes(data)
    engine = open_engine(corpus.database_url)
    store = ListStore(engine)
    policy = ListPolicy({"pdq": 40}, variants=frozenset({"dihedral"}))
    store.create(LIST, "Test Org", Category.TEST, policy=policy)
    store.apply(LIST, [Submission("pdq", value) for value in listed])
    engine.dispose()
    return corpus


def comparable(rows: pa.Table, keyed: bool = True) -> list[dict[str, Any]]:
    """The rows as plain values, in key order; without ``keyed``, without the columns that
    name where a file is (key, ETag): what two copies of the same files must share."""
    dropped = set(TIMING) | (set() if keyed else {"key", "etag"})
    order = ("key", "sha256") if keyed else ("sha256", "key")
    found = sorted(rows.to_pylist(), key=lambda row: tuple(row[c] or "" for c in order))
    return [{k: v for k, v in row.items() if k not in dropped} for row in found]
