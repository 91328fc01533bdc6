"""FrameIndex: per stored video, the shares of frames each side finds in the other, as the
pairwise vPDQ comparison computes them, for a batch of query videos at once."""

import numpy as np
import pytest

from hashguard.index import FrameIndex
from hashguard.signals.vpdq import _matched_percentages

RNG = np.random.default_rng(7)


def frames(count: int) -> np.ndarray:
    return RNG.integers(0, 256, (count, 32), dtype=np.uint8)


def flipped(array: np.ndarray, bits: int) -> np.ndarray:
    """``array`` with ``bits`` random bits flipped in each frame."""
    out = np.unpackbits(array, axis=1)
    for row in out:
        row[RNG.choice(256, bits, replace=False)] ^= 1
    return np.packbits(out, axis=1)


def brute(query: np.ndarray, stored: np.ndarray, radius: int) -> tuple[float, float]:
    as_words = lambda a: a.view(np.uint64).reshape(len(a), 4)  # noqa: E731
    return _matched_percentages(as_words(query), as_words(stored), radius)


def test_shares_equal_the_pairwise_comparison_for_every_stored_video() -> None:
    stored = [frames(int(n)) for n in RNG.integers(1, 40, 60)]
    index = FrameIndex()
    index.add(list(range(100, 160)), stored)
    # Queries: re-encodings (a few bits off) of whole videos, clips, videos with frames of
    # their own, and unrelated videos.
    queries = [
        flipped(stored[3], 8),
        flipped(stored[7][: max(1, len(stored[7]) // 2)], 20),
        np.concatenate([flipped(stored[11], 30), frames(10)]),
        np.concatenate([stored[20], stored[21]]),
        frames(25),
    ]
    rows, ids, query_percent, stored_percent = index.query(queries, 31)
    found = {
        (int(r), int(i)): (q, s)
        for r, i, q, s in zip(rows, ids, query_percent, stored_percent, strict=True)
    }
    for row, query in enumerate(queries):
        for number, video in enumerate(stored):
            expected = brute(query, video, 31)
            got = found.get((row, 100 + number), (0.0, 0.0))
            assert got == pytest.approx(expected), (row, number)
    assert (0, 103) in found and found[(0, 103)] == (100.0, 100.0)
    assert not any(row == 4 for row, _ in found)
    assert list(rows) == sorted(rows)


def test_removed_videos_stop_matching_and_others_stay() -> None:
    a, b = frames(5), frames(6)
    index = FrameIndex()
    index.add([1, 2], [a, b])
    index.remove([1, 99])
    rows, ids, _, _ = index.query([a, b], 0)
    assert (rows.tolist(), ids.tolist()) == ([1], [2])
    assert len(index) == 1 and index.frames == 6
    index.add([1], [a])  # the id can come back
    assert index.query([a], 0)[1].tolist() == [1]


def test_a_held_id_is_refused_and_nothing_is_added() -> None:
    index = FrameIndex()
    index.add([1], [frames(3)])
    with pytest.raises(ValueError, match="already present"):
        index.add([2, 1], [frames(3), frames(3)])
    assert len(index) == 1 and index.frames == 3
    with pytest.raises(ValueError, match=r"shape \(k, 32\)"):
        index.add([3], [np.zeros((2, 31), np.uint8)])


def test_videos_without_frames_are_held_and_never_match() -> None:
    index = FrameIndex()
    index.add([1, 2], [np.empty((0, 32), np.uint8), frames(2)])
    assert len(index) == 2
    assert index.query([np.empty((0, 32), np.uint8)], 31)[0].size == 0
    assert FrameIndex().query([frames(2)], 31)[0].size == 0
