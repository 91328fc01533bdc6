"""PDQ query variants: the hashes of an image turned and flipped, of its trimmed crops, and of
a small image enlarged.

A query may be an altered copy of a listed image: rotated or mirrored, padded, letterboxed or
framed in a screenshot, or shrunk for sharing. Lists hold hashes of the originals, so
robustness is on the query side: the query image is hashed as it is and as each *variant*
that may undo the change, and a list's policy says which variant families may match it.
Names (the original first): ``original``; the dihedral ones of ``pdq_kernel.DIHEDRAL``
(``rotate90``, ``flipx``, ...); ``trim-<rule>`` for each trim hypothesis (``media.trim``:
``lenient``, ``strict``, ``frame``, ``panel``); ``trim-<rule>/<dihedral>`` for both at once;
``upscaled`` (and ``upscaled/<dihedral>``) for a small image enlarged to ``UPSCALED_SIDE``
before hashing. A variant needs every family its name uses.

Why ``upscaled``: PDQ's box filter is ``ceil(side / 128)`` pixels wide, so the same picture
hashed at 256 px and at 1024 px is filtered differently before the 64x64 stage; a copy shrunk
to a quarter lies 20 bits (median) from its original, and 4 once enlarged back (linear
interpolation; bicubic gives the same) before PDQ's filter (``bench/accuracy.py``). The list
keeps the reference hash; only the query adapts.
"""

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import MediaSource, read_image
from hashguard.signals.pdq import REDUCED_MIN_SIDE, PdqHash, dihedral_luma, hash_luma

if TYPE_CHECKING:
    from hashguard.media.image import LumaImage

DIHEDRAL: Final = "dihedral"
TRIM: Final = "trim"
SCALE: Final = "scale"
# The families a query can be asked for (lists.model.VARIANT_FAMILIES names the same).
FAMILIES: Final = (DIHEDRAL, TRIM, SCALE)
ORIGINAL: Final = "original"
_TRIM_PREFIX: Final = "trim-"
UPSCALED: Final = "upscaled"
# An image whose long side is at most UPSCALE_BELOW pixels is hashed again enlarged to a long
# side of UPSCALED_SIDE (a typical stored original; beyond it the hash barely moves).
UPSCALE_BELOW: Final = 640
UPSCALED_SIDE: Final = 1024


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

    @property
    def stability(self) -> int | None:
        return self.original.stability


def families_of(name: str) -> frozenset[str]:
    """The variant families a variant's name uses: none for ``original``, ``trim`` for a trim
    hypothesis, ``dihedral`` for a rotation or flip (both for ``trim-strict/rotate90``)."""
    found = set()
    for part in name.split("/"):
        if part.startswith(_TRIM_PREFIX):
            found.add(TRIM)
        elif part == UPSCALED:
            found.add(SCALE)
        elif part != ORIGINAL:
            found.add(DIHEDRAL)
    return frozenset(found)


def unscaled(name: str) -> str:
    """The variant ``name`` without its enlargement (the same picture, only hashed larger):
    ``upscaled/rotate90`` is ``rotate90``, ``upscaled`` is ``original``."""
    parts = [part for part in name.split("/") if part != UPSCALED]
    return "/".join(parts) or ORIGINAL


def variants_luma(luma: "LumaImage", families: frozenset[str]) -> PdqVariants:
    """The variants of a decoded luma plane in ``families``: with ``dihedral``, all 8 from one
    DCT per plane; with ``trim``, each trim hypothesis hashed (and turned, with both); with
    ``scale``, an image of ``UPSCALE_BELOW`` px or less enlarged (and turned)."""
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
    if SCALE in families and max(luma.width, luma.height) <= UPSCALE_BELOW:
        hashes.update(_enlarged(luma, hashes[ORIGINAL], DIHEDRAL in families))
    return PdqVariants(hashes)


def _enlarged(luma: "LumaImage", sent: PdqHash, turned: bool) -> dict[str, PdqHash]:
    """The hashes of ``luma`` enlarged to a long side of ``UPSCALED_SIDE`` (and turned): its
    64x64 buffer is computed from the pixels as sent through a weighted map (linear
    interpolation, then PDQ's filter at the larger size), never made. They keep what was
    measured of the image as sent: enlarging smooths it, so a pattern too unstable or too plain
    to match, or a screenshot's flat regions and text, must not pass as something else."""
    from hashguard.signals import pdq_kernel

    long_side = max(luma.width, luma.height)
    size = (max(1, round(luma.height * UPSCALED_SIDE / long_side)),
            max(1, round(luma.width * UPSCALED_SIDE / long_side)))  # fmt: skip
    buffer = pdq_kernel.resized_64x64(
        luma.pixels, luma.height, luma.width, luma.scale, luma.reversed_axes, size
    )
    dct = pdq_kernel.dct_16x16(buffer, pdq_kernel.DCT_16X64)
    turns = pdq_kernel.DIHEDRAL if turned else pdq_kernel.DIHEDRAL[:1]  # the first: as it is
    return {
        _joined(UPSCALED, name): replace(
            sent, bits=pdq_kernel.hash_bits(pdq_kernel.dihedral_dct(dct, *flips)).tobytes()
        )
        for name, *flips in turns
    }


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
