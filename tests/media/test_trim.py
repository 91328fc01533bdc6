"""Trim hypotheses: where an image sits inside flat borders."""

from hashguard.media import synthetic, trim
from hashguard.media.image import decode_luma


def test_a_padded_image_is_found_to_the_pixel() -> None:
    image = synthetic.scene(3, 900, 600)
    padded = synthetic.pad(image, 0.12, (250, 250, 250))
    found = trim.hypotheses(decode_luma(synthetic.encode(padded, "PNG")))
    assert found and found[0].rule == "lenient"
    assert found[0].box == trim.Box(72, 108, 672, 1008)
    assert len({t.box for t in found}) == len(found)  # the same box is one hypothesis


def test_an_image_without_borders_or_with_slivers_gives_none() -> None:
    image = synthetic.scene(5, 640, 480)
    assert trim.hypotheses(decode_luma(synthetic.encode(image, "PNG"))) == ()
    sliver = synthetic.pad(image, 0.005, (0, 0, 0))  # 3 px: the plain hash is as good
    assert trim.hypotheses(decode_luma(synthetic.encode(sliver, "PNG"))) == ()


def test_a_mostly_flat_image_is_never_trimmed_to_a_small_part() -> None:
    def boxes(share: float) -> list[trim.Box]:
        flat = synthetic.pad(synthetic.scene(6, 100, 100), share, (0, 0, 0))
        return [t.box for t in trim.hypotheses(decode_luma(synthetic.encode(flat, "PNG")))]

    # The image is 25 % of each side: the frame rule (an image in a screenshot, at least 20 %
    # of a side kept) finds it.
    assert [b for b in boxes(1.5) if b == trim.Box(150, 150, 250, 250)] != []
    assert all(b.bottom - b.top >= 0.2 * 400 for b in boxes(1.5))
    assert boxes(2.5) == []  # 17 %: no rule keeps so little


def test_a_crop_of_a_reduced_flipped_decode_keeps_its_partial_block_in_place() -> None:
    """A reduced decode of 10 x 7 full-resolution pixels at scale 4 holds 3 x 2 pixels, the
    last of each axis (the first, on an axis an EXIF flip reversed) a partial block."""
    import numpy as np

    from hashguard.media.image import LumaImage

    pixels = np.arange(6, dtype=np.float32).reshape(2, 3)
    flipped = LumaImage(pixels, 10, 7, 4, reversed_axes=(True, True))
    whole = trim.crop(flipped, trim.Box(0, 0, 2, 3))
    assert (whole.width, whole.height, whole.reversed_axes) == (10, 7, (True, True))
    inner = trim.crop(flipped, trim.Box(1, 1, 2, 3))  # full blocks only: no direction left
    assert (inner.width, inner.height, inner.reversed_axes) == (8, 4, (False, False))
    edge = trim.crop(flipped, trim.Box(0, 0, 1, 2))  # the partial blocks come first
    assert (edge.width, edge.height, edge.reversed_axes) == (6, 3, (True, True))
    upright = LumaImage(pixels, 10, 7, 4)
    tail = trim.crop(upright, trim.Box(1, 1, 2, 3))  # the partial blocks come last
    assert (tail.width, tail.height, tail.reversed_axes) == (6, 3, (False, False))
    assert (trim.crop(upright, trim.Box(0, 0, 1, 2)).width, tail.pixels.tolist()) == (8, [[4, 5]])


def test_an_image_with_a_flat_sky_is_found_whole_inside_an_apps_frame() -> None:
    """The image's own flat rows (a clear sky, at another level than the app's background)
    are part of it: a bar of the frame is at the level of the margins beside it."""
    from PIL import ImageDraw

    image = synthetic.scene(8, 1000, 600)
    ImageDraw.Draw(image).rectangle((0, 0, 1000, 260), fill=(90, 150, 230))  # sky, 43 %
    for seed, where in ((0, trim.Box(400, 40, 820, 740)), (1, trim.Box(190, 256, 651, 1024))):
        shot = synthetic.in_ui_frame(image, seed)  # phone (even seeds), desktop (odd)
        found = {t.rule: t.box for t in trim.hypotheses(decode_luma(synthetic.encode(shot, "PNG")))}
        box, edges = found["frame"], (where.top, where.left, where.bottom, where.right)
        found_edges = (box.top, box.left, box.bottom, box.right)
        assert all(abs(a - b) <= 2 for a, b in zip(found_edges, edges, strict=True)), (seed, box)


def test_a_picture_on_a_card_of_another_colour_than_the_page_is_found() -> None:
    """A feed's post: a white card on a grey page, text above and below the picture, which
    spans the card's width. The card's rows are not at the page's level, so the frame rule
    keeps the whole card; the panel rule (a bar at its own level) finds the picture."""
    from PIL import Image, ImageDraw

    picture = synthetic.scene(41, 600, 450)
    page = Image.new("RGB", (1280, 1000), (240, 242, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 1280, 60), fill=(24, 119, 242))
    draw.rectangle((340, 90, 940, 960), fill=(255, 255, 255))
    for line in (110, 138, 166, 760, 788, 816):
        draw.text((360, line), "a line of the post's text, then some more words", fill=(20, 20, 20))
    page.paste(picture, (340, 210))
    found = {t.rule: t.box for t in trim.hypotheses(decode_luma(synthetic.encode(page, "PNG")))}
    assert found["panel"] == trim.Box(210, 340, 660, 940)
