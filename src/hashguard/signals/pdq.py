"""PDQ, Meta's 256-bit perceptual image hash, with quality and the 8 dihedral variants.

String form: 64 lowercase hex digits, as ThreatExchange, HMA, NCMEC and StopNCII exchange it.
Hashing is conformant with the reference (``pdqhash``): bit-identical for images up to 512 px a
side; larger JPEGs are decoded at reduced DCT scale and hashed through the same linear map.
"""

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

import numpy as np

from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import (
    Comparison,
    IndexKind,
    InvalidSignalValue,
    MediaSource,
    SignalType,
    preview,
    read_image,
)

if TYPE_CHECKING:  # the decoder and the numba kernels load when something is hashed
    from hashguard.media.image import LumaImage

DEFAULT_THRESHOLD: Final = 31
MIN_QUALITY: Final = 50
# Stability = 100 - drift * 100 / 64 (clamped), drift = the bits that differ from the hash of the
# image at 99 % scale; under 50 (drift over 32 bits) the hash does not even match its own copy.
MIN_STABILITY: Final = 50
STABILITY_SCALE: Final = 0.99
# Flat regions and text (UI screenshots, documents): the layout decides the hash, so screens of
# one app collide at 12-30 bits. Measured as the share of pixels within FLAT_STEP of their
# neighbours, counted when at least TEXT_SHARE of them are steps of SHARP_STEP or more; from
# FLAT_MIN percent on, a query is matched within FLAT_THRESHOLD bits at most.
FLAT_STEP: Final = 2.0
# A regular pattern (a checkerboard, a dot grid, line art) whose frequencies PDQ's 64x64 stage
# folds onto a few symmetric DCT terms leaves the other terms' signs to their parity: the hash
# is then one of these values (bits set by the parity of the row, the column or both, in
# either sense, as the pattern's cells are cut at the image's edges), whatever the pattern.
# 50 of the 200 generated patterns of bench/accuracy.py hash within 31 bits of one; a photo's
# hash, whose bits are close to independent, lies 128 +- 8 bits from any fixed value, so a hash
# within DEGENERATE_RADIUS of one (12 standard deviations) is never a photo.
PARITY_HASHES: Final = ("5555aaaa" * 8, "aaaa5555" * 8, "aa" * 32, "55" * 32,
                        "ffff0000" * 8, "0000ffff" * 8)  # fmt: skip
DEGENERATE_RADIUS: Final = 31
_PARITY_BITS: Final = tuple(int(value, 16) for value in PARITY_HASHES)
SHARP_STEP: Final = 48.0
TEXT_SHARE: Final = 0.02
FLAT_MIN: Final = 65
FLAT_THRESHOLD: Final = 10
# Reduced JPEG decoding keeps both sides at least this long (measured: docs/benchmarks.md).
REDUCED_MIN_SIDE: Final = 512
# Up to this size the exact, bit-identical path costs about what the matrix form costs with its
# per-size weights (5 ms at 1.2 MP); above it the matrix form is 2-4x faster.
_EXACT_MAX_PIXELS: Final = 1_200_000
_HEX: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class PdqHash:
    """256 bits in hex-string order, and the quality and stability (0-100) when the hash was
    computed here. Two hashes are equal when their bits and quality are: stability is a
    measurement of the image, not part of the hash."""

    bits: bytes
    quality: int | None = None
    stability: int | None = field(default=None, compare=False)
    # The share of the image (0-100) in flat regions, when it also has the sharp edges of text
    # or line art (else 0); measured with stability.
    flat: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if len(self.bits) != 32:
            raise InvalidSignalValue(f"a PDQ hash has 32 bytes, got {len(self.bits)}")

    @property
    def hex(self) -> str:
        return self.bits.hex()

    def distance(self, other: "PdqHash") -> int:
        """Hamming distance in bits (0..256)."""
        a = int.from_bytes(self.bits, "big")
        return (a ^ int.from_bytes(other.bits, "big")).bit_count()

    @property
    def low_quality(self) -> bool:
        return self.quality is not None and self.quality < MIN_QUALITY

    @property
    def unstable(self) -> bool:
        return self.stability is not None and self.stability < MIN_STABILITY

    @property
    def flat_and_text(self) -> bool:
        """Whether the image is dominated by flat regions and text (a screenshot, a document)."""
        return self.flat is not None and self.flat >= FLAT_MIN


@dataclass(frozen=True, slots=True)
class DihedralHashes:
    """An image's hash and the hashes of its 3 rotations and 4 flips, in ThreatExchange order."""

    quality: int
    variants: dict[str, PdqHash]
    stability: int | None = None  # every variant's: a rotation or flip moves no sample
    flat: int | None = None

    @property
    def original(self) -> PdqHash:
        return self.variants["original"]


