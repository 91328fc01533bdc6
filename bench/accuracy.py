"""Accuracy: recall per transformation at the deployment threshold, and false positives.

    make bench-accuracy   # or: .venv/bin/python bench/accuracy.py [--out docs/accuracy.md]

In the style of Thorn's perception benchmark (a row per transformation, not one number), but at
the threshold every deployment uses (PDQ distance <= 31), never a threshold tuned per transform.

Originals: ../shared/data/photos (and any ``--photos DIR``), reduced to at most 1024 px a side
and stored as JPEG q95, plus generated scenes (``synthetic.scene``, a grain that varies by
seed, one in five portrait). Originals of PDQ quality < 50 are left out (counted). Each
original is split photo-like or graphics by one rule: graphics when at least 40 % of the 4x4
blocks of its 256 px grey thumbnail (after a 3x3 median, which removes grain) vary by at most
2 grey levels (flat fills, smooth vector gradients).

Every original is transformed (the ``TRANSFORMS`` table; lossless BMP unless the transform is
a JPEG re-encoding) and its copy is matched two ways:
  plain PDQ   the copy's PDQ hash against the original's, distance <= 31: what HMA does;
  hashguard   the real code path with the defaults: the copy hashed as the service hashes an
              upload (``hash_stream``, ``Query.of``), with the variants the default
              ``ListPolicy()`` lets match, by a ``Matcher`` over a list of every original's
              hash (an in-memory ListSource). A match counts when it names the copy's own
              original (a match to another original is counted as a wrong match).
Recall comes with n, a Wilson 95 % interval, the median and 90th percentile distance (plain:
the copy's hash; hashguard: its closest variant), per set and split photo-like / graphics.

False positives: every pair of distinct originals, plain (distance <= 31), and through the
Matcher with every query variant on (the pair counts when either image's query matches the
other's entry); hard negatives generated in kind, all pairs within a kind. The bound is a
one-sided 95 % upper bound on the per-pair rate: 3/N when none (the rule of three), else
Clopper-Pearson. Videos: generated clips (a scene panned), re-encoded, resized, trimmed and at
another frame rate, matched at the vPDQ defaults through the Matcher.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import io
import math
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from hashguard.lists.model import (
    Category,
    Entry,
    EntryStatus,
    HashList,
    ListPolicy,
    Provenance,
    new_entry,
)
from hashguard.matching import Matcher
from hashguard.matching.query import Query
from hashguard.media import synthetic
from hashguard.media.limits import DEFAULT_LIMITS
from hashguard.signals import registry
from hashguard.signals.batch import hash_stream
from hashguard.signals.pdq import DEFAULT_THRESHOLD, MIN_QUALITY, MIN_STABILITY, PdqHash

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import table

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HASHGUARD_SHARED_DATA", REPOSITORY.parent / "shared" / "data"))
PHOTOS = SHARED_DATA / "photos"
THRESHOLD = int(DEFAULT_THRESHOLD)
LONG_SIDE = 1024  # originals from the photo sets are reduced to this, as a platform stores them
GRAPHICS_FLAT_SHARE = 0.4
BEGIN, END = "<!-- accuracy:begin -->", "<!-- accuracy:end -->"

Canvas = Image.Image
Colour = tuple[int, int, int]
BLACK: Colour = (0, 0, 0)
WHITE: Colour = (255, 255, 255)
BLUE: Colour = (40, 70, 160)


# --- transformations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transform:
    name: str
    group: str
    edit: Callable[[Canvas], Canvas]
    # Saved as JPEG at this quality, else losslessly as BMP (the same pixels as a PNG, and
    # ten times cheaper to write and decode).
    jpeg: int | None = None


def _resize(factor: float) -> Callable[[Canvas], Canvas]:
    def edit(image: Canvas) -> Canvas:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.Resampling.LANCZOS)

    return edit


def _crop_centred(fraction: float) -> Callable[[Canvas], Canvas]:
    """``fraction`` of the width cut from the left and from the right, of the height from the
    top and from the bottom (as Thorn's benchmark and ``signals.derived`` crop)."""

    def edit(image: Canvas) -> Canvas:
        dx, dy = round(image.width * fraction), round(image.height * fraction)
        return image.crop((dx, dy, image.width - dx, image.height - dy))

    return edit


def _crop_right(image: Canvas) -> Canvas:
    return image.crop((0, 0, image.width - round(image.width * 0.1), image.height))


def _rotate(degrees: float) -> Callable[[Canvas], Canvas]:
    def edit(image: Canvas) -> Canvas:
        return image.rotate(degrees, Image.Resampling.BICUBIC, expand=False, fillcolor=BLACK)

    return edit


def _then(*edits: Callable[[Canvas], Canvas]) -> Callable[[Canvas], Canvas]:
    def edit(image: Canvas) -> Canvas:
        for each in edits:
            image = each(image)
        return image

    return edit


def _jpeg_round_trip(quality: int) -> Callable[[Canvas], Canvas]:
    def edit(image: Canvas) -> Canvas:
        return Image.open(io.BytesIO(synthetic.encode(image, "JPEG", quality=quality)))

    return edit


def _same(image: Canvas) -> Canvas:
    return image


def _blur(image: Canvas) -> Canvas:
    return image.filter(ImageFilter.GaussianBlur(2))


def _turned(how: Image.Transpose) -> Callable[[Canvas], Canvas]:
    def edit(image: Canvas) -> Canvas:
        return image.transpose(how)

    return edit


def _padded(fraction: float, colour: Colour) -> Callable[[Canvas], Canvas]:
    """``fraction`` of the width added left and right, of the height above and below."""

    def edit(image: Canvas) -> Canvas:
        return synthetic.pad(image, fraction, colour)

    return edit


def _boxed(aspect: tuple[int, int], colour: Colour) -> Callable[[Canvas], Canvas]:
    """The image between bars to the ``aspect`` ratio (width, height)."""

    def edit(image: Canvas) -> Canvas:
        return synthetic.letterbox(image, aspect, colour)

    return edit


def _screenshot(seed: int) -> Callable[[Canvas], Canvas]:
    """The image in an app's frame: a phone's (even seeds) or a desktop's (odd seeds)."""

    def edit(image: Canvas) -> Canvas:
        return synthetic.in_ui_frame(image, seed)

    return edit


def _stretched(image: Canvas) -> Canvas:
    return image.resize((round(image.width * 1.25), image.height), Image.Resampling.LANCZOS)


DIHEDRAL = "rotations and mirrors"


TRANSFORMS: tuple[Transform, ...] = (
    Transform("JPEG q70", "re-encoding", _same, 70),
    Transform("JPEG q30", "re-encoding", _same, 30),
    Transform("resize 50 %", "re-encoding", _resize(0.5)),
    Transform("resize 25 %", "re-encoding", _resize(0.25)),
    Transform("blur (Gaussian, r=2)", "re-encoding", _blur),
    Transform("greyscale", "colour", lambda i: i.convert("L")),
    Transform("brightness +30 %", "colour", lambda i: ImageEnhance.Brightness(i).enhance(1.3)),
    Transform("contrast -30 %", "colour", lambda i: ImageEnhance.Contrast(i).enhance(0.7)),
    Transform("rotate 90", DIHEDRAL, _turned(Image.Transpose.ROTATE_90)),
    Transform("rotate 180", DIHEDRAL, _turned(Image.Transpose.ROTATE_180)),
    Transform("rotate 270", DIHEDRAL, _turned(Image.Transpose.ROTATE_270)),
    Transform("mirror (left-right)", DIHEDRAL, _turned(Image.Transpose.FLIP_LEFT_RIGHT)),
    Transform("mirror (top-bottom)", DIHEDRAL, _turned(Image.Transpose.FLIP_TOP_BOTTOM)),
    Transform("pad 10 % black", "borders", _padded(0.10, BLACK)),
    Transform("pad 10 % white", "borders", _padded(0.10, WHITE)),
    Transform("pad 10 % coloured", "borders", _padded(0.10, BLUE)),
    Transform("pad 25 % black", "borders", _padded(0.25, BLACK)),
    Transform("pad 25 % white", "borders", _padded(0.25, WHITE)),
    Transform("pad 25 % coloured", "borders", _padded(0.25, BLUE)),
    Transform("letterbox to 16:9 black", "borders", _boxed((16, 9), BLACK)),
    Transform("letterbox to 16:9 white", "borders", _boxed((16, 9), WHITE)),
    Transform("letterbox to square black", "borders", _boxed((1, 1), BLACK)),
    Transform("letterbox to square white", "borders", _boxed((1, 1), WHITE)),
    Transform("letterbox to square coloured", "borders", _boxed((1, 1), BLUE)),
    Transform("screenshot, phone (in a UI frame)", "borders", _screenshot(0)),
    Transform("screenshot, desktop (in a UI frame)", "borders", _screenshot(1)),
    Transform("watermark (text)", "overlays", lambda i: synthetic.watermark(i, "example.org")),
    Transform("caption bar 15 %", "overlays", lambda i: synthetic.caption_bar(i, 0.15)),
    Transform("crop 5 % centred", "crops and geometry", _crop_centred(0.05)),
    Transform("crop 10 % centred", "crops and geometry", _crop_centred(0.10)),
    Transform("crop 20 % centred", "crops and geometry", _crop_centred(0.20)),
    Transform("crop 10 % one side", "crops and geometry", _crop_right),
    Transform("rotate 3°", "crops and geometry", _rotate(3)),
    Transform("rotate 10°", "crops and geometry", _rotate(10)),
    Transform("aspect stretch (width x1.25)", "crops and geometry", _stretched),
    Transform("resize 50 % + JPEG q70", "combinations", _resize(0.5), 70),
    Transform("resize 50 % + pad 10 % black + JPEG q70", "combinations",
              _then(_resize(0.5), _padded(0.10, BLACK)), 70),
    Transform("mirror + greyscale + JPEG q70", "combinations",
              _then(_turned(Image.Transpose.FLIP_LEFT_RIGHT), lambda i: i.convert("L")), 70),
    Transform("screenshot, phone + JPEG q70", "combinations", _screenshot(0), 70),
    Transform("JPEG q70 + crop 5 % + resize 50 %", "combinations",
              _then(_jpeg_round_trip(70), _crop_centred(0.05), _resize(0.5))),
)  # fmt: skip
QUICK = ("JPEG q70", "rotate 90", "pad 10 % black", "crop 10 % centred")
CROPS = ("crop 5 % centred", "crop 10 % centred", "crop 20 % centred", "crop 10 % one side")


def saved(transform: Transform, image: Canvas) -> bytes:
    """The transformed copy as a platform would receive it."""
    edited = transform.edit(image)
    if transform.jpeg is not None:
        return synthetic.encode(edited.convert("RGB"), "JPEG", quality=transform.jpeg)
    return synthetic.encode(edited, "BMP")


# --- hashing as the service does -------------------------------------------------------------


def service_hashes(data: bytes, signal: str = "pdq") -> list[tuple[str, Any]]:
    """The file hashed as the service hashes an upload matched on lists of the default policy
    (all the variants it lets match), as (signal name, value) pairs for ``Query.of``."""
    families = ListPolicy().variants
    hashed = hash_stream(
        io.BytesIO(data), len(data), [registry.get(signal)], DEFAULT_LIMITS, families
    )
    return [(kind.name, value) for kind, value in hashed.values]


def plain_of(values: Sequence[tuple[str, Any]]) -> PdqHash:
    """The query's own PDQ hash (no variant): what HMA matches."""
    hashed = Query.of(values).get("pdq")
    assert hashed is not None and isinstance(hashed.value, PdqHash)
    return hashed.value


def variant_bits(query: Query) -> np.ndarray:
    """Every PDQ key the query looks up (its variants, the original first), as uint8 rows."""
    hashed = query.get("pdq")
    assert hashed is not None
    return np.frombuffer(b"".join(hashed.keys()), np.uint8).reshape(-1, 32)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between the rows of ``a`` (n x 32 uint8) and of ``b`` (m x 32)."""
    out = np.empty((len(a), len(b)), np.int32)
    for start in range(0, len(a), 256):
        block = a[start : start + 256, None, :] ^ b[None, :, :]
        out[start : start + 256] = np.bitwise_count(block).sum(axis=2, dtype=np.int32)
    return out


# --- originals ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Original:
    name: str
    set: str  # "photos" (or the --photos directory's name) or "scenes"
    kind: str  # "photo-like" or "graphics"
    data: bytes  # JPEG q95, the listed image
    values: tuple[tuple[str, Any], ...]  # as the service hashes it

    @property
    def hash(self) -> PdqHash:
        return plain_of(self.values)


def flat_share(image: Canvas) -> float:
    """The share of 4x4 blocks of the 256 px grey thumbnail (3x3 median) within 2 grey levels."""
    grey = image.convert("L")
    grey.thumbnail((256, 256))
    pixels = np.asarray(grey.filter(ImageFilter.MedianFilter(3)), np.int16)
    h, w = pixels.shape[0] // 4 * 4, pixels.shape[1] // 4 * 4
    blocks = pixels[:h, :w].reshape(h // 4, 4, w // 4, 4).transpose(0, 2, 1, 3).reshape(-1, 16)
    return float(((blocks.max(axis=1) - blocks.min(axis=1)) <= 2).mean())


def _photo(path: Path) -> Canvas:
    with Image.open(path) as opened:
        opened.draft("RGB", (LONG_SIDE, LONG_SIDE))
        image = opened.convert("RGB")
    image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
    return image


def _scene(seed: int) -> Canvas:
    width, height = (480, 640) if seed % 5 == 0 else (640, 480)
    return synthetic.scene(seed, width, height, grain=(0.0, 3.0, 6.0, 10.0)[seed % 4])


def _prepare(source: tuple[str, str, str | int | tuple[str, int]]) -> Original:
    name, set_name, where = source
    if isinstance(where, tuple):  # a generated hard-negative kind and seed
        image = synthetic.HARD_NEGATIVES[where[0]](where[1]).convert("RGB")
    else:
        image = _scene(where) if isinstance(where, int) else _photo(Path(where))
    data = synthetic.encode(image, "JPEG", quality=95)
    kind = "graphics" if flat_share(image) >= GRAPHICS_FLAT_SHARE else "photo-like"
    return Original(name, set_name, kind, data, tuple(service_hashes(data)))


# --- the process pool ---------------------------------------------------------------------------

# A list entry as hashguard lists an image: the owner (the original it was hashed from), the
# signal, the value, and the stability measured when it was hashed (entries below the floor
# do not match, as in a real list).
Listed = tuple[int, str, str, int | None]

_ORIGINALS: list[Original] = []  # forked workers inherit them


def _pool(jobs: int) -> ProcessPoolExecutor | None:
    if jobs <= 0:
        return None
    return ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"))


def _mapped(
    pool: ProcessPoolExecutor | None, work: Callable[[Any], Any], items: Sequence[Any]
) -> Iterator[Any]:
    if pool is None:
        yield from map(work, items)
    else:
        yield from pool.map(work, items, chunksize=1)


def _hash_copies(task: tuple[int, tuple[str, ...]]) -> list[tuple[str, list[tuple[str, Any]]]]:
    index, names = task
    image = Image.open(io.BytesIO(_ORIGINALS[index].data)).convert("RGB")
    by_name = {t.name: t for t in TRANSFORMS}
    return [(name, service_hashes(saved(by_name[name], image))) for name in names]


# --- lists in memory ----------------------------------------------------------------------------


class MemoryLists:
    """A ListSource of fixed lists held in memory (no change log)."""

    def __init__(self) -> None:
        self._lists: dict[str, tuple[HashList, list[Entry]]] = {}
        self._next = 1
        self.owner: dict[int, int] = {}  # entry id -> the original (or image) it was hashed from

    def add(self, name: str, values: Iterable[Listed], policy: ListPolicy) -> None:
        """A list ``name`` of (owner, signal, canonical value, stability) entries."""
        hash_list = HashList(len(self._lists) + 1, name, "bench", Category.TEST, policy=policy)
        entries = []
        for owner, signal, value, stability in values:
            entries.append(
                new_entry(self._next, hash_list.id, signal, value, frozenset(), Provenance(),
                          EntryStatus.ACTIVE, 0, stability)
            )  # fmt: skip
            self.owner[self._next] = owner
            self._next += 1
        self._lists[name] = (hash_list, entries)

    def entries(
        self, name: str, statuses: Iterable[EntryStatus] | None = None
    ) -> tuple[HashList, Iterator[Entry]]:
        hash_list, entries = self._lists[name]
        return hash_list, iter(entries)

    def changes_since(self, name: str, version: int, limit: int | None = None) -> Iterator[Any]:
        return iter(())


def _entry(owner: int, value: PdqHash) -> Listed:
    return owner, "pdq", registry.get("pdq").canonical_of(value), value.stability


def _listed(originals: Sequence[Original]) -> list[Listed]:
    return [_entry(i, o.hash) for i, o in enumerate(originals)]


def _derived_listed(originals: Sequence[Original]) -> list[Listed]:
    """The originals' hashes and their derived hashes (``signals.derived``: crops)."""
    from hashguard.signals.derived import derived_pdq

    rows = []
    for i, original in enumerate(originals):
        derived = derived_pdq(original.data, original=original.hash)
        rows.extend(_entry(i, v) for v in (original.hash, *derived.values()))
    return rows


# --- statistics ---------------------------------------------------------------------------------


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score 95 % interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def upper_bound(hits: int, n: int) -> float:
    """One-sided 95 % upper bound on a rate: 3/n when nothing was seen (the rule of three),
    else Clopper-Pearson (the p at which seeing at most ``hits`` has probability 5 %)."""
    if n == 0:
        return 1.0
    if hits == 0:
        return min(1.0, 3 / n)

    def at_most(p: float) -> float:
        logs = [
            math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p)
            for k in range(hits + 1)
        ]  # fmt: skip
        return sum(math.exp(x) for x in logs)

    low, high = hits / n, 1.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if at_most(middle) > 0.05 else (low, middle)
    return high


