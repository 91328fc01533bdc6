"""PDQ hashing speed, single core, side by side with the reference implementations.

    make bench            # or: .venv/bin/python bench/hashing.py [--passes N]

Measures photos/s on ../shared/data/photos (all, and those of 3 MP and more) and on generated
12-megapixel JPEGs, for:
  (a) ThreatExchange ``PdqSignal.hash_from_file`` (what HMA runs),
  (b) a full-resolution Pillow decode + ``pdqhash.compute`` (Meta's C++ PDQ),
  (c) hashguard ``PdqSignal.hash`` (reduced JPEG decoding + its own PDQ),
all reading the same files, in the same run, pinned to one core. Then the share of hashguard's
time spent decoding, its throughput over 2 processes, its distance to (b) on the same files, and
what the stability score and the flat/text measure (both part of (c)) cost per image, and what
an upload costs hashed with the query variants of the default list policy (rotations and flips,
trimmed borders, and for images of 640 px or less an enlargement) against its plain hash.
"""

import os

# One core means one BLAS thread too; set before numpy loads.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pdqhash
from PIL import Image
from threatexchange.signal_type.pdq.signal import PdqSignal as TePdqSignal

from hashguard.media.image import decode_luma
from hashguard.media.synthetic import encode, scene
from hashguard.signals import pdq_kernel
from hashguard.signals.batch import HashSettings, hash_paths
from hashguard.signals.pdq import REDUCED_MIN_SIDE, PdqHash, PdqSignal, flatness, pdq_dct, stability

