"""Synthetic hard negatives and edits: deterministic per seed, sized as asked, edits that keep the
original's pixels where a user expects them."""

import numpy as np
import pytest
from PIL import Image

from hashguard.media.synthetic import (
    HARD_NEGATIVES,
    caption_bar,
    document,
    gradient,
    in_ui_frame,
    letterbox,
    logo_on_flat,
    pad,
    pattern,
    scene,
    ui_screenshot,
    watermark,
)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_every_kind_is_named() -> None:
    assert set(HARD_NEGATIVES) == {"document", "ui-screenshot", "logo", "gradient", "pattern"}


@pytest.mark.parametrize("kind", sorted(HARD_NEGATIVES))
def test_same_seed_same_pixels_other_seed_other_pixels(kind: str) -> None:
    make = HARD_NEGATIVES[kind]
    first = make(2)
    assert first.mode == "RGB"
    assert np.array_equal(pixels(first), pixels(make(2)))
    # Seed 4 has the same document template and the same screen shape as seed 2.
    other = make(4)
    assert other.size != first.size or not np.array_equal(pixels(first), pixels(other))


def test_documents_of_one_template_share_the_layout_not_the_text() -> None:
    one, two = document(1, 2, 425, 550), document(2, 2, 425, 550)
    assert not np.array_equal(pixels(one), pixels(two))
    # The letterhead bar is the template's, whatever the seed.
    assert pixels(one)[5, 420].tolist() == pixels(two)[5, 420].tolist()
    assert pixels(one)[5, 420].tolist() != [255, 255, 255]
    layouts = {pixels(document(1, t, 425, 550)).tobytes() for t in range(4)}
    assert len(layouts) == 4


def test_document_refuses_an_unknown_template() -> None:
    with pytest.raises(ValueError, match="template 4"):
        document(1, template=4)


def test_screens_of_one_app_share_the_look_not_the_content() -> None:
    one, two = ui_screenshot(1, app=1), ui_screenshot(2, app=1)
    assert one.size == (390, 844)
    assert not np.array_equal(pixels(one), pixels(two))
    # The bottom navigation bar's colour is the app's.
    assert pixels(one)[-30, 5].tolist() == pixels(two)[-30, 5].tolist()
    assert ui_screenshot(1, app=0).getpixel((5, 830)) != one.getpixel((5, 830))
    with pytest.raises(ValueError, match="app 3"):
        ui_screenshot(1, app=3)


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (lambda: document(3, 1, 600, 800), (600, 800)),
        (lambda: ui_screenshot(3, 360, 780), (360, 780)),
        (lambda: ui_screenshot(3, 1280, 800), (1280, 800)),
        (lambda: logo_on_flat(3, 300, 200), (300, 200)),
        (lambda: gradient(3, 320, 240), (320, 240)),
        (lambda: pattern(3, 256, 128), (256, 128)),
    ],
)
def test_sizes_as_asked(make, size: tuple[int, int]) -> None:
    image = make()
    assert image.mode == "RGB"
    assert image.size == size


def test_desktop_form_differs_from_the_phone_screen() -> None:
    desktop = ui_screenshot(5, 1280, 800)
    again = ui_screenshot(6, 1280, 800)
    assert not np.array_equal(pixels(desktop), pixels(again))


def test_logo_sits_on_a_mostly_flat_field() -> None:
    for seed in range(4):
        flat = pixels(logo_on_flat(seed, 400, 300)).astype(np.int16)
        background = np.median(flat.reshape(-1, 3), axis=0)
        near = np.abs(flat - background).max(axis=-1) <= 8
        assert near.mean() > 0.8


def test_patterns_are_two_coloured() -> None:
    for seed in range(6):
        rgb = pixels(pattern(seed, 200, 200)).astype(np.uint32)
        assert len(np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])) <= 2


ORIGINALS = [scene(1, 400, 300), scene(2, 300, 400), scene(3, 500, 100)]


@pytest.mark.parametrize("aspect", [(16, 9), (1, 1), (9, 16), 16 / 9])
@pytest.mark.parametrize("original", ORIGINALS, ids=["landscape", "portrait", "strip"])
def test_letterbox_gives_the_aspect_with_the_original_inside(
    original: Image.Image, aspect: tuple[int, int] | float
) -> None:
    ratio = aspect[0] / aspect[1] if isinstance(aspect, tuple) else aspect
    boxed = letterbox(original, aspect, (10, 200, 30))
    width, height = boxed.size
    assert abs(width - height * ratio) <= 1 or abs(height - width / ratio) <= 1
    assert width >= original.width and height >= original.height
    assert width == original.width or height == original.height  # bars on one axis only
    x, y = (width - original.width) // 2, (height - original.height) // 2
    inside = boxed.crop((x, y, x + original.width, y + original.height))
    assert np.array_equal(pixels(inside), pixels(original))
    if (width, height) != original.size:
        assert boxed.getpixel((0, 0)) == (10, 200, 30)
        assert boxed.getpixel((width - 1, height - 1)) == (10, 200, 30)


def test_letterbox_refuses_a_ratio_of_zero() -> None:
    with pytest.raises(ValueError, match="aspect"):
        letterbox(ORIGINALS[0], (0, 9))


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.25])
def test_pad_keeps_the_original_in_the_middle(fraction: float) -> None:
    original = ORIGINALS[0]
    padded = pad(original, fraction, (255, 0, 0))
    dx, dy = round(400 * fraction), round(300 * fraction)
    assert padded.size == (400 + 2 * dx, 300 + 2 * dy)
    middle = padded.crop((dx, dy, dx + 400, dy + 300))
    assert np.array_equal(pixels(middle), pixels(original))
    if fraction:
        border = np.concatenate(
            [pixels(padded)[:dy].reshape(-1, 3), pixels(padded)[:, :dx].reshape(-1, 3)]
        )
        assert (border == (255, 0, 0)).all()


def test_caption_bar_adds_a_bar_above_or_below() -> None:
    original = ORIGINALS[0]
    above = caption_bar(original)
    below = caption_bar(original, 0.2, below=True, colour=(0, 0, 0))
    assert above.size == (400, 345) and below.size == (400, 360)
    assert np.array_equal(pixels(above)[45:], pixels(original))
    assert np.array_equal(pixels(below)[:300], pixels(original))
    # The bar holds text: not one flat colour.
    assert len(np.unique(pixels(above)[:45].reshape(-1, 3), axis=0)) > 2


def test_watermark_marks_the_corner_only() -> None:
    original = ORIGINALS[0]
    marked = watermark(original, "@someone")
    assert marked.size == original.size
    changed = np.any(pixels(marked) != pixels(original), axis=-1)
    assert changed.any()
    assert not changed[:150, :200].any()


def test_ui_frame_holds_the_image_in_a_phone_or_desktop_screen() -> None:
    original = ORIGINALS[0]
    phone, desktop = in_ui_frame(original, 0), in_ui_frame(original, 1)
    assert phone.height > phone.width and desktop.width > desktop.height
    assert np.array_equal(pixels(phone), pixels(in_ui_frame(original, 0)))
    assert not np.array_equal(pixels(phone), pixels(in_ui_frame(original, 2)))


def test_edits_leave_their_input_alone() -> None:
    original = scene(9, 200, 150)
    before = pixels(original).copy()
    for edited in (
        pad(original, 0.1),
        letterbox(original, (9, 16)),
        in_ui_frame(original, 3),
        caption_bar(original),
        watermark(original, "mark"),
    ):
        assert edited is not original
    assert np.array_equal(pixels(original), before)