def percent(hits: int, n: int) -> str:
    return "-" if n == 0 else f"{100 * hits / n:.1f} %"


def with_interval(hits: int, n: int) -> str:
    if n == 0:
        return "-"
    low, high = wilson(hits, n)
    return f"{100 * hits / n:.1f} % ({100 * low:.1f}-{100 * high:.1f})"


def rate(value: float) -> str:
    return "0" if value == 0 else f"{value:.1e}"


# --- recall -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Copy:
    original: int
    transform: str
    plain: int  # distance of the copy's own hash to the original's
    best: int  # distance of its closest variant the defaults allow
    matched: bool  # the Matcher named its original
    wrong: bool  # the Matcher named another original


@dataclass
class Results:
    originals: list[Original]
    excluded: dict[str, int]  # per set, originals of quality < 50 left out
    copies: list[Copy] = field(default_factory=list)
    derived: list[Copy] = field(default_factory=list)
    pairs: list[list[str]] = field(default_factory=list)
    hard: list[list[str]] = field(default_factory=list)
    stability: list[list[str]] = field(default_factory=list)
    videos: list[list[str]] = field(default_factory=list)
    text: list[list[str]] = field(default_factory=list)  # flat/text images: the rule's cost
    seconds: dict[str, float] = field(default_factory=dict)


