"""Realistic PDQ-like hash sets for index benchmarks (uniform random hashes flatter an index).

    from hashsets import generate
    hashes = generate(1_000_000, queries=10_000, seed=1)

The model, and why:

1. **Real spectra.** PDQ sets bit k of a hash when DCT coefficient k of the image's 64x64
   luma is above the median of all 256. The generator starts from a pool of real coefficient
   vectors: hashguard's own PDQ DCT of benign images, generated scenes (`POOL_SCENES`) and the
   shared photos when present, and of their edits (JPEG re-encoding, resizing, greyscale,
   brightness). Bits then carry PDQ's real statistics: exactly 128 set, biased positions (some
   frequencies sit above the median more often) and correlated ones (neighbouring frequencies
   move together).
2. **Distinct images** are random mixtures of `MIX` pool vectors (Dirichlet weights) plus
   Gaussian noise of `NOVELTY` times each coefficient's spread: new pictures with the pool's
   spectra. Two distinct images land about 110-130 bits apart, as distinct photos do.
3. **Near-duplicate clusters.** Lists hold many variants of one picture. Cluster sizes follow a
   power law (Pareto, exponent `CLUSTER_ALPHA`, capped at `CLUSTER_MAX`): most images once, a
   few hundreds of times. A variant adds noise of `VARIANT_NOISE` (uniform up to that, times
   the spread) to its image's vector, landing 0 to about 40 bits from it, like edits do.
4. **Queries**, as in production: half are edits of an entry at a target distance of
   0-31 bits, drawn from 31 * Beta(`NEAR_BETA`, 1) so many sit near 31, made by flipping the
   bits whose coefficients are nearest the median (those an edit flips first); half are new
   distinct images. What truly matches is for a brute-force check to say: a near query may be
   closer to another variant, and a new image may, rarely, fall near an entry.

Vectors are made in chunks, so 10 million hashes take 320 MB plus one chunk.
"""

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from hashguard.media.image import decode_luma
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import pdq_dct

POOL_SCENES = 160
MIX = 3
NOVELTY = 0.6
CLUSTER_ALPHA = 1.6
CLUSTER_MAX = 500
VARIANT_NOISE = 0.35
NEAR_BETA = 3.0
CHUNK = 100_000
PHOTOS = (
    Path(
        os.environ.get(
            "HASHGUARD_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
        )
    )
    / "photos"
)


@dataclass(frozen=True)
class HashSet:
    entries: np.ndarray  # (n, 32) uint8, PDQ bytes in hex-string order
    clusters: np.ndarray  # (n,) int64: which distinct image each entry is a variant of
    queries: np.ndarray  # (q, 32) uint8
    query_sources: np.ndarray  # (q,) int64: the entry a near query was made from, -1 if new


def _edits(image: Image.Image) -> list[bytes]:
    return [
        encode(image, "PNG"),
        encode(image, "JPEG", quality=40),
        encode(image.reduce(2), "JPEG"),
        encode(image.convert("L"), "PNG"),
        encode(ImageEnhance.Brightness(image).enhance(1.3), "JPEG"),
    ]


@lru_cache(maxsize=4)
def pool(scenes: int = POOL_SCENES, photos: Path | None = PHOTOS) -> np.ndarray:
    """Real PDQ coefficient vectors (m, 256), each scaled to unit spread: of generated scenes,
    of the shared photos when present, and of their edits."""
    images = [scene(seed, 480, 360, grain=2) for seed in range(scenes)]
    if photos is not None and photos.is_dir():
        for path in sorted(photos.glob("*.jpg")):
            with Image.open(path) as photo:
                photo.draft("RGB", (640, 640))
                images.append(photo.convert("RGB"))
    vectors = []
    for image in images:
        for data in _edits(image):
            dct, quality = pdq_dct(decode_luma(data))
            if dct is not None and quality >= 50:
                vectors.append(dct.ravel() / (dct.std() or 1.0))
    return np.array(vectors, dtype=np.float32)


def pack(vectors: np.ndarray) -> np.ndarray:
    """PDQ hashes of coefficient vectors: bit k set when coefficient k is above the median."""
    median = np.partition(vectors, 127, axis=1)[:, 127:128]  # the reference's lower median
    bits = (vectors > median).astype(np.uint8)  # bit k = 16 i + j
    # Hex-string order: byte 0 holds bits 255..248.
    return np.packbits(bits[:, ::-1], axis=1)


