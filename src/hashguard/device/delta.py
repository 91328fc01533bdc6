"""A delta release's keys: what changed since its base, and a filter read with them on top.

The delta file (``delta-<digest>.idx``, in the index file format, kind ``device-delta``) holds,
per filter of the release (``exact``, ``near``), the sorted keys added (``<role>_added``) and
removed (``<role>_removed``) since the base release. A key passes when it is among the added,
or in the base filter and not among the removed.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from hashguard.device.release import DeviceReleaseError
from hashguard.index import fileformat
from hashguard.index.fuse import FuseFilter

KIND: Final = "device-delta"


@dataclass(frozen=True)
class Layer:
    """One filter with the delta on top of it."""

    base: FuseFilter
    added: np.ndarray  # sorted uint64
    removed: np.ndarray  # sorted uint64

    def __contains__(self, key: int) -> bool:
        if _holds(self.added, key):
            return True
        return key in self.base and not _holds(self.removed, key)


def changes(base: dict[str, np.ndarray], now: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The delta's arrays from each filter's key set in the base (sorted, unique) and now."""
    arrays = {}
    for role, keys_now in now.items():
        arrays[f"{role}_added"] = np.setdiff1d(keys_now, base[role], assume_unique=True)
        arrays[f"{role}_removed"] = np.setdiff1d(base[role], keys_now, assume_unique=True)
    return arrays


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    fileformat.write(path, KIND, {}, arrays)


def read(path: Path, roles: set[str]) -> dict[str, np.ndarray]:
    """The delta's key sets; each must be strictly increasing (lookups are binary searches),
    one added and one removed per filter of the release, and never both. Raises
    DeviceReleaseError naming the file."""
    try:
        _, arrays = fileformat.read(path, KIND, memory_map=False)
    except fileformat.IndexFileError as error:
        raise DeviceReleaseError(str(error)) from None
    expected = {f"{role}_{change}" for role in roles for change in ("added", "removed")}
    if set(arrays) != expected:
        raise DeviceReleaseError(f"{path}: holds {sorted(arrays)}, expected {sorted(expected)}")
    for name, array in arrays.items():
        if array.dtype != np.dtype("<u8") or array.ndim != 1 or np.any(array[1:] <= array[:-1]):
            raise DeviceReleaseError(f"{path}: {name} is not a sorted set of keys")
    for role in roles:
        if np.intersect1d(arrays[f"{role}_added"], arrays[f"{role}_removed"]).size:
            raise DeviceReleaseError(f"{path}: keys both added and removed in {role}")
    return {name: np.asarray(array, dtype=np.uint64) for name, array in arrays.items()}


def _holds(sorted_keys: np.ndarray, key: int) -> bool:
    if not len(sorted_keys):
        return False
    at = int(np.searchsorted(sorted_keys, np.uint64(key)))
    return at < len(sorted_keys) and int(sorted_keys[at]) == key