def _match_copies(
    originals: Sequence[Original],
    hashed: Sequence[tuple[int, str, list[tuple[str, Any]]]],
    listed: list[Listed],
) -> list[Copy]:
    source = MemoryLists()
    source.add("originals", listed, ListPolicy())
    matcher = Matcher(source, ["originals"])
    copies = []
    for start in range(0, len(hashed), 2000):
        batch = hashed[start : start + 2000]
        queries = [Query.of(values) for _, _, values in batch]
        found = matcher.match_all(queries)
        for (index, name, values), query, matches in zip(batch, queries, found, strict=True):
            own = np.frombuffer(originals[index].hash.bits, np.uint8)[None, :]
            plain = np.frombuffer(plain_of(values).bits, np.uint8)[None, :]
            owners = {source.owner[m.entry] for m in matches}
            copies.append(
                Copy(index, name, int(distances(plain, own)[0, 0]),
                     int(distances(variant_bits(query), own).min()),
                     index in owners, bool(owners - {index}))
            )  # fmt: skip
    return copies


def recall_rows(
    results: Results, copies: Sequence[Copy], transforms: Sequence[str], set_name: str | None
) -> list[list[str]]:
    """A row per transformation: n, recall of both columns with intervals, split, distances."""
    originals = results.originals
    rows = []
    for name in transforms:
        chosen = [
            c for c in copies
            if c.transform == name and (set_name is None or originals[c.original].set == set_name)
        ]  # fmt: skip
        if not chosen:
            continue
        n = len(chosen)
        plain = sum(c.plain <= THRESHOLD for c in chosen)
        ours = sum(c.matched for c in chosen)
        split = []
        for kind in ("photo-like", "graphics"):
            part = [c for c in chosen if originals[c.original].kind == kind]
            k = len(part)
            split.append(
                f"{percent(sum(c.plain <= THRESHOLD for c in part), k)} / "
                f"{percent(sum(c.matched for c in part), k)} (n={k})"
            )
        plain_d = np.array([c.plain for c in chosen])
        best_d = np.array([c.best for c in chosen])
        spread = (
            f"{np.median(plain_d):.0f} / {np.percentile(plain_d, 90):.0f}; "
            f"{np.median(best_d):.0f} / {np.percentile(best_d, 90):.0f}"
        )
        wrong = sum(c.wrong for c in chosen)
        rows.append(
            [name, str(n), with_interval(plain, n), with_interval(ours, n), *split, spread,
             str(wrong)]
        )  # fmt: skip
    return rows


