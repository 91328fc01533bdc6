"""An image upload end to end up to pixels: sniffing, structure checks, the header and its
limits, then the decode to luma (limits kept small so the fuzzer stays fast)."""

from pathlib import Path

from hashguard.media.image import decode_luma, image_size
from hashguard.media.limits import Limits

_LIMITS = Limits(max_image_bytes=1 << 20, max_pixels=1 << 20, max_frames=64, max_jpeg_scans=50)


def one(data: bytes, scratch: Path) -> None:
    image_size(data, _LIMITS)
    decode_luma(data, _LIMITS, min_side=64)
