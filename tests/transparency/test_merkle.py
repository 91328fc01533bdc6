"""Merkle trees, inclusion and consistency proofs, against RFC 6962 / RFC 9162's test vectors and
exhaustively over small trees, tampering included."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hashguard.transparency.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference inputs and tree heads (RFC 6962 test vectors).
VECTOR_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
VECTOR_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]  # fmt: skip
VECTOR_PATHS = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
LEAVES = [leaf_hash(data) for data in VECTOR_LEAVES]
MANY = [leaf_hash(bytes([i, i * 7 % 256])) for i in range(43)]


def test_roots_match_the_reference_tree_heads() -> None:
    for size, expected in enumerate(VECTOR_ROOTS):
        assert root(LEAVES[:size]) == expected


def test_inclusion_proofs_match_the_reference_paths() -> None:
    for (index, size), path in VECTOR_PATHS.items():
        assert inclusion_proof(LEAVES[:size], index) == [bytes.fromhex(h) for h in path]


@pytest.mark.parametrize("size", range(1, 42))
def test_every_leaf_proves_inclusion_and_nothing_else_does(size: int) -> None:
    leaves = MANY[:size]
    head = root(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        assert verify_inclusion(leaves[index], index, size, proof, head)
        other = leaves[(index + 1) % size] if size > 1 else leaf_hash(b"other")
        assert not verify_inclusion(other, index, size, proof, head)
        assert not verify_inclusion(leaves[index], index, size, proof, root(MANY[: size + 1]))
        assert not verify_inclusion(leaves[index], size, size, proof, head)
        if proof:
            assert not verify_inclusion(leaves[index], index, size, proof[:-1], head)
            assert not verify_inclusion(leaves[index], index, size, [*proof, head], head)
            flipped = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
            assert not verify_inclusion(leaves[index], index, size, flipped, head)
            if size > 1 and index + 1 < size:
                assert not verify_inclusion(leaves[index], index + 1, size, proof, head)


@pytest.mark.parametrize("new_size", range(0, 42))
def test_every_prefix_proves_consistency_and_a_fork_does_not(new_size: int) -> None:
    new_root = root(MANY[:new_size])
    forked = [*MANY[:new_size]]
    for old_size in range(0, new_size + 1):
        old_root = root(MANY[:old_size])
        proof = consistency_proof(MANY[:new_size], old_size)
        assert verify_consistency(old_size, new_size, old_root, new_root, proof)
        if old_size > 0:
            # A log that rewrote an old entry (a fork) cannot prove consistency.
            forked[old_size - 1] = leaf_hash(b"rewritten")
            forked_root = root(forked)
            forked_proof = consistency_proof(forked, old_size)
            assert not verify_consistency(old_size, new_size, old_root, forked_root, forked_proof)
            forked[old_size - 1] = MANY[old_size - 1]
            wrong_old = leaf_hash(b"not the old root")
            assert not verify_consistency(old_size, new_size, wrong_old, new_root, proof)
        if 0 < old_size < new_size:
            assert not verify_consistency(old_size, new_size, old_root, leaf_hash(b"x"), proof)
            if proof:
                assert not verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
    assert not verify_consistency(new_size + 1, new_size, new_root, new_root, [])


def test_proof_requests_outside_the_tree_are_refused() -> None:
    with pytest.raises(ValueError, match="leaf 3 is not in a tree of 3 leaves"):
        inclusion_proof(MANY[:3], 3)
    with pytest.raises(ValueError, match="no tree of 5 leaves inside one of 3"):
        consistency_proof(MANY[:3], 5)


def test_streamed_roots_equal_whole_tree_roots() -> None:
    from hashguard.transparency.merkle import RootBuilder

    builder = RootBuilder()
    assert builder.root() == VECTOR_ROOTS[0]
    for size, leaf in enumerate(MANY, start=1):
        builder.add(leaf)
        assert builder.root() == root(MANY[:size]) and builder.size == size


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=12))
def test_leaves_added_in_batches_give_the_same_root(batches: list[int]) -> None:
    from hashguard.transparency.merkle import RootBuilder

    leaves = [leaf_hash(n.to_bytes(4, "big")) for n in range(sum(batches))]
    builder, start = RootBuilder(), 0
    for count in batches:
        builder.add_many(leaves[start : start + count])
        start += count
        assert builder.size == start and builder.root() == root(leaves[:start])
