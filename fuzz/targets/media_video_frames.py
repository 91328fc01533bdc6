"""A video upload decoded as the service hashes it: its container probed, then every frame of
its first video stream decoded and read as luma (``media.video.iter_frames``, every frame),
within limits small enough that a run stays quick (a million pixels a frame, 60 seconds, 600
frames)."""

from pathlib import Path

from hashguard.media.limits import Limits
from hashguard.media.video import iter_frames

_LIMITS = Limits(max_pixels=1_000_000, max_video_seconds=60, max_video_frames=600)


def one(data: bytes, scratch: Path) -> None:
    for _frame in iter_frames(data, _LIMITS, per_second=0):
        pass
