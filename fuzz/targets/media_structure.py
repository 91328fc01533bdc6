"""The structure checks run before a decoder sees an image: JPEG scans and segments, GIF and
TIFF frames, each walk with its early stop."""

from pathlib import Path

from hashguard.media.structure import gif_frames, jpeg_counts, tiff_frames


def one(data: bytes, scratch: Path) -> None:
    counts = jpeg_counts(data, max_scans=50, max_segments=1000)
    if min(counts) < 0:
        raise AssertionError(f"negative JPEG counts {counts}")
    for walk in (gif_frames, tiff_frames):
        if walk(data, 100) < 0:
            raise AssertionError(f"{walk.__name__}: a negative count")
