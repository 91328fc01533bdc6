"""The structure checks run before a decoder sees an image (JPEG scans, segments and padding;
GIF and TIFF frames; each walk with its early stop), on what sniffing says the upload is, as
an upload goes through them."""

from pathlib import Path

from hashguard.media.formats import SNIFF_BYTES, MediaKind, sniff
from hashguard.media.image import _check_structure
from hashguard.media.limits import Limits

_LIMITS = Limits(max_frames=100, max_jpeg_scans=50)


def one(data: bytes, scratch: Path) -> None:
    found = sniff(data[:SNIFF_BYTES])
    if found.kind is MediaKind.IMAGE:
        _check_structure(data, found, _LIMITS)
