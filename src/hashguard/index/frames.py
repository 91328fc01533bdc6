"""FrameIndex: videos as sets of 256-bit frame hashes (vPDQ), matched by the share of frames
each side finds in the other.

Every frame of every video is a row of one ``HammingIndex``, under a frame id of its own; the
index keeps which video each frame belongs to and how many frames each video has. A query video
asks for every stored frame within the radius of any of its frames, and then, per stored video
that answered: the share of the query's frames that found a frame in it, and the share of its
frames that some query frame found. One index query serves a batch of videos, however many are
stored: no video is compared frame by frame with every other.

Frames are given as the caller wants them counted (vPDQ: distinct, and of quality >= 50); a
video with no frames is held but can never match.
"""

from collections.abc import Sequence

import numpy as np

from hashguard.index.hamming import HammingIndex
from hashguard.index.segments import as_ids

_WIDTH = 32  # bytes per frame hash (256 bits)


class FrameIndex:
    """Videos by int64 id, each a set of 256-bit frame hashes; thread-safe for one writer and
    concurrent queries, as ``HammingIndex`` is."""

    def __init__(self) -> None:
        self._frames = HammingIndex(256)
        self._next_frame = 0
        self._owner = np.empty(0, np.int64)  # frame id -> video id (-1: removed)
        self._frame_ids: dict[int, np.ndarray] = {}  # video id -> its frame ids
        self._counts: dict[int, int] = {}  # video id -> its number of frames

    def __len__(self) -> int:
        """The number of videos held."""
        return len(self._counts)

    @property
    def frames(self) -> int:
        """The number of frames held."""
        return len(self._frames)

    def add(self, ids: object, frames: Sequence[np.ndarray]) -> None:
        """Add videos: ``frames[i]`` is the (k, 32) uint8 array of video ``ids[i]``'s frame
        hashes (k may be 0). Raises ValueError (adding nothing) on bad arrays or an id held."""
        video_ids = as_ids(ids)
        if len(frames) != len(video_ids):
            raise ValueError(f"{len(video_ids)} ids but {len(frames)} frame arrays")
        arrays = [_checked(array) for array in frames]
        held = [int(i) for i in video_ids if int(i) in self._counts]
        if held or len(set(video_ids.tolist())) != len(video_ids):
            raise ValueError(f"video ids already present or repeated: {held[:5] or 'repeated'}")
        sizes = np.array([len(a) for a in arrays], np.int64)
        total = int(sizes.sum())
        first = self._next_frame
        frame_ids = np.arange(first, first + total, dtype=np.int64)
        stacked = np.concatenate(arrays) if total else None
        # Owners and counts first: a concurrent query that sees the new frames finds them.
        self._owner = np.concatenate([self._owner, np.repeat(video_ids, sizes)])
        self._next_frame = first + total
        ends = np.cumsum(sizes)
        for video, size, end in zip(video_ids.tolist(), sizes.tolist(), ends.tolist(), strict=True):
            self._frame_ids[video] = frame_ids[end - size : end]
            self._counts[video] = size
        if stacked is not None:
            self._frames.add(frame_ids, stacked)

    def remove(self, ids: object) -> None:
        """Remove videos (ids not held are ignored)."""
        gone = [int(i) for i in as_ids(ids) if int(i) in self._counts]
        if not gone:
            return
        frame_ids = np.concatenate([self._frame_ids.pop(video) for video in gone])
        for video in gone:
            del self._counts[video]
        if len(frame_ids):
            self._frames.remove(frame_ids)
            self._owner[frame_ids] = -1

    def query(
        self, videos: Sequence[np.ndarray], radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every held video sharing a frame within ``radius`` bits with each query video.

        ``videos[i]`` is the (k, 32) uint8 array of query ``i``'s frames. Returns four aligned
        arrays, ordered by query then id: the query's row (int64), the video's id (int64), the
        percentage of the query's frames with a frame within ``radius`` in that video, and the
        percentage of that video's frames with a frame within ``radius`` in the query (float64).
        """
        arrays = [_checked(array) for array in videos]
        sizes = np.array([len(a) for a in arrays], np.int64)
        empty = np.empty(0, np.int64)
        if not sizes.sum() or not len(self._frames):
            return empty, empty, np.empty(0), np.empty(0)
        frame_rows, frame_ids, _distances = self._frames.query(np.concatenate(arrays), radius)
        owner = self._owner  # a snapshot: a concurrent add replaces the array, never shrinks it
        item = np.repeat(np.arange(len(arrays), dtype=np.int64), sizes)[frame_rows]
        video = owner[frame_ids]
        live = video >= 0  # a frame removed after the index query started
        item, video = item[live], video[live]
        frame_rows, frame_ids = frame_rows[live], frame_ids[live]
        pairs, inverse = np.unique(np.stack([item, video], axis=1), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        query_found = _distinct_per_pair(inverse, frame_rows, len(pairs))
        stored_found = _distinct_per_pair(inverse, frame_ids, len(pairs))
        counts = np.array([self._counts.get(int(v), 0) for v in pairs[:, 1]], np.float64)
        keep = counts > 0  # removed while this query ran
        pairs, query_found, stored_found = pairs[keep], query_found[keep], stored_found[keep]
        query_percent = 100.0 * query_found / sizes[pairs[:, 0]]
        stored_percent = 100.0 * stored_found / counts[keep]
        return pairs[:, 0], pairs[:, 1], query_percent, stored_percent


def _distinct_per_pair(pair: np.ndarray, values: np.ndarray, pairs: int) -> np.ndarray:
    """For each pair number, how many distinct ``values`` occur with it."""
    if not len(pair):
        return np.zeros(pairs, np.int64)
    distinct = np.unique(np.stack([pair, values], axis=1), axis=0)
    return np.bincount(distinct[:, 0], minlength=pairs)


def _checked(array: np.ndarray) -> np.ndarray:
    frames = np.asarray(array)
    if frames.dtype != np.uint8 or frames.ndim != 2 or frames.shape[1] != _WIDTH:
        raise ValueError(
            f"frames must be a uint8 array of shape (k, {_WIDTH}), got {frames.dtype} "
            f"{frames.shape}"
        )
    return frames
