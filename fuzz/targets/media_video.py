"""A video upload's container as the service probes it before any frame is decoded: sniffed as
a video, opened with the demuxer sniffing names, its first video stream's declared size, rate,
duration and frame count checked against the limits."""

from pathlib import Path

from hashguard.media.limits import Limits
from hashguard.media.video import probe

_LIMITS = Limits(max_video_seconds=60)


def one(data: bytes, scratch: Path) -> None:
    probe(data, _LIMITS)
