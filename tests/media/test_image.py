"""Safe image decoding: formats, modes, EXIF orientation, limits before pixels, bad input."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from hashguard.media import (
    CorruptMedia,
    EmptyMedia,
    LimitExceeded,
    Limits,
    MediaKind,
    UnsupportedMedia,
    sniff,
)
from hashguard.media.image import decode_luma, image_size
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqSignal

from support.media import jpeg, make_video, png, png_declaring, reference_pdq

PDQ = PdqSignal()


@pytest.mark.parametrize(
    ("fmt", "options", "name"),
    [
        ("JPEG", {}, "jpeg"),
        ("PNG", {}, "png"),
        ("WEBP", {"lossless": True}, "webp"),
        ("GIF", {}, "gif"),
        ("BMP", {}, "bmp"),
        ("TIFF", {}, "tiff"),
        ("AVIF", {"quality": 90}, "avif"),
    ],
)
def test_every_format_decodes_to_the_same_picture(fmt: str, options: dict, name: str) -> None:
    original = scene(3, 400, 300)
    data = encode(original, fmt, **options)
    assert sniff(data[:512]).name == name
    luma = decode_luma(data)
    assert (luma.width, luma.height) == (400, 300)
    assert luma.pixels.shape == (300, 400)
    # GIF quantises to 256 colours and AVIF is lossy: the hash still lands far inside 31.
    assert PDQ.hash(data).distance(PDQ.hash(encode(original, "PNG"))) <= 16


def test_heic_decodes() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    original = scene(4, 320, 240)
    data = encode(original, "HEIF", quality=90)
    assert sniff(data[:512]).name == "heif"
    assert PDQ.hash(data).distance(PDQ.hash(encode(original, "PNG"))) <= 16


def test_gif_uses_the_first_frame() -> None:
    frames = [scene(seed, 200, 150).convert("P") for seed in (1, 2, 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    first = PDQ.hash(encode(frames[0], "GIF"))
    assert PDQ.hash(buffer.getvalue()).distance(first) == 0


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "PA", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F"]
)
def test_every_pillow_mode_gives_nearly_the_rgb_hash(mode: str) -> None:
    original = scene(5, 480, 360)
    reference = PDQ.hash(encode(original, "PNG"))
    if mode in ("I", "F"):
        converted = original.convert("L").convert(mode)
    elif mode == "I;16":
        converted = Image.fromarray(np.asarray(original.convert("L")).astype(np.uint16) * 257)
        assert converted.mode == "I;16"
    else:
        converted = original.convert(mode)
    fmt = {"CMYK": "JPEG", "YCbCr": "JPEG", "F": "TIFF", "I": "TIFF", "PA": "WEBP"}.get(mode, "PNG")
    options = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        options = {"lossless": True}
    hashed = PDQ.hash(encode(converted, fmt, **options))
    # '1' is dithered black and white, a different picture at pixel level; the rest are close.
    assert hashed.distance(reference) <= (40 if mode == "1" else 12)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey = np.asarray(scene(6, 256, 256).convert("L")).astype(np.uint16) * 257
    luma = decode_luma(encode(Image.fromarray(grey), "PNG"))
    assert luma.pixels.max() > 200  # clipping at 255 of 65535 would make it nearly all white
    assert np.allclose(luma.pixels, grey / 257.0, atol=1.0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    upright = scene(7, 300, 200)
    # Store the picture so that applying the orientation tag gives back the upright picture.
    inverse = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }
    stored = upright.transpose(inverse[orientation]) if orientation > 1 else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "PNG", exif=exif)
    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (300, 200)
    luma = decode_luma(data)
    assert (luma.width, luma.height) == (300, 200)
    expected = decode_luma(encode(upright, "PNG")).pixels
    assert np.array_equal(luma.pixels, expected)


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    data = jpeg(8, 4000, 3000)
    luma = decode_luma(data, min_side=512)
    assert luma.scale == 4  # 750 px is the smallest size >= 512 that DCT scaling offers
    assert luma.pixels.shape == (750, 1000)
    assert (luma.width, luma.height) == (4000, 3000)
    assert decode_luma(data).scale == 1  # without min_side, full resolution
    # Sides that do not divide evenly: 1203 // 2 = 601 rows is still >= 512.
    odd = decode_luma(jpeg(9, 1600, 1203), min_side=512)
    assert (odd.scale, odd.pixels.shape) == (2, (602, 800))


def test_declared_huge_png_is_refused_from_its_header() -> None:
    big = png_declaring(10_000, 10_000)  # 100 MP: over our 64 MP default
    assert len(big) < 200
    assert image_size(big, Limits(max_pixels=10**8)) == (10_000, 10_000)
    with pytest.raises(LimitExceeded, match="10000x10000 pixels = 100,000,000 exceeds"):
        decode_luma(big)
    # 10 gigapixels trips Pillow's own guard first; it is reported as our limit all the same,
    # or as Pillow's hard limit when ours was set above it.
    huge = png_declaring(100_000, 100_000)
    with pytest.raises(LimitExceeded, match="10,000,000,000 exceeds the limit of 64,000,000"):
        decode_luma(huge)
    with pytest.raises(LimitExceeded, match="10,000,000,000 exceeds the limit of 178,956,970"):
        decode_luma(huge, Limits(max_pixels=10**11))


def test_byte_and_frame_limits() -> None:
    data = png(9, 300, 200)
    with pytest.raises(LimitExceeded, match="image size"):
        decode_luma(data, Limits(max_image_bytes=len(data) - 1))
    frames = [scene(seed, 64, 64).convert("P") for seed in range(5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(LimitExceeded, match="frame count exceeds the limit of 3"):
        decode_luma(buffer.getvalue(), Limits(max_frames=3))
    assert decode_luma(buffer.getvalue(), Limits(max_frames=5)).width == 64


def test_bad_input_gets_a_specific_error() -> None:
    with pytest.raises(EmptyMedia, match="empty"):
        decode_luma(b"")
    with pytest.raises(UnsupportedMedia, match="not a supported"):
        decode_luma(b"hello, this is a text file\n" * 10)
    data = jpeg(10)
    with pytest.raises(CorruptMedia, match="truncated"):
        decode_luma(data[: len(data) // 2])
    for headless in (data[:4] + bytes(200), b"\xff\xd8\xff\xe0\x00\x02\xff\xd9"):  # no frame
        with pytest.raises(CorruptMedia, match=r"^cannot read the jpeg header$"):  # not 'MPO'
            decode_luma(headless)
    with pytest.raises(CorruptMedia):
        decode_luma(png(11)[:40])


def test_a_video_is_not_an_image() -> None:
    video = make_video(1, seconds=0.5)
    assert sniff(video[:512]).kind is MediaKind.VIDEO
    with pytest.raises(UnsupportedMedia, match="video"):
        decode_luma(video)


def test_a_long_thin_image_hashes_in_little_memory() -> None:
    import tracemalloc

    strip = scene(20, 64, 1000).resize((16, 1_000_000))  # 16 MP, 0.3 MB as PNG
    data = encode(strip, "PNG")
    tracemalloc.start()
    hashed = PDQ.hash(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200 * 2**20  # the pixels themselves (64 MB as float) and little more
    reference = reference_pdq(data)
    assert reference.quality is not None and reference.quality >= 50
    # Within the conformance bound; along a 1,000,000-pixel axis the reference's own float32
    # running sums drift (0.14 grey levels here, 100x our error), so exact agreement is moot.
    assert hashed.distance(reference) <= 16


def test_multi_picture_jpeg_is_decoded_at_reduced_scale() -> None:
    first, second = scene(21, 3000, 2000), scene(22, 3000, 2000)
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[second], quality=90)
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    luma = decode_luma(buffer.getvalue(), min_side=512)
    assert luma.scale == 2
    assert PDQ.hash(buffer.getvalue()).distance(PDQ.hash(encode(first, "JPEG"))) <= 6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_on_reduced_decodes(orientation: int) -> None:
    """Sizes that do not divide by the DCT scale put a partial block where a flip moves it."""

    stored = scene(23, 3071, 2051, grain=3)
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", exif=exif)
    luma = decode_luma(data, min_side=512)
    assert luma.scale == 4
    assert PDQ.hash(data).distance(reference_pdq(data)) <= 4


@pytest.mark.parametrize("mode", ["RGBA", "P", "LA", "CMYK"])
def test_a_large_image_of_any_mode_gets_the_luma_of_its_rgb(mode: str) -> None:
    picture = scene(23, 2400, 2000).convert(mode)  # 4.8 MP: 8-bit luma, no RGB copy kept
    expected = np.asarray(picture.convert("RGB").convert("L"))
    luma = decode_luma(encode(picture, "TIFF" if mode == "CMYK" else "PNG"), min_side=64)
    assert np.array_equal(luma.pixels, expected)


def test_a_large_image_becomes_an_array_without_whole_copies() -> None:
    import tracemalloc

    data = encode(scene(24, 4000, 3000).convert("L"), "PNG")  # 12 MP: a 12 MB plane
    tracemalloc.start()
    luma = decode_luma(data, min_side=64)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert luma.pixels.shape == (3000, 4000)
    assert peak < 1.5 * luma.pixels.nbytes  # the plane and a band, not bytes joined from copies


def test_a_large_sixteen_bit_image_keeps_its_levels() -> None:
    levels = np.tile(np.arange(0, 65536, 16, dtype=np.uint16), (1100, 1))[:, :4096]  # 4.5 MP
    luma = decode_luma(encode(Image.fromarray(levels), "PNG"), min_side=64)
    assert luma.pixels.dtype == np.float32
    assert np.allclose(luma.pixels, levels.astype(np.float32) / 257.0)
