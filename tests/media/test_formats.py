"""Format sniffing from content, and robustness of decoding against arbitrary bytes."""

import contextlib
import warnings

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hashguard.media import EmptyMedia, MediaError, MediaKind, UnsupportedMedia, sniff
from hashguard.media.formats import SNIFF_BYTES, file_kind
from hashguard.media.image import decode_luma
from hashguard.signals.vpdq import VpdqSignal

from support.media import jpeg, make_video, png


@pytest.mark.parametrize(
    ("head", "name", "kind"),
    [
        (b"\xff\xd8\xff\xe0" + bytes(20), "jpeg", MediaKind.IMAGE),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "png", MediaKind.IMAGE),
        (b"GIF89a" + bytes(20), "gif", MediaKind.IMAGE),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20), "webp", MediaKind.IMAGE),
        (b"BM" + bytes(40), "bmp", MediaKind.IMAGE),
        (b"II*\x00" + bytes(20), "tiff", MediaKind.IMAGE),
        (b"MM\x00*" + bytes(20), "tiff", MediaKind.IMAGE),
        (b"II+\x00\x08\x00\x00\x00" + bytes(20), "tiff", MediaKind.IMAGE),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heif", MediaKind.IMAGE),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "avif", MediaKind.IMAGE),
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "avif", MediaKind.IMAGE),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "heif", MediaKind.IMAGE),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "mp4", MediaKind.VIDEO),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "mp4", MediaKind.VIDEO),
        (b"\x1a\x45\xdf\xa3" + bytes(20), "matroska", MediaKind.VIDEO),
        (b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(20), "avi", MediaKind.VIDEO),
        ((b"\x47" + bytes(187)) * 3, "mpegts", MediaKind.VIDEO),
        (b"\x00\x00\x01\xba" + bytes(20), "mpeg", MediaKind.VIDEO),
        (b"FLV\x01" + bytes(20), "flv", MediaKind.VIDEO),
        (b"OggS" + bytes(20), "ogg", MediaKind.VIDEO),
    ],
)
def test_formats_are_recognised_by_content(head: bytes, name: str, kind: MediaKind) -> None:
    found = sniff(head)
    assert (found.name, found.kind) == (name, kind)


def test_unrecognised_content() -> None:
    with pytest.raises(EmptyMedia):
        sniff(b"")
    for head in (b"%PDF-1.7", b"PK\x03\x04", b"GET / HTTP/1.1", b"\x47 a text line", b"BM"):
        with pytest.raises(UnsupportedMedia):
            sniff(head)
        assert file_kind(head) is MediaKind.OTHER  # any other file: hashed by its bytes alone


def test_the_kind_of_any_file() -> None:
    assert file_kind(jpeg(1, 32, 32)) is MediaKind.IMAGE
    assert file_kind(make_video(2, seconds=0.2)[:SNIFF_BYTES]) is MediaKind.VIDEO
    assert file_kind(b"notes\n") is MediaKind.OTHER
    with pytest.raises(EmptyMedia, match="file is empty"):
        file_kind(b"")


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_sniff_never_fails_otherwise(data: bytes) -> None:
    with contextlib.suppress(EmptyMedia, UnsupportedMedia):
        sniff(data)


def _seeds() -> dict[str, bytes]:
    from hashguard.media.synthetic import encode, scene

    image = scene(4, 96, 64)
    seeds = {"jpeg": jpeg(1, 96, 64), "png": png(2, 96, 64), "mp4": make_video(3, seconds=0.5)}
    seeds["progressive"] = encode(image, "JPEG", progressive=True)
    seeds["gif"] = encode(image.convert("P"), "GIF")
    seeds["webp"] = encode(image, "WEBP")
    seeds["bmp"] = encode(image, "BMP")
    seeds["tiff"] = encode(image, "TIFF", compression="tiff_lzw")
    seeds["tiff-jpeg"] = encode(image, "TIFF", compression="jpeg")
    seeds["avif"] = encode(image, "AVIF")
    import pillow_heif

    pillow_heif.register_heif_opener()
    seeds["heif"] = encode(image, "HEIF")
    return seeds


SEEDS = _seeds()


@settings(max_examples=400)
@given(
    st.sampled_from(sorted(SEEDS)),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
    st.integers(0, 10**6),
)
@example("mp4", [], 19751)  # cut inside the header: a video stream with no codec at all
def test_damaged_media_raise_media_errors_only(kind: str, flips: list, cut: int) -> None:
    data = bytearray(SEEDS[kind])
    for position, value in flips:
        data[position % len(data)] = value
    damaged = bytes(data[: max(1, cut % (len(data) + 1))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # decoders' warnings must not reach the user either
        with contextlib.suppress(MediaError):  # anything else fails the test
            if kind == "mp4":
                VpdqSignal(per_second=0).hash(damaged)
            else:
                decode_luma(damaged)
