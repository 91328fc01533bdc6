"""The realistic hash-set generator the index benchmarks use (bench/hashsets.py)."""

import sys

import numpy as np
import pytest

from support.paths import BENCH

sys.path.insert(0, str(BENCH))
from hashsets import distances, generate, pack, pool


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, object]:
    base = pool(scenes=12, photos=None)
    return base, generate(6000, queries=400, seed=3, base=base)


def test_bits_have_pdq_statistics(small) -> None:
    base, hashes = small
    assert base.shape[1] == 256 and len(base) >= 40
    assert set(np.unpackbits(hashes.entries, axis=1).sum(axis=1)) == {128}
    bias = np.unpackbits(hashes.entries, axis=1).mean(axis=0)
    assert bias.max() - bias.min() > 0.2  # positions are biased, unlike uniform random bits


def test_clusters_follow_a_power_law_and_images_are_apart(small) -> None:
    _, hashes = small
    sizes = np.bincount(hashes.clusters)
    assert (sizes == 1).mean() > 0.4 and sizes.max() >= 50
    firsts = hashes.entries[np.unique(hashes.clusters, return_index=True)[1][:300]]
    apart = distances(firsts, firsts)[np.triu_indices(len(firsts), 1)]
    assert 110 <= apart.mean() <= 135
    biggest = hashes.entries[hashes.clusters == np.argmax(sizes)][:100]
    within = distances(biggest, biggest)[np.triu_indices(len(biggest), 1)]
    assert np.median(within) < 40


def test_queries_are_half_near_and_half_new(small) -> None:
    _, hashes = small
    near = hashes.query_sources >= 0
    assert near.sum() == len(near) // 2
    to_source = distances(hashes.queries[near], hashes.entries[hashes.query_sources[near]])
    own = np.diagonal(to_source)
    assert own.max() <= 31 and np.median(own) >= 18  # many near the threshold
    nearest_new = distances(hashes.queries[~near], hashes.entries).min(axis=1)
    assert np.median(nearest_new) > 45


def test_pack_matches_pdq_bit_order() -> None:
    from hashguard.signals import pdq_kernel

    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(20, 256)).astype(np.float32)
    expected = [pdq_kernel.hash_bits(v.reshape(16, 16)) for v in vectors]
    assert np.array_equal(pack(vectors), np.stack(expected))
