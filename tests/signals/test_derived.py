"""Derived PDQ hashes (crops) of generated scenes: a cropped copy that the image's own hash no
longer matches is within the threshold of the derived hash of that crop; derived hashes of too
little detail, or the same as the image's, are left out."""

import io

import numpy as np
import pytest
from PIL import Image

from hashguard.media.errors import MediaError
from hashguard.media.synthetic import encode, scene
from hashguard.signals.derived import CROPS, NEAR, TRIMS, derived_pdq
from hashguard.signals.pdq import DEFAULT_THRESHOLD, PdqHash, PdqSignal

PDQ = PdqSignal()


def cropped(image: Image.Image, top: int, bottom: int, left: int, right: int) -> bytes:
    """``image`` with the given percent cut off each side, as a JPEG."""
    width, height = image.size
    box = (width * left // 100, height * top // 100,
           width - width * right // 100, height - height * bottom // 100)  # fmt: skip
    return encode(image.crop(box))


def closest(query: PdqHash, hashes: list[PdqHash]) -> int:
    return min(query.distance(value) for value in hashes)


@pytest.mark.parametrize("seed", [3, 8, 21])
def test_a_centre_crop_of_10_percent_matches_a_derived_hash_not_the_plain_one(seed: int) -> None:
    image = scene(seed)
    data = encode(image)
    original = PDQ.hash(data)
    derived = derived_pdq(data, original=original)
    query = PDQ.hash(cropped(image, 10, 10, 10, 10))
    assert query.distance(original) > DEFAULT_THRESHOLD  # what plain PDQ misses
    assert "crop-10" in derived
    assert query.distance(derived["crop-10"]) <= DEFAULT_THRESHOLD


def test_every_crop_named_is_matched_by_its_derived_hash() -> None:
    image = scene(5, 800, 600)
    data = encode(image, quality=95)
    derived = derived_pdq(data)
    assert list(derived) == list(CROPS)  # a scene full of detail: each crop kept, in order
    for name, sides in CROPS.items():
        query = PDQ.hash(cropped(image, *sides))
        assert query.distance(derived[name]) <= DEFAULT_THRESHOLD, name
        assert all(v.quality is not None and v.quality >= 50 for v in derived.values())


def test_a_crop_reencoded_and_resized_still_matches_its_derived_hash() -> None:
    image = scene(11, 1024, 768)
    derived = derived_pdq(encode(image))
    width, height = image.size
    small = image.crop((0, height // 10, width, height)).resize((400, 270))
    query = PDQ.hash(encode(small, quality=60))
    assert closest(query, [derived["crop-top-10"]]) <= DEFAULT_THRESHOLD


def test_derived_hashes_like_the_original_or_of_no_detail_are_left_out() -> None:
    # A picture whose crops look like itself (horizontal stripes: crops from the sides change
    # nothing) keeps none of those; a flat picture has no derived hash of quality >= 50.
    stripes = np.zeros((480, 640), np.uint8)
    for row in range(480):
        stripes[row, :] = 255 if (row // 60) % 2 else 0
    data = encode(Image.fromarray(stripes, "L").convert("RGB"), "PNG")
    original = PDQ.hash(data)
    derived = derived_pdq(data, original=original)
    assert "crop-left-10" not in derived and "crop-right-10" not in derived
    assert all(original.distance(value) > NEAR for value in derived.values())
    kept = list(derived.values())
    assert all(a.distance(b) > NEAR for i, a in enumerate(kept) for b in kept[i + 1 :])
    flat = encode(Image.new("RGB", (640, 480), (90, 120, 200)), "PNG")
    assert derived_pdq(flat) == {}


def test_derived_hashes_of_an_open_file_and_of_undecodable_bytes() -> None:
    data = encode(scene(2))
    assert derived_pdq(io.BytesIO(data)) == derived_pdq(data)
    with pytest.raises(MediaError):
        derived_pdq(data[: len(data) // 3] + b"\x00" * 10)


def test_an_image_in_uniform_borders_has_a_derived_hash_of_the_image_inside() -> None:
    from hashguard.media.trim import RULES

    assert tuple(f"trim-{rule}" for rule in RULES) == TRIMS
    inside = scene(17)
    padded = Image.new("RGB", (880, 560), (12, 12, 12))
    padded.paste(inside, (120, 40))  # letterboxed, off centre
    derived = derived_pdq(encode(padded))
    query = PDQ.hash(encode(inside, quality=80))  # the image without its borders, elsewhere
    assert query.distance(PDQ.hash(encode(padded))) > DEFAULT_THRESHOLD
    trims = [value for name, value in derived.items() if name.startswith("trim-")]
    assert trims and closest(query, trims) <= DEFAULT_THRESHOLD
    assert not any(name.startswith("trim-") for name in derived_pdq(encode(inside)))
