"""The exact index (digests): every id of a key found, removals forgotten, saved and loaded;
keys of the wrong size refused."""

import numpy as np
import pytest

from hashguard.index import ExactIndex


def test_exact_index_finds_every_id_of_a_key_and_forgets_removed_ones(tmp_path) -> None:
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 256, (500, 20), dtype=np.uint8)
    keys[250:] = keys[:250]  # every key held by two ids
    index = ExactIndex(20)
    index.add(np.arange(500), keys)
    rows, ids, distances = index.query([keys[3].tobytes(), bytes(20)])
    assert rows.tolist() == [0, 0] and ids.tolist() == [3, 253] and not distances.any()
    index.remove([3])
    assert index.query(keys[3:4])[1].tolist() == [253]
    index.add([3], [bytes(20)])
    assert index.query([bytes(20)])[1].tolist() == [3]
    index.save(tmp_path / "sha1.hgi")
    loaded = ExactIndex.load(tmp_path / "sha1.hgi")
    assert len(loaded) == 500
    for row in range(0, 250, 17):
        assert set(loaded.query(keys[row : row + 1])[1].tolist()) <= {row, row + 250}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([b"short"], r"keys\[0\] must be 16 bytes, got 5 bytes"),
        ([bytes(16), "text"], r"keys\[1\] must be 16 bytes, got str"),
        (np.zeros((1, 20), np.uint8), r"shape \(n, 16\)"),
    ],
)
def test_exact_index_refuses_keys_of_the_wrong_size(keys, message) -> None:
    index = ExactIndex(16)
    with pytest.raises(ValueError, match=message):
        index.add(list(range(len(keys))), keys)
    assert len(index) == 0
