"""Derived hashes: recall of cropped copies against an image's own PDQ hash alone, and against
its hash with its derived hashes (``signals.derived``), at PDQ's threshold of 31 bits; and the
false positives the derived hashes add.

    .venv/bin/python bench/derived.py [--scenes 100] [--photos /work/shared/data/photos]

Images: generated scenes (``media.synthetic.scene``, 640x480 and, with grain, 1024x768) and
the photos of ../shared/data/photos (each reduced to at most 1600 px a side first: "the image"
below is that, encoded as JPEG q95). Queries: each image cropped (the crops the derived hashes
name, and crops between and beyond them that no derived hash names), then encoded as JPEG q85
and hashed as any upload is. Recall is the share of queries within 31 bits of (a) the image's
own hash, (b) its own hash or one of its derived hashes; with Wilson 95 % intervals; and (b)
again among the queries of quality >= 50 alone (the Matcher never matches one below).

False positives: each image's derived hashes against the own hashes of every other image of
its set (scenes: the derived hashes of the first half against the second half's hashes and the
other way round; photos: each against every other), pairs within 31 bits counted, with the
smallest distance seen; and the same for the images' own hashes, as the baseline.
"""

import argparse
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps

from hashguard.media.synthetic import encode, scene
from hashguard.signals.derived import derived_pdq
from hashguard.signals.pdq import DEFAULT_THRESHOLD, PdqHash, PdqSignal

PDQ = PdqSignal()
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
MAX_SIDE = 1600
# name -> percent cut off (top, bottom, left, right); "named" ones are what a derived hash is of.
QUERIES: dict[str, tuple[tuple[int, int, int, int], bool]] = {
    "centre 5 %": ((5, 5, 5, 5), True),
    "centre 10 %": ((10, 10, 10, 10), True),
    "centre 20 %": ((20, 20, 20, 20), True),
    "top 10 %": ((10, 0, 0, 0), True),
    "bottom 10 %": ((0, 10, 0, 0), True),
    "left 10 %": ((0, 0, 10, 0), True),
    "right 10 %": ((0, 0, 0, 10), True),
    "centre 3 %": ((3, 3, 3, 3), False),
    "centre 7 %": ((7, 7, 7, 7), False),
    "centre 15 %": ((15, 15, 15, 15), False),
    "centre 25 %": ((25, 25, 25, 25), False),
    "top 5 %": ((5, 0, 0, 0), False),
    "top 20 %": ((20, 0, 0, 0), False),
    "top-left 10 %": ((10, 0, 10, 0), False),
    "sides 10 % (16:9 to 4:3-ish)": ((0, 0, 10, 10), False),
}


