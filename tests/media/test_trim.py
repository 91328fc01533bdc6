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
