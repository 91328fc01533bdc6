"""Recall of trimmed query variants on padded, letterboxed and UI-framed copies, and their cost.

Originals: the photos in ../shared/data/photos (when present, shrunk to 1024 px a side) and
generated scenes; copies by ``synthetic.pad``, ``letterbox`` and ``in_ui_frame``, a phone
screenshot drawn here (a caption and a nav bar below the image), and a post in a feed (a card
of one colour on a page of another). Each copy is encoded as JPEG
q90; it counts as found when the plain PDQ of the copy, or of one of its trim hypotheses, is
within 31 bits of the original's plain PDQ.
Prints recall per transformation for plain PDQ, each rule alone and all rules together, and
the time trim.hypotheses takes on a 1 MP plane.

    PYTHONPATH=src python bench/trim.py [--scenes 60] [--photos DIR]
"""

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hashguard.media import synthetic, trim
from hashguard.media.image import decode_luma
from hashguard.signals.pdq import REDUCED_MIN_SIDE, PdqHash, hash_luma

RGB = tuple[int, int, int]
THRESHOLD = 31


def phone_frame(image: Image.Image, seed: int) -> Image.Image:
    """A phone-like screenshot: status bar, toolbar and title, the image, caption, nav bar."""
    rng = np.random.default_rng(seed)
    dark = bool(rng.integers(0, 2))
    background = (18, 18, 18) if dark else (250, 250, 250)
    ink = (230, 230, 230) if dark else (20, 20, 20)
    width = 720
    margin = int(rng.integers(0, 40))
    shown = image.resize(
        (width - 2 * margin, round((width - 2 * margin) * image.height / image.width))
    )
    status, toolbar, caption, nav = 48, 112, int(rng.integers(60, 200)), 96
    height = status + toolbar + shown.height + caption + nav + 2 * margin
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=28)
    bar = tuple(int(c) for c in rng.integers(0, 256, size=3))
    draw.rectangle((0, 0, width, status), fill=(0, 0, 0) if dark else bar)
    draw.text((20, 8), "12:34", fill=(255, 255, 255), font=font)
    draw.rectangle((width - 90, 14, width - 30, 34), fill=(255, 255, 255))
    draw.rectangle((0, status, width, status + toolbar), fill=bar)
    draw.text((90, status + 38), f"Album {seed}", fill=(255, 255, 255), font=font)
    draw.rectangle((24, status + 40, 56, status + 72), fill=(255, 255, 255))
    top = status + toolbar + margin
    canvas.paste(shown, (margin, top))
    y = top + shown.height + margin + 16
    draw.text((24, y), f"Photo {seed} shared by someone, 3 likes", fill=ink, font=font)
    draw.rectangle((0, height - nav, width, height), fill=background)
    for x in (width // 6, width // 2, 5 * width // 6):
        draw.ellipse((x - 20, height - nav + 28, x + 20, height - nav + 68), outline=ink, width=4)
    return canvas


def card_frame(image: Image.Image, seed: int) -> Image.Image:
    """A feed's post: a card of one colour on a page of another, an author line and text above
    the picture (which spans the card's width), actions and comments below."""
    rng = np.random.default_rng(seed)
    dark = bool(rng.integers(0, 2))
    page, card = ((24, 25, 26), (36, 37, 38)) if dark else ((240, 242, 245), (255, 255, 255))
    ink = (228, 230, 235) if dark else (20, 20, 20)
    width, card_width = 1280, int(rng.integers(500, 700))
    shown = image.resize((card_width, round(card_width * image.height / image.width)))
    left, top = (width - card_width) // 2, 90
    above, below = int(rng.integers(90, 160)), int(rng.integers(120, 260))
    height = top + above + shown.height + below + 40
    canvas = Image.new("RGB", (width, height), page)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=20)
    draw.rectangle((0, 0, width, 56), fill=(24, 119, 242))
    draw.rectangle((left, top, left + card_width, height - 40), fill=card)
    draw.ellipse((left + 16, top + 16, left + 56, top + 56), fill=(120, 160, 200))
    draw.text((left + 68, top + 24), f"Someone {seed} shared a photo", fill=ink, font=font)
    draw.text((left + 16, top + above - 32), "what a day it was", fill=ink, font=font)
    canvas.paste(shown, (left, top + above))
    y = top + above + shown.height + 20
    draw.text((left + 16, y), "Like   Comment   Share", fill=ink, font=font)
    draw.text((left + 16, y + 48), "a comment below the picture", fill=ink, font=font)
    return canvas


