"""PDQ: conformance with Meta's C++ reference (``pdqhash``), string form, comparison rules."""

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from hashguard.media.synthetic import encode, scene
from hashguard.signals import InvalidSignalValue
from hashguard.signals.pdq import PdqHash, PdqSignal

from support.media import jpeg, png, reference_dihedral, reference_pdq

PDQ = PdqSignal()


@pytest.mark.parametrize(
    "size", [(5, 5), (7, 300), (64, 64), (100, 37), (127, 129), (333, 500), (512, 200), (512, 512)]
)
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_images_up_to_512px_hash_identically_to_the_reference(size: tuple, fmt: str) -> None:
    for seed in range(3):
        data = encode(scene(seed, *size), fmt)
        ours, reference = PDQ.hash(data), reference_pdq(data)
        assert ours.hex == reference.hex
        assert ours.quality == reference.quality


@pytest.mark.parametrize("mode", ["L", "RGBA", "P"])
def test_small_images_in_other_modes_hash_identically(mode: str) -> None:
    data = encode(scene(12, 300, 200).convert(mode), "PNG")
    assert PDQ.hash(data) == reference_pdq(data)


def test_dihedral_hashes_equal_the_reference() -> None:
    data = png(13, 400, 300)
    ours = PDQ.hash_dihedral(data)
    names = ["original", "rotate90", "rotate180", "rotate270"]
    names += ["flipx", "flipy", "flipplus1", "flipminus1"]
    assert list(ours.variants) == names
    assert [h.bits for h in ours.variants.values()] == reference_dihedral(data)
    assert ours.original == PDQ.hash(data)


def test_a_rotated_copy_is_found_through_its_dihedral_variants() -> None:
    image = scene(14, 500, 400)
    original = PDQ.hash(encode(image, "PNG"))
    rotated = encode(image.rotate(90, expand=True), "PNG")
    assert PDQ.hash(rotated).distance(original) > 31
    best = min(h.distance(original) for h in PDQ.hash_dihedral(rotated).variants.values())
    # PDQ is not exactly rotation-invariant (its sampling grid is not symmetric), but close.
    assert best <= 31


def test_larger_images_conform_to_the_reference() -> None:
    """Reduced JPEG decoding and the matrix form stay close to a full-resolution reference."""
    distances = []
    sizes = [(1024, 768), (1600, 1203), (2048, 1536), (3000, 2000), (1200, 1600), (2592, 1944)]
    for seed, (width, height) in enumerate(sizes * 4):
        image = scene(100 + seed, width, height, grain=4)
        fmt = "PNG" if seed % 4 == 3 else "JPEG"
        data = encode(image, fmt)
        reference = reference_pdq(data)
        if reference.quality is not None and reference.quality >= 80:
            distances.append(PDQ.hash(data).distance(reference))
    assert len(distances) >= 20
    assert np.mean(distances) <= 4
    assert np.percentile(distances, 95) <= 10
    assert max(distances) <= 16


def test_exif_rotated_jpeg_matches_the_upright_reference() -> None:
    upright = scene(15, 1600, 1200)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif)
    assert PDQ.hash(data).distance(PDQ.hash(encode(upright, "JPEG"))) <= 8
    assert PDQ.hash(data).distance(reference_pdq(data)) <= 8


def test_edits_that_keep_the_picture_still_match() -> None:
    image = scene(16, 800, 600, grain=2)
    original = PDQ.hash(encode(image, "PNG"))
    for edited in (
        encode(image, "JPEG", quality=40),
        encode(image.resize((400, 300)), "JPEG"),
        encode(image.convert("L"), "PNG"),
    ):
        assert PDQ.compare(original, PDQ.hash(edited)).match
    assert not PDQ.compare(original, PDQ.hash(jpeg(17, 800, 600))).match


def test_flat_images_are_low_quality_and_never_match() -> None:
    flat = encode(Image.new("RGB", (300, 300), (120, 130, 140)), "PNG")
    hashed = PDQ.hash(flat)
    assert hashed.quality == 0 and hashed.low_quality
    result = PDQ.compare(hashed, hashed)
    assert result.distance == 0 and not result.match
    assert "quality 0 is below 50" in result.reason


def test_threshold_is_inclusive_and_configurable() -> None:
    a = PdqHash(bytes(32))
    b = PdqHash(bytes([0xFF] * 3 + [0x7F] + [0] * 28))  # 31 bits set
    assert a.distance(b) == 31
    assert PDQ.compare(a, b).match
    assert not PDQ.compare(a, b, threshold=30).match


def test_tiny_images_hash_to_zero_like_the_reference() -> None:
    data = encode(scene(18, 4, 40), "PNG")
    assert PDQ.hash(data) == reference_pdq(data) == PdqHash(bytes(32), 0)


@given(st.binary(min_size=32, max_size=32))
def test_string_form_round_trips(bits: bytes) -> None:
    value = PdqHash(bits)
    text = PDQ.format(value)
    assert text == text.lower() and len(text) == 64
    assert PDQ.parse(text) == value
    assert PDQ.parse(text.upper()) == value


@pytest.mark.parametrize(
    "text", ["", "abc", "g" * 64, "0" * 63, "0" * 65, "0x" + "0" * 62, "0" * 32 + " " + "0" * 31]
)
def test_malformed_strings_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(InvalidSignalValue, match="64 hex digits"):
        PDQ.parse(text)


def test_hash_accepts_an_open_file() -> None:
    data = jpeg(19)
    assert PDQ.hash(io.BytesIO(data)) == PDQ.hash(data)


def test_hashes_of_images_are_plausible_pdq_and_most_digests_are_not() -> None:
    """A PDQ hash of an image has at most half its bits set (exactly half unless DCT
    coefficients tie at their median: a symmetric image's has fewer); a SHA-256 digest has
    more than half about one time in two."""
    import hashlib

    import numpy as np
    from PIL import Image

    from hashguard.media.synthetic import encode, scene

    pdq = PdqSignal()
    noise = np.random.default_rng(5).integers(0, 256, (96, 48), dtype=np.uint8)
    mirrored = Image.fromarray(np.hstack([noise, noise[:, ::-1]]))  # ties at the median
    for image in (scene(4, 320, 240), mirrored):
        value = pdq.hash(encode(image, "PNG"))
        assert pdq.plausible(value.hex)
    digests = [hashlib.sha256(b"%d" % n).hexdigest() for n in range(200)]
    assert 70 < sum(not pdq.plausible(d) for d in digests) < 130