RECALL_HEADER = (
    "transformation", "n", "plain PDQ (95 % CI)", "hashguard defaults (95 % CI)",
    "photo-like: plain / hashguard", "graphics: plain / hashguard",
    "distance median / p90: plain; hashguard", "wrong matches",
)  # fmt: skip


# --- false positives ----------------------------------------------------------------------------


def pair_row(
    label: str,
    images: Sequence[tuple[PdqHash, list[tuple[str, Any]]]],
    same: Callable[[int, int], bool] | None = None,
) -> list[str]:
    """False matches among every pair of ``images`` (their hash, and the values the service
    hashes from them): plain, plain with PDQ's quality gate, and the Matcher with the defaults."""
    n = len(images)
    total = n * (n - 1) // 2
    bits = np.stack([np.frombuffer(h.bits, np.uint8) for h, _ in images])
    quality = np.array([h.quality or 0 for h, _ in images])
    upper = np.triu_indices(n, 1)
    plain = distances(bits, bits)[upper]
    close = plain <= THRESHOLD
    source = MemoryLists()
    # Listed as hashguard lists media: a PDQ of quality < 50 is refused (HMA's bank routes, the
    # victims' tool, derived hashes), so only the others are entries; every image is a query.
    listed = [_entry(i, h) for i, (h, _) in enumerate(images) if (h.quality or 0) >= MIN_QUALITY]
    source.add("images", listed, ListPolicy())
    matcher = Matcher(source, ["images"])
    found = matcher.match_all([Query.of(values) for _, values in images])
    matched = {
        (min(i, j), max(i, j))
        for i, matches in enumerate(found)
        for j in (source.owner[m.entry] for m in matches)
        if j != i
    }
    # Every query's variants against every listed hash: the closest variant per (query, image).
    keys = [variant_bits(Query.of(values)) for _, values in images]
    starts = np.cumsum([0] + [len(k) for k in keys[:-1]])
    closest = np.minimum.reduceat(distances(np.concatenate(keys), bits), starts, axis=0)
    either = np.minimum(closest, closest.T)[upper]
    gate = (quality[upper[0]] >= MIN_QUALITY) & (quality[upper[1]] >= MIN_QUALITY)
    variants = int((gate & (either <= THRESHOLD)).sum())
    nearest = int(plain.min()) if total else 0
    if same is not None:  # pairs of one picture in other colours are not told apart
        alike = sum(same(i, j) for i, j in matched)
        matched_text = f"{len(matched)} ({alike} of one geometry)"
        distinct = rate(upper_bound(len(matched) - alike, total))
        bound = f"{rate(upper_bound(len(matched), total))} ({distinct} distinct)"
    else:
        matched_text, bound = str(len(matched)), rate(upper_bound(len(matched), total))
    return [
        label, str(n), f"{total:,}", str(int(close.sum())), str(int((close & gate).sum())),
        str(variants), matched_text, bound, str(nearest),
    ]  # fmt: skip