SHARED_DATA = Path(
    os.environ.get("HASHGUARD_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
PHOTOS = SHARED_DATA / "photos"
HASHGUARD = PdqSignal()


def threatexchange(path: Path) -> str:
    return str(TePdqSignal.hash_from_file(path))


def full_decode_pdqhash(path: Path) -> PdqHash:
    image = Image.open(path).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(image))
    return PdqHash(np.packbits(bits).tobytes(), int(quality))


def hashguard(path: Path) -> PdqHash:
    return HASHGUARD.hash(path.read_bytes())


def naive_reduced(path: Path) -> PdqHash:
    """The same reduced decode, then the box filter re-run on the small image: what one might
    do instead of the weighted map (for comparison only)."""
    luma = decode_luma(path.read_bytes(), min_side=REDUCED_MIN_SIDE)
    buffer = pdq_kernel.exact_64x64(luma.pixels)
    bits = pdq_kernel.hash_bits(pdq_kernel.dct_16x16(buffer, pdq_kernel.DCT_16X64))
    return PdqHash(bits.tobytes(), int(pdq_kernel.quality(buffer)))


def hashguard_decode_only(path: Path) -> object:
    return decode_luma(path.read_bytes(), min_side=REDUCED_MIN_SIDE)


def measures_ms(files: list[Path], passes: int) -> float:
    """Milliseconds per image for the stability score and the flat/text measure alone, on
    planes decoded beforehand (fastest of ``passes``)."""
    planes = []
    for path in files:
        luma = decode_luma(path.read_bytes(), min_side=REDUCED_MIN_SIDE)
        dct, _ = pdq_dct(luma)
        if dct is not None:
            planes.append((luma, pdq_kernel.hash_bits(dct)))
    stability(*planes[0])
    flatness(planes[0][0])
    best = math.inf
    for _ in range(passes):
        start = time.perf_counter()
        for luma, bits in planes:
            stability(luma, bits)
            flatness(luma)
        best = min(best, time.perf_counter() - start)
    return 1000 * best / max(1, len(planes))


def variants_ms(files: list[Path], passes: int) -> tuple[float, float]:
    """Milliseconds per image for the plain PDQ hash and for the default list policy's query
    variants (``hash_variants`` with every family), fastest of ``passes``."""
    from hashguard.lists.model import DEFAULT_VARIANTS
    from hashguard.signals.pdq_variants import hash_variants

    blobs = [path.read_bytes() for path in files]
    plain = PdqSignal()
    timed = []
    for method in (plain.hash, lambda data: hash_variants(data, DEFAULT_VARIANTS)):
        method(blobs[0])
        best = math.inf
        for _ in range(passes):
            start = time.perf_counter()
            for data in blobs:
                method(data)
            best = min(best, time.perf_counter() - start)
        timed.append(1000 * best / len(blobs))
    return timed[0], timed[1]


def seconds_per_pass(method: Callable[[Path], object], files: list[Path], passes: int) -> float:
    """Fastest of ``passes`` timed passes over all files (after one warm-up call)."""
    method(files[0])
    times = []
    for _ in range(passes):
        start = time.perf_counter()
        for path in files:
            method(path)
        times.append(time.perf_counter() - start)
    return min(times)


def megapixels(path: Path) -> float:
    with Image.open(path) as image:
        return image.width * image.height / 1e6


def generated(
    directory: Path, name: str, count: int, size: tuple[int, int], quality: int, seeds: int
) -> list[Path]:
    """``count`` generated scenes of ``size`` as JPEGs of ``quality`` (seeds from ``seeds``)."""
    files = []
    for seed in range(seeds, seeds + count):
        path = directory / f"{name}-{seed}.jpg"
        grain = 6 if size[0] > 1000 else 3
        path.write_bytes(encode(scene(seed, *size, grain=grain), "JPEG", quality=quality))
        files.append(path)
    return files


def conformance(files: list[Path], method: Callable[[Path], PdqHash]) -> str:
    distances = []
    for path in files:
        reference = full_decode_pdqhash(path)
        if reference.quality is not None and reference.quality >= 80:
            distances.append(method(path).distance(reference))
    if not distances:
        return "no image of quality >= 80"
    return (
        f"{len(distances)} images of quality >= 80: mean {statistics.mean(distances):.2f}, "
        f"p95 {np.percentile(distances, 95):.1f}, max {max(distances)} bits"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3, help="timed passes per method (best)")
    parser.add_argument("--generated", type=int, default=8, help="generated 12 MP JPEGs")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    with tempfile.TemporaryDirectory() as tmp:
        sets: dict[str, list[Path]] = {}
        if PHOTOS.is_dir():
            photos = sorted(PHOTOS.glob("*.jpg"))
            sets["shared photos, all"] = photos
            sets["shared photos >= 3 MP"] = [p for p in photos if megapixels(p) >= 3]
        else:
            print(f"note: {PHOTOS} absent; measuring generated images only", file=sys.stderr)
        sets["generated 12 MP JPEGs"] = generated(
            Path(tmp), "12mp", args.generated, (4000, 3000), 90, 1000
        )
        sets["generated 1 MP JPEGs"] = generated(
            Path(tmp), "1mp", args.generated, (1155, 866), 90, 2000
        )

        print("| set | images | mean MP | (a) TE PdqSignal | (b) decode+pdqhash | hashguard "
              "| vs (a) | vs (b) | decode share |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        for name, files in sets.items():
            ref_passes = max(1, args.passes - 1)
            a = seconds_per_pass(threatexchange, files, ref_passes)
            b = seconds_per_pass(full_decode_pdqhash, files, ref_passes)
            c = seconds_per_pass(hashguard, files, args.passes)
            decode = seconds_per_pass(hashguard_decode_only, files, args.passes)
            n = len(files)
            mean_mp = statistics.mean(megapixels(p) for p in files)
            print(
                f"| {name} | {n} | {mean_mp:.1f} | {n / a:.1f}/s | {n / b:.1f}/s | {n / c:.1f}/s "
                f"| {a / c:.1f}x | {b / c:.1f}x | {100 * decode / c:.0f} % |"
            )
        print()
        for name, files in sets.items():
            settings = HashSettings(("pdq",))
            start = time.perf_counter()
            for _ in hash_paths([str(p) for p in files], settings, jobs=1):
                pass
            one = time.perf_counter() - start
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
            start = time.perf_counter()
            for _ in hash_paths([str(p) for p in files], settings, jobs=2):
                pass
            two = time.perf_counter() - start
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
            print(
                f"{name}: `hashguard hash --jobs 1` (one worker) {len(files) / one:.1f}/s, "
                f"`--jobs 2` {len(files) / two:.1f}/s ({one / two:.2f}x)"
            )
        print()
        for name, files in sets.items():
            extra = measures_ms(files, args.passes)
            total = 1000 * seconds_per_pass(hashguard, files, args.passes) / len(files)
            print(
                f"{name}: stability + flat/text measure {extra:.2f} ms per image, "
                f"{100 * extra / total:.0f} % of hashguard's {total:.1f} ms"
            )
        print()
        # Images of 512 px, as messaging apps and thumbnails send them (the enlarged variant).
        small = {
            "generated 512 px JPEGs": generated(
                Path(tmp), "512", 4 * args.generated, (512, 384), 85, 3000
            )
        }
        for name, files in (sets | small).items():
            plain_ms, variants = variants_ms(files, args.passes)
            print(
                f"{name}: plain PDQ {plain_ms:.1f} ms, with the default query variants "
                f"{variants:.1f} ms per image ({variants / plain_ms:.1f}x)"
            )
        print()
        for name, files in sets.items():
            print(f"{name}: hashguard's distance to (b): {conformance(files, hashguard)}")
            print(f"{name}: naive reduced decode's: {conformance(files, naive_reduced)}")


if __name__ == "__main__":
    main()
