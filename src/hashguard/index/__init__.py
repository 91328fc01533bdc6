"""Matching structures: an exact Hamming-radius index for perceptual hashes, an exact-key index."""

from hashguard.index.exact import ExactIndex
from hashguard.index.fileformat import IndexFileError
from hashguard.index.hamming import HammingIndex

__all__ = ["ExactIndex", "HammingIndex", "IndexFileError"]
