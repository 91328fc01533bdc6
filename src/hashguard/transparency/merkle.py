"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) defines them, with SHA-256.

Leaves hash as SHA-256(0x00 || data), interior nodes as SHA-256(0x01 || left || right); the
tree of n leaves splits at the largest power of two below n. An inclusion proof shows that a
leaf is in a tree of a given root; a consistency proof shows that a tree is an append-only
extension of an earlier one. Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2.
"""

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hashes(leaves: Sequence[bytes]) -> list[bytes]:
    """``leaf_hash`` of each, in one pass (releases hash millions)."""
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + data).digest() for data in leaves]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (leaf hashes); SHA-256 of nothing when empty."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        # Pairing level by level, the last node of an odd level moving up unchanged, builds
        # exactly the tree that splits at the largest power of two below n.
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree over ``leaves`` (RFC 9162 2.1.3.1)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)} leaves")
    return _path(leaves, index)


def _path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(leaves[:k], index), root(leaves[k:])]
    return [*_path(leaves[k:], index - k), root(leaves[:k])]


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The proof that the tree over ``leaves[:old_size]`` is a prefix of the tree over
    ``leaves`` (RFC 9162 2.1.4.1); empty when the sizes are equal or ``old_size`` is 0."""
    if not 0 <= old_size <= len(leaves):
        raise ValueError(f"no tree of {old_size} leaves inside one of {len(leaves)}")
    if old_size in (0, len(leaves)):
        return []
    return _subproof(leaves, old_size, True)


def _subproof(leaves: Sequence[bytes], m: int, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves[:k], m, complete), root(leaves[k:])]
    return [*_subproof(leaves[k:], m - k, False), root(leaves[:k])]


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """Whether ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves
    whose root is ``expected_root``."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree (``old_size``, ``old_root``) to be a prefix of the tree
    (``new_size``, ``new_root``)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class RootBuilder:
    """The root of a tree whose leaves arrive one at a time, in O(log n) memory: the perfect
    subtrees built so far, largest first, merged as a binary counter carries."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        self._push(1, leaf)

    def add_many(self, leaves: Sequence[bytes]) -> None:
        """``add`` each of ``leaves``: whole perfect subtrees at once where the tree's size so
        far allows (millions of leaves in a release)."""
        start = 0
        while start < len(leaves):
            # The largest power of two that the size so far is a multiple of, and that fits.
            aligned = self.size & -self.size if self.size else 1 << 62
            block = min(aligned, 1 << ((len(leaves) - start).bit_length() - 1))
            level = list(leaves[start : start + block])
            while len(level) > 1:
                level = [node_hash(a, b) for a, b in zip(level[0::2], level[1::2], strict=True)]
            self._push(block, level[0])
            start += block

    def _push(self, size: int, node: bytes) -> None:
        """Append a perfect subtree of ``size`` leaves (the tree's size is a multiple of it)."""
        count = size
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            size, node = 2 * size, node_hash(left, node)
        self._stack.append((size, node))
        self.size += count

    def root(self) -> bytes:
        if not self._stack:
            return hashlib.sha256(b"").digest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
