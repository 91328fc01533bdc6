"""Counts from file structure (JPEG scans, GIF and TIFF frames), used to refuse files early."""

import io

import pytest
from PIL import Image

from hashguard.media import LimitExceeded, Limits
from hashguard.media.image import decode_luma
from hashguard.media.structure import gif_frames, jpeg_counts, tiff_frames
from hashguard.media.synthetic import encode, scene


def _animation(fmt: str, count: int, **options: object) -> bytes:
    frames = [scene(seed, 48, 32) for seed in range(count)]
    if fmt == "GIF":
        frames = [f.convert("P") for f in frames]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], **options)
    return buffer.getvalue()


@pytest.mark.parametrize("count", [1, 2, 7])
def test_frame_counts_agree_with_pillow(count: int) -> None:
    for fmt, counter in (("GIF", gif_frames), ("TIFF", tiff_frames)):
        data = _animation(fmt, count)
        assert counter(data, 100) == count == Image.open(io.BytesIO(data)).n_frames
    big_tiff = _animation("TIFF", count, big_tiff=True)
    assert tiff_frames(big_tiff, 100) == count
    assert decode_luma(big_tiff).width == 48  # end to end: sniffed, counted, decoded


def test_counting_stops_just_past_the_limit() -> None:
    assert gif_frames(_animation("GIF", 30), 10) == 11
    assert tiff_frames(_animation("TIFF", 30), 10) == 11


def jpeg_scans(data: bytes, stop: int) -> int:
    return jpeg_counts(data, stop, 10_000).scans


def test_jpeg_scans() -> None:
    image = scene(1, 320, 240)
    assert jpeg_scans(encode(image, "JPEG"), 100) == 1
    progressive = encode(image, "JPEG", progressive=True)
    scans = jpeg_scans(progressive, 100)
    assert 2 <= scans <= 20
    with pytest.raises(LimitExceeded, match="JPEG scan count exceeds the limit of 1"):
        decode_luma(progressive, Limits(max_jpeg_scans=1))
    assert decode_luma(progressive, Limits(max_jpeg_scans=scans)).width == 320


def test_malformed_structure_ends_the_count_quietly() -> None:
    data = _animation("GIF", 3)
    for cut in (5, 13, 40, len(data) // 2):
        assert gif_frames(data[:cut], 100) <= 3
    tiff = _animation("TIFF", 3)
    for cut in (3, 8, 20, len(tiff) // 2):
        assert tiff_frames(tiff[:cut], 100) <= 3
    looped = bytearray(b"II*\x00\x08\x00\x00\x00" + b"\x00\x00" + b"\x08\x00\x00\x00")
    assert tiff_frames(bytes(looped), 100) == 1  # an IFD pointing at itself counts once
    assert jpeg_scans(b"\xff\xd8\xff\xda", 100) == 0


def _scan_flood(progressive: bytes, copies: int, stray: bytes = b"") -> bytes:
    """The progressive JPEG with one of its refinement scans repeated ``copies`` times, and
    ``stray`` bytes between the segments before it (libjpeg skips those)."""
    last_sos = progressive.rindex(b"\xff\xda")
    end = progressive.rindex(b"\xff\xd9")
    scan = progressive[last_sos:end]
    head = progressive[:last_sos]
    first_sos = head.index(b"\xff\xda")
    head = head[:first_sos] + stray + head[first_sos:]
    return head + scan * copies + progressive[end:]


def test_a_scan_flood_is_refused_even_behind_stray_bytes() -> None:
    progressive = encode(scene(2, 256, 256), "JPEG", progressive=True)
    for stray in (b"", b"\x00", b"\x00\x13\x37", b"\xff" * 5000, b"\x00" * 5000):
        flood = _scan_flood(progressive, 1000, stray)
        assert jpeg_scans(flood, 500) == 501
        with pytest.raises(LimitExceeded, match="JPEG scan count exceeds the limit of 500"):
            decode_luma(flood)
    assert decode_luma(_scan_flood(progressive, 1, b"\x00")).width == 256


def test_a_flood_of_empty_segments_is_refused() -> None:
    from hashguard.media import CorruptMedia

    data = encode(scene(3, 64, 64), "JPEG")
    flood = data[:2] + b"\xff\xfe\x00\x02" * 20_000 + data[2:]
    assert jpeg_counts(flood, 500, 10_000).segments == 10_001
    with pytest.raises(CorruptMedia, match="more than 10,000 JPEG segments"):
        decode_luma(flood)
    for padding in (b"\xff" * 100_000, b"\x00" * 100_000):
        at = data.index(b"\xff\xdb")  # before the quantisation tables
        padded = data[:at] + padding + data[at:]
        assert jpeg_counts(padded, 500, 10_000).padding == 100_000
        with pytest.raises(CorruptMedia, match="100,000 bytes of padding"):
            decode_luma(padded)
    assert jpeg_counts(data, 500, 10_000).padding == 0