def hash_luma(luma: "LumaImage", *, measure: bool = True) -> PdqHash:
    """PDQ of a decoded luma plane (an image or a video frame), with its quality and, unless
    ``measure`` is false (video frames), its stability."""
    from hashguard.signals import pdq_kernel

    dct, quality = pdq_dct(luma)
    if dct is None:
        return PdqHash(bytes(32), 0, *((0, 0) if measure else (None, None)))
    bits = pdq_kernel.hash_bits(dct)
    if not measure:
        return PdqHash(bits.tobytes(), quality)
    return PdqHash(bits.tobytes(), quality, stability(luma, bits), flatness(luma))


def dihedral_luma(luma: "LumaImage") -> DihedralHashes:
    """The 8 dihedral hashes of a decoded luma plane, all from one DCT, with one stability."""
    from hashguard.signals import pdq_kernel

    dct, quality = pdq_dct(luma)
    names = [name for name, *_ in pdq_kernel.DIHEDRAL]
    if dct is None:
        return DihedralHashes(0, {name: PdqHash(bytes(32), 0, 0, 0) for name in names}, 0, 0)
    stable, flat = stability(luma, pdq_kernel.hash_bits(dct)), flatness(luma)
    variants = {
        name: PdqHash(
            pdq_kernel.hash_bits(pdq_kernel.dihedral_dct(dct, *flips)).tobytes(),
            quality,
            stable,
            flat,
        )
        for name, *flips in pdq_kernel.DIHEDRAL
    }
    return DihedralHashes(quality, variants, stable, flat)


def stability(luma: "LumaImage", bits: np.ndarray) -> int:
    """How little the hash ``bits`` of ``luma`` moves when the image is resized to 99 %:
    100 - drift * 100 / 64, from 0 to 100 (drift: bits that differ). The resized copy's
    64x64 buffer is computed from the same decoded pixels through the weighted map, never made.
    """
    from hashguard.signals import pdq_kernel

    # At least a pixel shorter on each side: below 50 px, 99 % would round back to the size.
    size = (
        min(luma.height - 1, round(luma.height * STABILITY_SCALE)),
        min(luma.width - 1, round(luma.width * STABILITY_SCALE)),
    )
    if min(size) < pdq_kernel.MIN_SIDE:
        return 0  # the copy hashes as all zeros: nothing of this image survives it
    buffer = pdq_kernel.resized_64x64(
        luma.pixels, luma.height, luma.width, luma.scale, luma.reversed_axes, size
    )
    # The bits are the same under the levels' gain (positive) and offset (no DCT term has one).
    moved = pdq_kernel.hash_bits(pdq_kernel.dct_16x16(buffer, pdq_kernel.DCT_16X64))
    return stability_of(int(np.unpackbits(bits ^ moved).sum()))


def flatness(luma: "LumaImage") -> int:
    """The share (0-100) of ``luma``'s pixels in flat regions, when at least ``TEXT_SHARE`` of
    them are the sharp steps of text or line art; else 0 (a photo, a smooth graphic)."""
    from hashguard.signals import pdq_kernel

    levels = (luma.white - luma.black) / 255.0
    flat, sharp = pdq_kernel.flat_and_sharp(luma.pixels, FLAT_STEP * levels, SHARP_STEP * levels)
    pixels = max(1, (luma.pixels.shape[0] - 1) * (luma.pixels.shape[1] - 1))
    return round(flat * 100 / pixels) if sharp >= TEXT_SHARE * pixels else 0


def stability_of(drift: int) -> int:
    """The stability (0-100) of a hash that moves by ``drift`` bits under a 1 % resize."""
    return 100 - min(100, round(drift * 100 / 64))


def pdq_dct(luma: "LumaImage") -> tuple[np.ndarray | None, int]:
    """The 16x16 DCT coefficients PDQ thresholds at their median (bit i*16+j is [i, j] >
    median), and the quality; ``None`` for images under 5 px a side (hashed as all zeros)."""
    from hashguard.signals import pdq_kernel

    buffer, quality = _buffer_64x64(luma)
    if buffer is None:
        return None, 0
    return pdq_kernel.dct_16x16(buffer, pdq_kernel.DCT_16X64), quality


