"""Binary fuse filters: every key passes, other keys pass at the false-hit rate of the width,
and the file round-trips and refuses corruption."""

from pathlib import Path

import numpy as np
import pytest

from hashguard.index.fuse import FilterError, FuseFilter


def _keys(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**64 - 1, n, dtype=np.uint64)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 5_000, 200_000])
def test_every_key_passes_at_any_size(n: int) -> None:
    keys = _keys(n)
    built = FuseFilter.build(keys, 24)
    assert built.size == n
    assert built.contains_many(keys).all()
    assert all(int(k) in built for k in keys[:2000])  # the single-key path agrees


def test_false_hits_follow_the_width() -> None:
    keys = _keys(50_000)
    others = _keys(2_000_000, seed=2)
    # the filter's seed is random: bounds about 6 standard deviations wide (2M checks)
    for width, low, high in ((8, 0.0035, 0.0043), (12, 0.00017, 0.00032)):
        built = FuseFilter.build(keys, width)
        rate = built.contains_many(others).mean()
        assert low < rate < high, (width, rate)  # 2^-8 = 0.0039, 2^-12 = 0.00024
        single = np.array([int(k) in built for k in others[:100_000]])
        assert (single == built.contains_many(others[:100_000])).all()
    wide = FuseFilter.build(keys, 40)
    assert not wide.contains_many(others).any()  # 2^-40 * 2M: a hit would be a bug


def test_size_is_about_width_bits_per_key() -> None:
    keys = _keys(300_000)
    built = FuseFilter.build(keys, 31)
    bits_per_key = built.nbytes * 8 / len(keys)
    assert 31 * 1.075 <= bits_per_key < 31 * 1.15


def test_duplicates_and_empty_sets() -> None:
    keys = _keys(1000)
    built = FuseFilter.build(np.concatenate([keys, keys[:500]]), 16)
    assert built.size == 1000 and built.contains_many(keys).all()
    empty = FuseFilter.build(np.zeros(0, dtype=np.uint64), 16)
    assert 5 not in empty and not empty.contains_many(keys).any()


def test_width_out_of_range_is_refused() -> None:
    with pytest.raises(FilterError, match="expected 8 to 56 bits"):
        FuseFilter.build(_keys(10), 57)
    with pytest.raises(FilterError, match="expected 8 to 56 bits"):
        FuseFilter.build(_keys(10), 4)


def test_file_round_trip_and_corruption(tmp_path: Path) -> None:
    keys = _keys(10_000)
    built = FuseFilter.build(keys, 48)
    path = tmp_path / "f.fuse"
    built.save(path)
    loaded = FuseFilter.load(path)
    assert loaded.contains_many(keys).all() and loaded.seed == built.seed
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(FilterError, match="checksum mismatch"):
        FuseFilter.load(path)
    (tmp_path / "other").write_bytes(b"not a filter at all, just some bytes here" * 4)
    with pytest.raises(FilterError, match="not a hashguard index file"):
        FuseFilter.load(tmp_path / "other")


def test_inconsistent_dimensions_are_refused(tmp_path: Path) -> None:
    from hashguard.index import fileformat

    built = FuseFilter.build(_keys(1000), 16)
    meta = {"arity": 4, "size": 1000, "width": 16, "seed": str(built.seed),
            "segment_length": built.segment_length, "segment_count_length": 0}  # fmt: skip
    for change in ({}, {"segment_length": 3}, {"seed": str(1 << 64)}):
        fileformat.write(
            tmp_path / "f", "binary-fuse", {**meta, **change}, {"packed": built.packed}
        )
        with pytest.raises(FilterError, match="inconsistent filter dimensions"):
            FuseFilter.load(tmp_path / "f")
    good = {**meta, "segment_count_length": built.segment_count_length}
    fileformat.write(tmp_path / "f", "binary-fuse", good, {"packed": built.packed[:-9]})
    with pytest.raises(FilterError, match="not what its size needs"):
        FuseFilter.load(tmp_path / "f")
