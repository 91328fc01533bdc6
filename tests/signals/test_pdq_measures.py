"""What PDQ measures of an image besides its hash: stability (does the hash survive a 1 % resize)
and flat regions with text (screens and documents, whose layout decides their hash)."""

import io

import numpy as np
import pytest
from PIL import Image

from hashguard.media.synthetic import encode, scene, ui_screenshot
from hashguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    FLAT_THRESHOLD,
    MIN_STABILITY,
    PdqSignal,
)

PDQ = PdqSignal()


def stripes(period: int, size: int = 1024) -> Image.Image:
    on = (np.arange(size) // (period // 2)) % 2 == 1
    return Image.fromarray(np.where(np.broadcast_to(on, (size, size)), 255, 0).astype(np.uint8))


def checkerboard(cell: int, size: int = 1024) -> Image.Image:
    ys, xs = np.ogrid[0:size, 0:size]
    return Image.fromarray((((xs // cell + ys // cell) % 2) * 255).astype(np.uint8))


def resized(data: bytes, factor: float) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    size = (round(image.width * factor), round(image.height * factor))
    return encode(image.resize(size, Image.Resampling.BICUBIC), "PNG")


@pytest.mark.parametrize(("width", "height", "fmt"), [(640, 480, "PNG"), (2400, 1800, "JPEG")])
def test_photo_like_scenes_are_stable(width: int, height: int, fmt: str) -> None:
    for seed in range(3):
        value = PDQ.hash(encode(scene(seed, width, height, grain=4), fmt))
        assert value.stability is not None and value.stability >= 80
        assert PDQ.stability(value) == value.stability and not value.unstable


@pytest.mark.parametrize("image", [stripes(12), stripes(31), checkerboard(12), checkerboard(16)])
def test_fine_regular_patterns_are_unstable_noise_that_never_matches(image: Image.Image) -> None:
    data = encode(image, "PNG")
    value = PDQ.hash(data)
    assert value.quality == 100  # quality alone lets them through
    assert value.stability is not None and value.stability < MIN_STABILITY and value.unstable
    # What the score predicts: the hash of a real 99 % copy is far away.
    assert PDQ.hash(resized(data, 0.99)).distance(value) > 32
    same = PDQ.compare(value, value)
    assert not same.match and "stability" in same.reason


@pytest.mark.parametrize("size", [40, 50, 51])
def test_small_images_are_measured_on_a_copy_that_is_really_smaller(size: int) -> None:
    # Below 50 px, 99 % rounds back to the size: the copy must still be a pixel shorter.
    value = PDQ.hash(encode(checkerboard(1, size), "PNG"))
    assert value.stability is not None and value.stability < MIN_STABILITY


def test_the_dihedral_variants_share_the_stability_of_the_image() -> None:
    data = encode(scene(7, 800, 600, grain=4), "JPEG")
    variants = PDQ.hash_dihedral(data)
    assert variants.stability == PDQ.hash(data).stability
    assert {v.stability for v in variants.variants.values()} == {variants.stability}
    unstable = PDQ.hash_dihedral(encode(stripes(12), "PNG"))
    assert all(v.unstable for v in unstable.variants.values())


def test_measures_are_not_part_of_the_hash() -> None:
    value = PDQ.hash(encode(scene(3), "PNG"))
    parsed = PDQ.parse(value.hex)
    assert (parsed.stability, parsed.flat) == (None, None)
    assert PDQ.stability(parsed) is None and not parsed.unstable
    assert PDQ.threshold_for(parsed, DEFAULT_THRESHOLD) == DEFAULT_THRESHOLD
    assert parsed.bits == value.bits


def test_screens_of_one_app_are_flagged_and_matched_strictly() -> None:
    screens = [PDQ.hash(encode(ui_screenshot(seed), "PNG")) for seed in range(40)]
    assert all(s.flat_and_text for s in screens)
    assert {PDQ.threshold_for(s, DEFAULT_THRESHOLD) for s in screens} == {FLAT_THRESHOLD}
    assert PDQ.threshold_for(screens[0], 8) == 8  # never looser than the list's
    # Different content, one layout: within the default threshold, not within the stricter one.
    close = [(a, b) for i, a in enumerate(screens) for b in screens[i + 1 :]]
    colliding = [(a, b) for a, b in close if a.distance(b) <= DEFAULT_THRESHOLD]
    assert colliding
    assert not any(PDQ.compare(a, b).match for a, b in colliding)
    # A copy of a screen re-encoded is still found.
    again = PDQ.hash(encode(ui_screenshot(0), "JPEG", quality=70))
    assert PDQ.compare(again, screens[0]).match


def test_scenes_are_not_flagged_and_keep_the_default_threshold() -> None:
    for seed in range(10):
        value = PDQ.hash(encode(scene(seed, 800, 600, grain=4 * (seed % 3)), "JPEG"))
        assert not value.flat_and_text
        assert PDQ.threshold_for(value, DEFAULT_THRESHOLD) == DEFAULT_THRESHOLD