def same_pattern_geometry(i: int, j: int) -> bool:
    """Whether patterns ``i`` and ``j`` (seeds) have one geometry, turned or flipped, or
    inverted: the same picture in other colours, which a luma hash cannot tell apart."""
    a = synthetic.pattern_geometry(i)[0]
    b = synthetic.pattern_geometry(j)[0]
    turns = [b, np.rot90(b), np.rot90(b, 2), np.rot90(b, 3)]
    turns += [np.fliplr(t) for t in turns]
    return any(np.array_equal(a, t) or np.array_equal(a, ~t) for t in turns)


PAIR_HEADER = (
    "images", "n", "pairs", "plain <= 31", "plain, quality >= 50 both", "all variants <= 31",
    "hashguard defaults (Matcher)", "95 % upper bound per pair", "nearest plain distance",
)  # fmt: skip


def _hash_generated(task: tuple[str, int]) -> tuple[PdqHash, list[tuple[str, Any]]]:
    kind, seed = task
    image = synthetic.HARD_NEGATIVES[kind](seed)
    data = synthetic.encode(image.convert("RGB"), "BMP")
    values = service_hashes(data)
    return plain_of(values), values


# --- videos -------------------------------------------------------------------------------------

VIDEO_FPS, VIDEO_SECONDS, VIDEO_SIZE = 10, 10, (320, 240)


def video(seed: int) -> bytes:
    """A benign clip: a scene panned slowly, mpeg4 at 2 Mbit/s."""
    width, height = VIDEO_SIZE
    backdrop = synthetic.scene(10_000 + seed, width * 2, height, grain=3.0)
    count = VIDEO_FPS * VIDEO_SECONDS
    frames = [
        backdrop.crop((left, 0, left + width, height))
        for left in (int(i * width / count) for i in range(count))
    ]
    return _encode(frames, VIDEO_FPS, "mpeg4", 2_000_000)