def wilson(hits: int, n: int) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    z = 1.96
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def crop(image: Image.Image, sides: tuple[int, int, int, int]) -> Image.Image:
    top, bottom, left, right = sides
    width, height = image.size
    return image.crop((width * left // 100, height * top // 100,
                       width - width * right // 100, height - height * bottom // 100))  # fmt: skip


def scenes(count: int) -> Iterator[tuple[str, Image.Image]]:
    for seed in range(count):
        if seed % 2:
            yield f"scene {seed}", scene(seed, 1024, 768, grain=6.0)
        else:
            yield f"scene {seed}", scene(seed)


def photos(folder: Path) -> Iterator[tuple[str, Image.Image]]:
    for path in sorted(folder.glob("*.jpg")):
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        yield path.name, image


class Tally:
    def __init__(self) -> None:
        self.n: dict[str, int] = {}
        self.plain: dict[str, int] = {}
        self.derived: dict[str, int] = {}
        self.low: dict[str, int] = {}  # queries of quality < 50: unmatchable on their own side
        self.derived_matchable: dict[str, int] = {}  # hits among queries of quality >= 50

    def add(self, query: str, plain: bool, derived: bool, low: bool) -> None:
        self.n[query] = self.n.get(query, 0) + 1
        self.low[query] = self.low.get(query, 0) + low
        self.derived_matchable[query] = self.derived_matchable.get(query, 0) + (derived and not low)
        self.plain[query] = self.plain.get(query, 0) + plain
        self.derived[query] = self.derived.get(query, 0) + derived


Held = list[tuple[PdqHash, list[PdqHash]]]  # each image's own hash and its derived hashes


def measure(images: Iterator[tuple[str, Image.Image]]) -> tuple[Tally, Held, float]:
    tally = Tally()
    held: Held = []
    spent = 0.0
    for _, image in images:
        data = encode(image, quality=95)
        original = PDQ.hash(data)
        started = time.perf_counter()
        derived = list(derived_pdq(data, original=original).values())
        spent += time.perf_counter() - started
        held.append((original, derived))
        for name, (sides, _) in QUERIES.items():
            query = PDQ.hash(encode(crop(image, sides), quality=85))
            plain = query.distance(original) <= DEFAULT_THRESHOLD
            near = min((query.distance(v) for v in [original, *derived]), default=256)
            tally.add(name, plain, near <= DEFAULT_THRESHOLD, query.low_quality)
    return tally, held, spent


def measure_padded(images: Iterator[tuple[str, Image.Image]]) -> tuple[int, int, int, int]:
    """The listed image is a padded copy (uniform borders of 5-25 % of a side, of one colour);
    the query is the image without them (JPEG q85). (n, queries of quality >= 50, found by the
    own hash alone, found with the derived hashes too)."""
    colours = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (30, 60, 160)]
    n = matchable = plain_hits = derived_hits = 0
    for index, (_, image) in enumerate(images):
        width, height = image.size
        top, bottom = height * (5 + index % 4 * 5) // 100, height * (25 - index % 5 * 5) // 100
        left, right = width * (index % 3 * 10) // 100, width * (5 + index % 2 * 15) // 100
        padded = Image.new("RGB", (width + left + right, height + top + bottom),
                           colours[index % len(colours)])  # fmt: skip
        padded.paste(image, (left, top))
        data = encode(padded, quality=95)
        original = PDQ.hash(data)
        derived = list(derived_pdq(data, original=original).values())
        query = PDQ.hash(encode(image, quality=85))
        n += 1
        matchable += not query.low_quality
        plain_hits += query.distance(original) <= DEFAULT_THRESHOLD
        near = min(query.distance(v) for v in [original, *derived])
        derived_hits += near <= DEFAULT_THRESHOLD
    return n, matchable, plain_hits, derived_hits


def false_positives(held: Held, halves: bool) -> tuple[int, int, int, int, int, int]:
    """(pairs, within 31, closest) for derived hashes vs other images' own hashes, then the
    same for own hashes vs own hashes (the baseline)."""
    pairs = hits = 0
    closest = 256
    base_pairs = base_hits = 0
    base_closest = 256
    middle = len(held) // 2
    for i, (own, derived) in enumerate(held):
        others = range(middle, len(held)) if halves and i < middle else (
            range(middle) if halves else range(len(held)))  # fmt: skip
        for j in others:
            if j == i:
                continue
            other = held[j][0]
            for value in derived:
                distance = value.distance(other)
                pairs += 1
                hits += distance <= DEFAULT_THRESHOLD
                closest = min(closest, distance)
            if j > i or halves:
                distance = own.distance(other)
                base_pairs += 1
                base_hits += distance <= DEFAULT_THRESHOLD
                base_closest = min(base_closest, distance)
    return pairs, hits, closest, base_pairs, base_hits, base_closest


def report(title: str, tally: Tally, held: Held, spent: float,
           halves: bool) -> None:  # fmt: skip
    kept = sum(len(d) for _, d in held)
    print(f"\n## {title}: {len(held)} images, {kept} derived hashes kept "
          f"({kept / max(1, len(held)):.1f} per image; {spent / max(1, len(held)) * 1000:.0f} ms "
          "each, from one decode)\n")  # fmt: skip
    print("| crop (then JPEG q85) | named by a derived hash | n | own hash alone | "
          "own + derived (95 % CI) | queries of quality >= 50: n, own + derived |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, (_, named) in QUERIES.items():
        n = tally.n.get(name, 0)
        plain, derived = tally.plain.get(name, 0), tally.derived.get(name, 0)
        low, high = wilson(derived, n)
        matchable = n - tally.low.get(name, 0)
        share = tally.derived_matchable.get(name, 0) / matchable if matchable else 0.0
        print(f"| {name} | {'yes' if named else 'no'} | {n} | {plain / n:.1%} | "
              f"{derived / n:.1%} ({low:.1%}-{high:.1%}) | {matchable}, {share:.1%} |")  # fmt: skip
    pairs, hits, closest, base_pairs, base_hits, base_closest = false_positives(held, halves)
    print(f"\nfalse positives: derived hashes vs other images' own hashes: {hits} of {pairs} "
          f"pairs within {DEFAULT_THRESHOLD} bits (closest {closest}); own vs own: {base_hits} "
          f"of {base_pairs} (closest {base_closest})")  # fmt: skip
    if hits == 0 and pairs:
        print(f"(0 in {pairs} pairs: per-pair rate <= {3 / pairs:.1e} at 95 %, rule of three)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=100)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    args = parser.parse_args()
    print(f"# Derived hashes: recall of crops at d <= {DEFAULT_THRESHOLD}")
    if args.scenes > 1:
        tally, held, spent = measure(scenes(args.scenes))
        report("generated scenes", tally, held, spent, halves=True)
        n, matchable, plain, derived = measure_padded(scenes(args.scenes))
        print(f"\nlisted padded (uniform borders, 5-25 %), query without them: {n} scenes "
              f"({matchable} of quality >= 50): own hash alone {plain / n:.1%}, own + derived "
              f"(trim-*) {derived / n:.1%}")  # fmt: skip
    if args.photos.is_dir():
        tally, held, spent = measure(photos(args.photos))
        report(f"photos ({args.photos})", tally, held, spent, halves=False)
    else:
        print(f"\n(no photos: {args.photos} is not a directory)", file=sys.stderr)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
