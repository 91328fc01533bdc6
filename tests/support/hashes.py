"""Hash sets for index tests: clusters of near-duplicates, and queries near stored hashes."""

import numpy as np


def clustered(seed: int, n: int, width: int = 32, spread: float = 0.08) -> np.ndarray:
    """Hashes in clusters of near-duplicates around a few centres, with biased bits."""
    rng = np.random.default_rng(seed)
    centres = (rng.random((max(1, n // 20), width * 8)) < rng.uniform(0.2, 0.8, width * 8)) * 1
    picks = centres[rng.integers(0, len(centres), n)]
    flips = rng.random((n, width * 8)) < rng.uniform(0, spread, (n, 1))
    return np.packbits((picks ^ flips).astype(np.uint8), axis=1)


def near(rng: np.random.Generator, hashes: np.ndarray, count: int, most: int) -> np.ndarray:
    """``count`` queries, each a stored hash with up to ``most`` random bits flipped."""
    picked = hashes[rng.integers(0, len(hashes), count)]
    bits = np.unpackbits(picked, axis=1)
    for row in bits:
        row[rng.choice(len(row), rng.integers(0, most + 1), replace=False)] ^= 1
    return np.packbits(bits, axis=1)
