"""Luma (BT.601 Y') from decoded pixels, computed exactly as Meta's reference PDQ pipeline does.

The reference computes ``0.299 R + 0.587 G + 0.114 B`` in double precision and rounds to float32;
doing the same here keeps hashes of small images bit-identical to the reference.
"""

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def luma_from_rgb(rgb: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    rows, cols = rgb.shape[0], rgb.shape[1]
    out = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = np.float32(
                rgb[i, j, 0] * 0.299 + rgb[i, j, 1] * 0.587 + rgb[i, j, 2] * 0.114
            )
    return out


@njit(cache=True, nogil=True)
def luma_from_grey(grey: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    # Grey is R = G = B; the reference sums the three weighted channels, so do the same.
    rows, cols = grey.shape
    out = np.empty((rows, cols), np.float32)
    for i in range(rows):
        for j in range(cols):
            v = grey[i, j]
            out[i, j] = np.float32(v * 0.299 + v * 0.587 + v * 0.114)
    return out