def originals(scenes: int, photos: Path | None) -> list[Image.Image]:
    found: list[Image.Image] = []
    if photos is not None and photos.is_dir():
        for path in sorted(photos.glob("*.jpg")):
            with Image.open(path) as image:
                image.draft("RGB", (1024, 1024))
                image = image.convert("RGB")
                image.thumbnail((1024, 1024))
                found.append(image)
    rng = np.random.default_rng(7)
    for seed in range(scenes):
        width, height = [(640, 480), (480, 640), (800, 450), (600, 600)][seed % 4]
        found.append(synthetic.scene(1000 + seed, width, height, grain=float(rng.uniform(0, 6))))
    return found


def transforms() -> dict[str, Callable[[Image.Image, int], Image.Image]]:
    colours: dict[str, Callable[[int], RGB]] = {
        "black": lambda seed: (0, 0, 0),
        "white": lambda seed: (255, 255, 255),
        "colour": lambda seed: tuple(  # type: ignore[return-value]
            int(c) for c in np.random.default_rng(seed).integers(0, 256, size=3)
        ),
    }
    found: dict[str, Callable[[Image.Image, int], Image.Image]] = {}
    for name, colour in colours.items():
        for share in (0.10, 0.25):
            found[f"pad {share:.0%} {name}"] = lambda im, seed, s=share, c=colour: synthetic.pad(
                im, s, c(seed)
            )
        for label, aspect in (("16:9", 16 / 9), ("square", 1.0), ("9:16", 9 / 16)):
            found[f"letterbox {label} {name}"] = lambda im, seed, a=aspect, c=colour: (
                synthetic.letterbox(im, a, c(seed))
            )
    found["ui frame (synthetic)"] = synthetic.in_ui_frame
    found["ui frame (phone, here)"] = phone_frame
    found["card in a feed"] = card_frame
    return found


def variants(data: bytes) -> dict[str, PdqHash]:
    luma = decode_luma(data, min_side=REDUCED_MIN_SIDE)
    hashes = {"plain": hash_luma(luma)}
    for hypothesis in trim.hypotheses(luma):
        hashes[hypothesis.rule] = hash_luma(trim.crop(luma, hypothesis.box))
    return hashes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    args = parser.parse_args()
    images = originals(args.scenes, args.photos)
    listed = [hash_luma(decode_luma(synthetic.encode(im, "PNG"))) for im in images]
    approaches = ("plain", *trim.RULES, "all")
    print(f"{len(images)} originals; found at distance <= {THRESHOLD}")
    print(f"{'transformation':26}" + "".join(f"{a:>9}" for a in approaches))
    for name, transform in transforms().items():
        counts = dict.fromkeys(approaches, 0)
        for seed, (image, original) in enumerate(zip(images, listed, strict=True)):
            copy = transform(image, seed)
            buffer = io.BytesIO()
            copy.save(buffer, "JPEG", quality=90)
            hashes = variants(buffer.getvalue())
            close = {k: v.distance(original) <= THRESHOLD for k, v in hashes.items()}
            for approach in ("plain", *trim.RULES):
                counts[approach] += close.get(approach, False)
            counts["all"] += any(close.values())
        row = "".join(f"{100 * counts[a] / len(images):8.1f}%" for a in approaches)
        print(f"{name:26}{row}")
    square = images[-1].resize((1000, 1000))
    plane = decode_luma(synthetic.encode(synthetic.pad(square, 0.1, (0, 0, 0))))
    trim.hypotheses(plane)
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        trim.hypotheses(plane)
    took = (time.perf_counter() - start) / runs * 1000
    print(f"trim.hypotheses on {plane.width}x{plane.height}: {took:.2f} ms")


if __name__ == "__main__":
    main()