def _encode(frames: Sequence[Canvas], fps: int, codec: str, bitrate: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        stream.time_base = Fraction(1, fps)
        for number, image in enumerate(frames):
            frame = av.VideoFrame.from_image(image)
            frame.pts = number
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()


def _decoded(data: bytes) -> list[Canvas]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_image() for frame in container.decode(video=0)]


def _half(frames: Sequence[Canvas]) -> list[Canvas]:
    return [f.resize((f.width // 2, f.height // 2), Image.Resampling.BILINEAR) for f in frames]


VIDEO_EDITS: dict[str, Callable[[list[Canvas]], bytes]] = {
    "re-encode (H.264, 300 kbit/s)": lambda f: _encode(f, VIDEO_FPS, "libx264", 300_000),
    "resize 50 %": lambda f: _encode(_half(f), VIDEO_FPS, "mpeg4", 1_000_000),
    "trim the first 20 %": lambda f: _encode(f[len(f) // 5 :], VIDEO_FPS, "mpeg4", 2_000_000),
    "trim the last 20 %": lambda f: _encode(f[: -(len(f) // 5)], VIDEO_FPS, "mpeg4", 2_000_000),
    "frame rate 10 -> 5 fps": lambda f: _encode(f[::2], VIDEO_FPS // 2, "mpeg4", 2_000_000),
    "resize 50 % + H.264 + trim the first 20 %":
        lambda f: _encode(_half(f[len(f) // 5 :]), VIDEO_FPS, "libx264", 300_000),
}  # fmt: skip


def _hash_videos(task: tuple[int, tuple[str, ...]]) -> list[tuple[str, list[tuple[str, Any]]]]:
    seed, edits = task
    original = video(seed)
    frames = _decoded(original)
    done = [("original", service_hashes(original, "vpdq"))]
    done.extend((name, service_hashes(VIDEO_EDITS[name](frames), "vpdq")) for name in edits)
    return done


def video_rows(
    pool: ProcessPoolExecutor | None, count: int, edits: Sequence[str]
) -> list[list[str]]:
    hashed = list(_mapped(pool, _hash_videos, [(seed, tuple(edits)) for seed in range(count)]))
    vpdq = registry.get("vpdq")
    source = MemoryLists()
    listed = [
        (seed, "vpdq", vpdq.canonical_of(dict(h)["original"][0][1]), None)
        for seed, h in enumerate(hashed)
    ]
    source.add("videos", listed, ListPolicy())
    matcher = Matcher(source, ["videos"])
    rows = []
    for name in edits:
        queries = [Query.of(dict(h)[name]) for h in hashed]
        found = matcher.match_all(queries)
        hits = sum(seed in {source.owner[m.entry] for m in ms} for seed, ms in enumerate(found))
        wrong = sum(
            bool({source.owner[m.entry] for m in ms} - {seed}) for seed, ms in enumerate(found)
        )
        shares = [
            min((m.shares for m in ms if source.owner[m.entry] == seed), default=None)
            for seed, ms in enumerate(found)
        ]
        lowest = [min(s) for s in shares if s is not None]
        shown = f"{min(lowest):.0f} %" if lowest else "-"
        rows.append([name, str(len(queries)), with_interval(hits, len(queries)), shown, str(wrong)])
    return rows


VIDEO_HEADER = (
    "edit",
    "n",
    "recall at the vPDQ defaults (95 % CI)",
    "lowest frame share matched",
    "wrong matches",
)


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    photos: tuple[Path, ...]
    scenes: int
    transforms: tuple[str, ...]
    hard_negatives: int
    videos: int
    video_edits: tuple[str, ...]
    jobs: int
    text_images: int = 0  # documents and app screenshots each, as originals (the rule's cost)


def options_from(argv: Sequence[str] | None = None) -> tuple[Options, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--photos", type=Path, action="append", default=[],
                        help="a directory of photos to add (repeatable); ../shared/data/photos "
                        "is taken when present unless --quick")  # fmt: skip
    parser.add_argument("--scenes", type=int, default=300, help="generated scenes (default 300)")
    parser.add_argument("--hard-negatives", type=int, default=200, help="images per kind")
    parser.add_argument("--videos", type=int, default=24, help="generated clips")
    parser.add_argument("--text-images", type=int, default=60,
                        help="documents and app screenshots each, listed and copied: what "
                        "the stricter threshold for flat/text images costs")  # fmt: skip
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (0: this one)")
    parser.add_argument("--quick", action="store_true",
                        help="3 scenes, 3 edits, few hard negatives, 2 clips")  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the tables into this Markdown file, "
                        f"between {BEGIN} and {END}")  # fmt: skip
    args = parser.parse_args(argv)
    photos = list(args.photos)
    if args.quick:
        return Options(
            tuple(photos), 3, QUICK, 4, 2, ("re-encode (H.264, 300 kbit/s)",), args.jobs, 2
        ), args.out
    if PHOTOS.is_dir() and PHOTOS not in photos:
        photos.insert(0, PHOTOS)
    return (
        Options(tuple(photos), args.scenes, tuple(t.name for t in TRANSFORMS), args.hard_negatives,
                args.videos, tuple(VIDEO_EDITS), args.jobs, args.text_images),
        args.out,
    )  # fmt: skip


def _sources(options: Options) -> list[tuple[str, str, str | int]]:
    found: list[tuple[str, str, str | int]] = []
    for folder in options.photos:
        set_name = "photos" if folder == PHOTOS else folder.name
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
                found.append((path.name, set_name, str(path)))
    found.extend((f"scene {seed}", "scenes", seed) for seed in range(options.scenes))
    return found


def run(options: Options) -> Results:
    """Every measurement of the bench with ``options``."""
    started = time.perf_counter()
    pool = _pool(options.jobs)
    try:
        prepared = list(_mapped(pool, _prepare, _sources(options)))
        excluded: dict[str, int] = {}
        originals = []
        for original in prepared:
            if (original.hash.quality or 0) < MIN_QUALITY:
                excluded[original.set] = excluded.get(original.set, 0) + 1
            else:
                originals.append(original)
        results = Results(originals, excluded)
        results.seconds["originals"] = time.perf_counter() - started
        _progress(f"{len(originals)} originals ({sum(excluded.values())} of quality < 50 left out)")
    finally:
        if pool is not None:
            pool.shutdown()

    _ORIGINALS[:] = originals  # before forking the pool that transforms them
    pool = _pool(options.jobs)
    try:
        clock = time.perf_counter()
        tasks = [(i, options.transforms) for i in range(len(originals))]
        hashed = [
            (index, name, values)
            for (index, _), done in zip(tasks, _mapped(pool, _hash_copies, tasks), strict=True)
            for name, values in done
        ]
        results.seconds["copies hashed"] = time.perf_counter() - clock
        _progress(f"{len(hashed)} copies hashed")
        clock = time.perf_counter()
        results.copies = _match_copies(originals, hashed, _listed(originals))
        cropped = [h for h in hashed if h[1] in CROPS]
        if cropped:
            results.derived = _match_copies(originals, cropped, _derived_listed(originals))
        results.seconds["copies matched"] = time.perf_counter() - clock
    finally:
        if pool is not None:
            pool.shutdown()

    if options.text_images:
        clock = time.perf_counter()
        results.text = _text_rows(options)
        results.seconds["flat/text images"] = time.perf_counter() - clock
        _progress("flat/text images measured")
    _ORIGINALS[:] = originals
    pool = _pool(options.jobs)
    try:
        clock = time.perf_counter()
        sets = sorted({o.set for o in originals}, key=lambda s: (s == "scenes", s))
        for set_name in sets:
            chosen = [(o.hash, list(o.values)) for o in originals if o.set == set_name]
            results.pairs.append(pair_row(set_name, chosen))
        everything = [(o.hash, list(o.values)) for o in originals]
        if len(sets) > 1:
            results.pairs.append(pair_row("all originals", everything))
        stable = [_stability_row(s, [o.hash for o in originals if o.set == s]) for s in sets]
        for kind in synthetic.HARD_NEGATIVES:
            tasks_hn = [(kind, seed) for seed in range(options.hard_negatives)]
            images = list(_mapped(pool, _hash_generated, tasks_hn))
            same = same_pattern_geometry if kind == "pattern" else None
            results.hard.append(pair_row(kind, images, same))
            stable.append(_stability_row(kind, [h for h, _ in images]))
        results.stability = stable
        results.seconds["false positives"] = time.perf_counter() - clock
        _progress("false positives counted")

        clock = time.perf_counter()
        results.videos = video_rows(pool, options.videos, options.video_edits)
        results.seconds["videos"] = time.perf_counter() - clock
    finally:
        if pool is not None:
            pool.shutdown()
    results.seconds["total"] = time.perf_counter() - started
    return results


# What the stricter threshold for images dominated by flat regions and text costs: documents
# and app screenshots listed, then copied as a platform would see them again.
TEXT_KINDS = ("document", "ui-screenshot")
TEXT_TRANSFORMS = ("JPEG q70", "JPEG q30", "resize 50 %", "resize 25 %", "greyscale",
                   "rotate 90", "pad 10 % white", "resize 50 % + JPEG q70")  # fmt: skip


def _text_rows(options: Options) -> list[list[str]]:
    """Per transformation: plain PDQ, the closest variant within 31 (no flat/text rule), and
    the defaults through the Matcher (the rule on), for documents and app screenshots."""
    sources: list[tuple[str, str, str | int | tuple[str, int]]] = [
        (f"{kind} {seed}", kind, (kind, seed))
        for kind in TEXT_KINDS
        for seed in range(options.text_images)
    ]
    pool = _pool(options.jobs)
    try:
        prepared = list(_mapped(pool, _prepare, sources))
    finally:
        if pool is not None:
            pool.shutdown()
    originals = [o for o in prepared if (o.hash.quality or 0) >= MIN_QUALITY]
    _ORIGINALS[:] = originals
    names = tuple(name for name in TEXT_TRANSFORMS if name in options.transforms)
    pool = _pool(options.jobs)
    try:
        tasks = [(i, names) for i in range(len(originals))]
        hashed = [
            (index, name, values)
            for (index, _), done in zip(tasks, _mapped(pool, _hash_copies, tasks), strict=True)
            for name, values in done
        ]
    finally:
        if pool is not None:
            pool.shutdown()
    copies = _match_copies(originals, hashed, _listed(originals))
    flagged = sum(o.hash.flat_and_text for o in originals)
    rows = []
    for name in names:
        chosen = [c for c in copies if c.transform == name]
        n = len(chosen)
        best = np.array([c.best for c in chosen])
        rows.append([
            name, str(n), f"{flagged} of {len(originals)}",
            with_interval(sum(c.plain <= THRESHOLD for c in chosen), n),
            with_interval(int((best <= THRESHOLD).sum()), n),
            with_interval(sum(c.matched for c in chosen), n),
            f"{np.median(best):.0f} / {np.percentile(best, 90):.0f}",
            str(sum(c.wrong for c in chosen)),
        ])  # fmt: skip
    return rows


TEXT_HEADER = (
    "transformation", "n", "originals flat/text", "plain PDQ <= 31 (95 % CI)",
    "closest variant <= 31: no rule (95 % CI)", "hashguard defaults: the rule on (95 % CI)",
    "closest variant distance median / p90", "wrong matches",
)  # fmt: skip


def _stability_row(label: str, hashes: Sequence[PdqHash]) -> list[str]:
    known = [h.stability for h in hashes if h.stability is not None]
    if not known:
        return [label, str(len(hashes)), "not computed", "-", "-", "-"]
    flagged = sum(s < MIN_STABILITY for s in known)
    fragile = sum(s < FRAGILE for s in known)
    parity = sum(registry.get("pdq").degenerate(h) for h in hashes)
    return [label, str(len(hashes)), f"{flagged} ({percent(flagged, len(known))})",
            f"{fragile} ({percent(fragile, len(known))})",
            f"{parity} ({percent(parity, len(hashes))})", str(min(known))]  # fmt: skip


# A hash that moves by more than 16 bits under a 1 % resize (stability < 75): not noise, but
# fragile (one more edit may take a copy past 31); the "13 in 636 photos" kind.
FRAGILE = 75
STABILITY_HEADER = (
    "images", "n", f"flagged unstable (stability < {MIN_STABILITY}: moves > 32 bits, not matched)",
    f"fragile (stability < {FRAGILE}: moves > 16 bits)",
    "a parity hash (degenerate, not matched)", "lowest",
)  # fmt: skip


def _progress(text: str) -> None:
    print(f"[accuracy] {text}", file=sys.stderr, flush=True)


# --- the report ---------------------------------------------------------------------------------


def render(results: Results, options: Options) -> str:
    """The tables in Markdown, as docs/accuracy.md holds them between its markers."""
    out = io.StringIO()
    saved_stdout, sys.stdout = sys.stdout, out
    try:
        _render(results, options)
    finally:
        sys.stdout = saved_stdout
    return out.getvalue()


def _render(results: Results, options: Options) -> None:
    originals = results.originals
    counts = ", ".join(
        f"{s}: {sum(o.set == s for o in originals)} "
        f"({sum(o.set == s and o.kind == 'graphics' for o in originals)} graphics; "
        f"{results.excluded.get(s, 0)} of quality < 50 left out)"
        for s in sorted({o.set for o in originals}, key=lambda s: (s == "scenes", s))
    )  # fmt: skip
    print(f"Run {_stamp()}. Originals: {counts}. Threshold: distance <= {THRESHOLD}.\n")
    sets: list[str | None] = [
        None,
        *sorted({o.set for o in originals}, key=lambda s: (s == "scenes", s)),
    ]
    groups = list(dict.fromkeys(t.group for t in TRANSFORMS if t.name in options.transforms))
    for set_name in sets:
        print(f"### Recall: {'all originals' if set_name is None else set_name}\n")
        rows = []
        for group in groups:
            names = [
                t.name for t in TRANSFORMS if t.group == group and t.name in options.transforms
            ]
            part = recall_rows(results, results.copies, names, set_name)
            if part:
                rows.append([f"**{group}**", *([""] * (len(RECALL_HEADER) - 1))])
                rows.extend(part)
        table(RECALL_HEADER, rows)
        if len(sets) == 2:
            break  # one set: its table is the same as the whole
    if results.derived:
        print("### Crops, with the derived hashes listed\n")
        crops = [name for name in CROPS if name in options.transforms]
        table(RECALL_HEADER, recall_rows(results, results.derived, crops, None))
    print("### False positives among different originals\n")
    table(PAIR_HEADER, results.pairs)
    if results.hard:
        print(f"### Hard negatives ({options.hard_negatives} per kind, all pairs within a kind)\n")
        table(PAIR_HEADER, results.hard)
    else:
        print("### Hard negatives\n\nNot run (`--hard-negatives 0`).\n")
    if results.text:
        print(f"### Documents and app screenshots: what the flat/text rule costs "
              f"({options.text_images} of each kind listed)\n")  # fmt: skip
        table(TEXT_HEADER, results.text)
    print("### Stability\n")
    table(STABILITY_HEADER, results.stability)
    print(f"### Videos (vPDQ, {options.videos} generated clips of {VIDEO_SECONDS} s at "
          f"{VIDEO_FPS} fps, {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]})\n")  # fmt: skip
    table(VIDEO_HEADER, results.videos)
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in results.seconds.items())
    print(f"Time: {spent} ({options.jobs} worker processes).\n")


def _stamp() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return f"{datetime.now(UTC):%Y-%m-%d} at commit {commit}"


def write_section(path: Path, section: str) -> None:
    """Replace what lies between the markers in ``path`` (or append them) with ``section``."""
    text = path.read_text() if path.exists() else ""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> None:
    options, out = options_from(argv)
    results = run(options)
    section = render(results, options)
    print(section, end="")
    if out is not None:
        write_section(out, section)


if __name__ == "__main__":
    main()
