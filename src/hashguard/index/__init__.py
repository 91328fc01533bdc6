"""Matching structures: an exact Hamming-radius index for perceptual hashes, a frame index for
videos (vPDQ), an exact-key index."""

from hashguard.index.exact import ExactIndex
from hashguard.index.fileformat import IndexFileError
from hashguard.index.frames import FrameIndex
from hashguard.index.hamming import HammingIndex

__all__ = ["ExactIndex", "FrameIndex", "HammingIndex", "IndexFileError"]