def _buffer_64x64(luma: "LumaImage") -> tuple[np.ndarray | None, int]:
    from hashguard.signals import pdq_kernel

    if luma.width < pdq_kernel.MIN_SIDE or luma.height < pdq_kernel.MIN_SIDE:
        return None, 0
    pixels = luma.pixels
    if luma.scale == 1 and pixels.size <= _EXACT_MAX_PIXELS:
        buffer = pdq_kernel.exact_64x64(pixels)
    else:
        buffer = pdq_kernel.weighted_64x64(
            pixels, luma.height, luma.width, luma.scale, luma.reversed_axes
        )
    if (luma.black, luma.white) != (0.0, 255.0):
        # The pipeline is linear, so mapping video levels to 0..255 here equals doing it per pixel.
        gain = np.float32(255.0 / (luma.white - luma.black))
        buffer = (buffer - np.float32(luma.black)) * gain
    buffer = np.ascontiguousarray(buffer, dtype=np.float32)
    return buffer, int(pdq_kernel.quality(buffer))


class PdqSignal(SignalType[PdqHash]):
    name: ClassVar[str] = "pdq"
    media: ClassVar[frozenset[MediaKind]] = frozenset({MediaKind.IMAGE})
    default_threshold: ClassVar[float] = DEFAULT_THRESHOLD
    max_threshold: ClassVar[float] = 256
    index: ClassVar[IndexKind | None] = IndexKind.HAMMING
    hex_digits: ClassVar[int | None] = 64

    def __init__(self, min_quality: int = MIN_QUALITY, min_stability: int = MIN_STABILITY) -> None:
        self.min_quality: int | None = min_quality
        self.min_stability: int | None = min_stability

    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> PdqHash:
        from hashguard.media.image import decode_luma

        data = read_image(source, limits)
        return hash_luma(decode_luma(data, limits, min_side=REDUCED_MIN_SIDE))

    def hash_dihedral(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> DihedralHashes:
        from hashguard.media.image import decode_luma

        data = read_image(source, limits)
        return dihedral_luma(decode_luma(data, limits, min_side=REDUCED_MIN_SIDE))

    def parse(self, text: str) -> PdqHash:
        value = text.strip().lower()
        if not _HEX.fullmatch(value):
            raise InvalidSignalValue(
                f"expected a PDQ hash of 64 hex digits, got {preview(text)} ({len(text)} chars)"
            )
        return PdqHash(bytes.fromhex(value))

    def format(self, value: PdqHash) -> str:
        return value.hex

    def key(self, value: PdqHash) -> bytes:
        return value.bits

    def plausible(self, canonical: str) -> bool:
        # Each bit is a DCT coefficient above their median: a hash of an image has at most
        # half its bits set (exactly half unless coefficients tie at the median). A SHA-256
        # digest has more than half about one time in two.
        return int(canonical, 16).bit_count() <= 128

    def quality(self, value: PdqHash) -> int | None:
        return value.quality

    def stability(self, value: PdqHash) -> int | None:
        return value.stability

    def degenerate(self, value: PdqHash | str) -> bool:
        """Within ``DEGENERATE_RADIUS`` bits of a parity hash: see ``PARITY_HASHES``."""
        if isinstance(value, PdqHash):
            bits = int.from_bytes(value.bits, "big")
        else:
            try:
                bits = int(value, 16)
            except ValueError:
                return False
        return any((bits ^ parity).bit_count() <= DEGENERATE_RADIUS for parity in _PARITY_BITS)

    def threshold_for(self, value: PdqHash, threshold: float) -> float:
        """At most ``FLAT_THRESHOLD`` for an image dominated by flat regions and text (screens
        of one app, pages of one template differ in little more than their text)."""
        return min(threshold, FLAT_THRESHOLD) if value.flat_and_text else threshold

    def distance(self, a: PdqHash, b: PdqHash) -> int:
        return a.distance(b)

    def compare(self, a: PdqHash, b: PdqHash, threshold: float | None = None) -> Comparison:
        given = self.default_threshold if threshold is None else threshold
        limit = min(self.threshold_for(a, given), self.threshold_for(b, given))
        distance = a.distance(b)
        low = [q for q in (a.quality, b.quality) if q is not None and self.too_low(q)]
        if low:
            reason = f"quality {min(low)} is below {self.min_quality}: too little detail to match"
            return Comparison(self.name, distance, limit, False, reason)
        shaky = [v for v in (a.stability, b.stability) if v is not None and self.too_unstable(v)]
        if shaky:
            reason = (
                f"stability {min(shaky)} is below {self.min_stability}: the hash moves under "
                "a 1 % resize, it is noise"
            )
            return Comparison(self.name, distance, limit, False, reason)
        match = distance <= limit
        verb = "within" if match else "over"
        reason = f"{distance} of 256 bits differ, {verb} the threshold of {limit:g}"
        if limit < given:
            reason += " (stricter for an image of flat regions and text)"
        return Comparison(self.name, distance, limit, match, reason)
