"""PDQ query variants: the hashes of an image turned and flipped, and of its trimmed crops.

A query may be an altered copy of a listed image: rotated or mirrored, or padded, letterboxed
or framed in a screenshot. Lists hold hashes of the originals, so robustness is on the query
side: the query image is hashed as it is and as each *variant* that may undo the change, and a
list's policy says which variant families may match it. Names (the original first):
``original``; the dihedral ones of ``pdq_kernel.DIHEDRAL`` (``rotate90``, ``flipx``, ...);
``trim-<rule>`` for each trim hypothesis (``media.trim``: ``lenient``, ``strict``, ``frame``);
``trim-<rule>/<dihedral>`` for both at once. A variant needs every family its name uses.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import MediaSource, read_image
from hashguard.signals.pdq import REDUCED_MIN_SIDE, PdqHash, dihedral_luma, hash_luma

if TYPE_CHECKING:
    from hashguard.media.image import LumaImage

DIHEDRAL: Final = "dihedral"
TRIM: Final = "trim"
# The families a query can be asked for (lists.model.VARIANT_FAMILIES names the same).
FAMILIES: Final = (DIHEDRAL, TRIM)
ORIGINAL: Final = "original"
_TRIM_PREFIX: Final = "trim-"


@dataclass(frozen=True, slots=True)
class PdqVariants:
    """An image's PDQ hash and the hashes of its variants, by name, the original first."""

    variants: dict[str, PdqHash]

    @property
    def original(self) -> PdqHash:
        return self.variants[ORIGINAL]

    @property
    def quality(self) -> int | None:
        return self.original.quality


def families_of(name: str) -> frozenset[str]:
    """The variant families a variant's name uses: none for ``original``, ``trim`` for a trim
    hypothesis, ``dihedral`` for a rotation or flip (both for ``trim-strict/rotate90``)."""
    found = set()
    for part in name.split("/"):
        if part.startswith(_TRIM_PREFIX):
            found.add(TRIM)
        elif part != ORIGINAL:
            found.add(DIHEDRAL)
    return frozenset(found)


def variants_luma(luma: "LumaImage", families: frozenset[str]) -> PdqVariants:
    """The variants of a decoded luma plane in ``families``: with ``dihedral``, all 8 from one
    DCT per plane; with ``trim``, each trim hypothesis hashed (and turned, with both)."""
    planes: list[tuple[str, LumaImage]] = [("", luma)]
    if TRIM in families:
        from hashguard.media import trim

        planes += [(_TRIM_PREFIX + t.rule, trim.crop(luma, t.box)) for t in trim.hypotheses(luma)]
    hashes: dict[str, PdqHash] = {}
    for prefix, plane in planes:
        if DIHEDRAL in families:
            for name, value in dihedral_luma(plane).variants.items():
                hashes[_joined(prefix, name)] = value
        else:
            hashes[prefix or ORIGINAL] = hash_luma(plane)
    return PdqVariants(hashes)


def hash_variants(
    source: MediaSource, families: frozenset[str], limits: Limits = DEFAULT_LIMITS
) -> PdqVariants:
    """``variants_luma`` of an image file; raises what ``PdqSignal.hash`` raises."""
    from hashguard.media.image import decode_luma

    data = read_image(source, limits)
    return variants_luma(decode_luma(data, limits, min_side=REDUCED_MIN_SIDE), families)


def _joined(prefix: str, dihedral: str) -> str:
    if not prefix:
        return dihedral
    return prefix if dihedral == ORIGINAL else f"{prefix}/{dihedral}"
