"""The stream bench/hotline.py measures the analyst work saved on: its repeats are what it says."""

import io
import sys

from hashguard.signals import registry
from hashguard.signals.batch import hash_stream
from hashguard.signals.pdq import PdqHash

from support.paths import BENCH

sys.path.insert(0, str(BENCH))
from hotline import REPEATS, stream


def pdq(data: bytes) -> PdqHash:
    found = hash_stream(io.BytesIO(data), len(data), [registry.get("pdq")]).values[0][1]
    assert isinstance(found, PdqHash)
    return found


def test_repeats_are_copies_or_edits_of_an_earlier_image(tmp_path) -> None:
    items = stream(60, tmp_path, seed=5)
    first: dict[int, bytes] = {}
    for item in items:
        data = (tmp_path / f"{item.name}.jpg").read_bytes()
        if item.kind == "new":
            assert item.original not in first
            first[item.original] = data
            continue
        assert item.kind in REPEATS and item.original in first  # never before its first showing
        original = first[item.original]
        if item.kind == "exact":
            assert data == original
            continue
        assert data != original
        if item.kind != "cropped":  # crops are the edit PDQ mostly does not survive
            assert pdq(data).distance(pdq(original)) <= 31
    assert 0.2 < len(first) / len(items) < 0.55  # about 37 % new
    assert {item.kind for item in items} >= {"new", "exact"}