def _distinct(rng: np.random.Generator, base: np.ndarray, count: int) -> np.ndarray:
    picks = base[rng.integers(0, len(base), size=(count, MIX))]
    weights = rng.dirichlet(np.ones(MIX), size=count).astype(np.float32)
    mixed = np.einsum("nm,nmk->nk", weights, picks)
    spread = base.std(axis=0)
    return mixed + rng.normal(0.0, NOVELTY, size=mixed.shape).astype(np.float32) * spread


def _cluster_sizes(rng: np.random.Generator, total: int) -> np.ndarray:
    sizes = []
    remaining = total
    while remaining > 0:
        draw = np.minimum((rng.pareto(CLUSTER_ALPHA, size=4096) + 1).astype(np.int64), CLUSTER_MAX)
        for size in draw:
            size = int(min(size, remaining))
            sizes.append(size)
            remaining -= size
            if remaining == 0:
                break
    return np.array(sizes, dtype=np.int64)


def generate(n: int, queries: int = 0, seed: int = 0, base: np.ndarray | None = None) -> HashSet:
    """``n`` entries in power-law clusters of variants, and ``queries`` queries (half near)."""
    rng = np.random.default_rng(seed)
    base = pool() if base is None else base
    spread = base.std(axis=0)
    sizes = _cluster_sizes(rng, n)
    clusters = np.repeat(np.arange(len(sizes)), sizes)
    entries = np.empty((n, 32), np.uint8)
    near_count = queries // 2
    sources = np.sort(rng.choice(n, size=near_count, replace=False)) if n else np.array([], int)
    near = np.empty((near_count, 32), np.uint8)
    done_near = 0
    cluster_vectors: dict[int, np.ndarray] = {}
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        ids = clusters[start:stop]
        fresh = [c for c in np.unique(ids) if c not in cluster_vectors]
        for c, vector in zip(fresh, _distinct(rng, base, len(fresh)), strict=True):
            cluster_vectors[int(c)] = vector
        centres = np.stack([cluster_vectors[int(c)] for c in ids])
        scale = rng.uniform(0.0, VARIANT_NOISE, size=(len(ids), 1)).astype(np.float32)
        noise = rng.normal(0.0, 1.0, size=centres.shape).astype(np.float32)
        vectors = centres + scale * noise * spread
        entries[start:stop] = pack(vectors)
        # Near queries from entries of this chunk: flip the bits nearest the median.
        mine = sources[(sources >= start) & (sources < stop)]
        if len(mine):
            near[done_near : done_near + len(mine)] = _edit_to_distance(rng, vectors[mine - start])
            done_near += len(mine)
        last = int(clusters[stop - 1])  # clusters are contiguous: only this one may go on
        cluster_vectors = {last: cluster_vectors[last]}
    far = pack(_distinct(rng, base, queries - near_count)) if queries else near[:0]
    order = rng.permutation(queries)
    all_queries = np.concatenate([near, far])[order]
    all_sources = np.concatenate([sources, np.full(len(far), -1)])[order]
    return HashSet(entries, clusters, all_queries, all_sources)


def _edit_to_distance(rng: np.random.Generator, vectors: np.ndarray) -> np.ndarray:
    """Hashes of ``vectors`` with 0-31 bits flipped, those with the smallest margin first."""
    hashes = pack(vectors)
    median = np.partition(vectors, 127, axis=1)[:, 127:128]
    margin = np.abs(vectors - median)
    distances = np.rint(31 * rng.beta(NEAR_BETA, 1.0, size=len(vectors))).astype(np.int64)
    order = np.argsort(margin, axis=1)
    flips = np.zeros(vectors.shape, dtype=np.uint8)
    rows = np.repeat(np.arange(len(vectors)), distances)
    columns = np.concatenate([order[i, :d] for i, d in enumerate(distances)]) if len(rows) else []
    flips[rows, columns] = 1
    return hashes ^ np.packbits(flips[:, ::-1], axis=1)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between every row of ``a`` and every row of ``b`` (small sets)."""
    x = a.view(np.uint64)[:, None, :] ^ b.view(np.uint64)[None, :, :]
    return np.bitwise_count(x).sum(axis=2)
