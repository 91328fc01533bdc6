"""vPDQ, Meta's video hash: the PDQ hash of sampled frames, compared as two sets of frames.

String form (the vPDQ text form): one line per frame, ``frame,quality,hash,timestamp_seconds``.
ThreatExchange's and HMA's form, a JSON array of ``"hash,quality,timestamp"`` strings, is read
too, and is the canonical form lists store (``canonical_of``). Two videos match when,
counting only distinct frames of quality >= 50, at least 80 % of the query's frames have a frame
in the other within PDQ distance 31, and at least 80 % of the other's have one in the query (all
four numbers configurable). As in ThreatExchange and HMA, repeated frames (a still scene) count
once.

Lists hold vPDQ values; the Matcher indexes their frames (``IndexKind.FRAMES``). There a list's
``vpdq`` threshold is the percentage of each side's frames allowed without a close frame (20:
both match percentages >= 80), and its ``pdq`` threshold the distance at which two frames are
close.
"""

import json
import math
import re
from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np

from hashguard.media.errors import CorruptMedia
from hashguard.media.formats import MediaKind
from hashguard.media.limits import DEFAULT_LIMITS, Limits
from hashguard.signals.base import (
    Comparison,
    IndexKind,
    InvalidSignalValue,
    MediaSource,
    SignalType,
)
from hashguard.signals.pdq import DEFAULT_THRESHOLD, MIN_QUALITY, hash_luma

DEFAULT_MATCH_PERCENT: Final = 80.0
_LINE: Final = re.compile(r"(\d+),(\d+),([0-9a-f]{64}),(\d+(?:\.\d*)?)")
# hash,quality,timestamp; ThreatExchange writes 3 significant digits (123.4 s is "1.23e+02").
_EXCHANGED: Final = re.compile(r"([0-9a-f]{64}),(\d+),(\d+(?:\.\d*)?(?:e[+-]?\d+)?)")
_PAIRS_PER_CHUNK: Final = 1_000_000  # 32 MB of XORed hashes per chunk


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    number: int
    quality: int
    bits: bytes  # 32 bytes, PDQ hex-string order
    timestamp: float

    @property
    def hex(self) -> str:
        return self.bits.hex()


@dataclass(frozen=True, slots=True)
class VpdqHash:
    frames: tuple[VpdqFrame, ...]

    @property
    def mean_quality(self) -> int:
        if not self.frames:
            return 0
        return round(sum(f.quality for f in self.frames) / len(self.frames))


@dataclass(frozen=True, slots=True)
class VpdqComparison(Comparison):
    """``query_percent``: share of the query's good frames found in the target, and vice versa.

    ``distance`` is the percentage of good frames without a close frame on the worse side, and
    ``threshold`` the percentage allowed (100 - the required percentage), so with the same
    percentage required of both sides (the default), match is ``distance <= threshold`` as for
    every signal. ``frame_threshold`` is the PDQ distance at which two frames count as close.
    """

    query_percent: float = 0.0
    target_percent: float = 0.0
    frame_threshold: float = DEFAULT_THRESHOLD


class VpdqSignal(SignalType[VpdqHash]):
    name: ClassVar[str] = "vpdq"
    media: ClassVar[frozenset[MediaKind]] = frozenset({MediaKind.VIDEO})
    # Percentage of good frames allowed without a close frame in the other video.
    default_threshold: ClassVar[float] = 100.0 - DEFAULT_MATCH_PERCENT
    max_threshold: ClassVar[float] = 100.0
    index: ClassVar[IndexKind | None] = IndexKind.FRAMES
    frame_signal: ClassVar[str | None] = "pdq"

    def __init__(
        self,
        per_second: float = 1.0,
        *,
        frame_threshold: float = DEFAULT_THRESHOLD,
        min_quality: int = MIN_QUALITY,
        query_percent: float = DEFAULT_MATCH_PERCENT,
        target_percent: float = DEFAULT_MATCH_PERCENT,
        threads: int = 1,
    ) -> None:
        if per_second < 0:
            raise ValueError("per_second must be >= 0 (0 hashes every frame)")
        self.per_second = per_second
        self.frame_threshold = frame_threshold
        self.min_quality: int | None = min_quality
        self.query_percent = query_percent
        self.target_percent = target_percent
        self.threads = threads

    def hash(self, source: MediaSource, limits: Limits = DEFAULT_LIMITS) -> VpdqHash:
        from hashguard.media.video import iter_frames  # PyAV loads when a video is hashed

        frames = iter_frames(source, limits, per_second=self.per_second, threads=self.threads)
        hashed = []
        for frame in frames:
            pdq = hash_luma(frame.luma, measure=False)
            assert pdq.quality is not None
            hashed.append(VpdqFrame(frame.number, pdq.quality, pdq.bits, frame.timestamp))
        if not hashed:
            raise CorruptMedia("no video frame could be decoded")
        return VpdqHash(tuple(hashed))

    def key(self, value: VpdqHash) -> bytes:
        """The frames that count (distinct, of quality >= the minimum), 32 bytes each."""
        return _good_frames(value, self.min_quality or 0).tobytes()

    def plausible(self, canonical: str) -> bool:
        return True  # the form itself says it is vPDQ

    def canonical_of(self, value: VpdqHash) -> str:
        """ThreatExchange's and HMA's string form, which lists store: a JSON array of
        "hash,quality,timestamp" (frame numbers left out: matching never uses them)."""
        return json.dumps([f"{f.hex},{f.quality},{f.timestamp:.3f}" for f in value.frames])

    def parse_line(self, text: str) -> VpdqHash:
        if not text.lstrip().startswith("["):
            raise InvalidSignalValue(
                "one video per line, in ThreatExchange's JSON form: "
                '["<64 hex digits>,<quality>,<seconds>", ...]'
            )
        return self._parse_exchanged(text)

    def parse(self, text: str) -> VpdqHash:
        if text.lstrip().startswith("["):
            return self._parse_exchanged(text)
        frames = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line:
                continue
            found = _LINE.fullmatch(line.lower())
            if found is None:
                raise InvalidSignalValue(
                    f"vPDQ line {number}: expected 'frame,quality,hash,timestamp_seconds' "
                    f"(hash = 64 hex digits), got {line[:90]!r}"
                )
            quality = int(found.group(2))
            if quality > 100:
                raise InvalidSignalValue(f"vPDQ line {number}: quality {quality} is over 100")
            frames.append(
                VpdqFrame(
                    int(found.group(1)),
                    quality,
                    bytes.fromhex(found.group(3)),
                    _seconds(found.group(4), number),
                )
            )
        if not frames:
            raise InvalidSignalValue("a vPDQ hash needs at least one frame line")
        return VpdqHash(tuple(frames))

    def _parse_exchanged(self, text: str) -> VpdqHash:
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidSignalValue(
                "a vPDQ hash in JSON form is an array of 'hash,quality,timestamp' strings"
            )
        frames = []
        for number, item in enumerate(items):
            found = _EXCHANGED.fullmatch(item.strip().lower())
            if found is None or int(found.group(2)) > 100:
                raise InvalidSignalValue(
                    f"vPDQ frame {number}: expected 'hash,quality,timestamp' (hash = 64 hex "
                    f"digits, quality 0-100), got {item[:90]!r}"
                )
            frames.append(
                VpdqFrame(
                    number,
                    int(found.group(2)),
                    bytes.fromhex(found.group(1)),
                    _seconds(found.group(3), number),
                )
            )
        if not frames:
            raise InvalidSignalValue("a vPDQ hash needs at least one frame")
        return VpdqHash(tuple(frames))

    def format(self, value: VpdqHash) -> str:
        return "\n".join(f"{f.number},{f.quality},{f.hex},{f.timestamp:.3f}" for f in value.frames)

    def distance(self, a: VpdqHash, b: VpdqHash) -> float:
        """Percentage of good frames without a close frame in the other video, worse side."""
        return self.compare(a, b).distance

    def compare(self, a: VpdqHash, b: VpdqHash, threshold: float | None = None) -> VpdqComparison:
        """Compare query ``a`` with target ``b``.

        ``threshold``: the percentage of each side's good frames allowed without a close frame;
        by default 100 minus the signal's ``query_percent`` and ``target_percent``.
        """
        if threshold is None:
            need_query, need_target = self.query_percent, self.target_percent
        else:
            need_query = need_target = 100.0 - threshold
        allowed = 100.0 - min(need_query, need_target)
        floor = self.min_quality or 0
        query = _good_frames(a, floor)
        target = _good_frames(b, floor)
        if len(query) == 0 or len(target) == 0:
            reason = f"no frames of quality >= {floor} to compare"
            return VpdqComparison(
                self.name, 100.0, allowed, False, reason, 0.0, 0.0, self.frame_threshold
            )
        q_pct, t_pct = _matched_percentages(query, target, self.frame_threshold)
        # Two videos sharing no frame never match, whatever is allowed (the frame index
        # finds only videos that share one).
        match = q_pct >= need_query and t_pct >= need_target and q_pct > 0
        reason = (
            f"{q_pct:.1f} % of the query's frames and {t_pct:.1f} % of the other's have a frame "
            f"within {self.frame_threshold:g} bits; a match needs {need_query:g} % and "
            f"{need_target:g} %"
        )
        distance = 100.0 - min(q_pct, t_pct)
        return VpdqComparison(
            self.name, distance, allowed, match, reason, q_pct, t_pct, self.frame_threshold
        )


def _seconds(text: str, frame: int) -> float:
    """A frame's timestamp; raises ``InvalidSignalValue`` for one too large to be a time."""
    seconds = float(text)
    if not math.isfinite(seconds):
        raise InvalidSignalValue(f"vPDQ frame {frame}: timestamp {text[:30]!r} is not a time")
    return seconds


def _good_frames(value: VpdqHash, min_quality: int) -> np.ndarray:
    """Distinct frame hashes of quality >= ``min_quality`` (filtered, then repeats dropped, as
    ThreatExchange and Meta's C++ do), as uint64 x 4."""
    seen: set[bytes] = set()
    bits = []
    for frame in value.frames:
        if frame.quality >= min_quality and frame.bits not in seen:
            seen.add(frame.bits)
            bits.append(frame.bits)
    return np.frombuffer(b"".join(bits), dtype=np.uint64).reshape(len(bits), 4)


def _matched_percentages(
    query: np.ndarray, target: np.ndarray, threshold: float
) -> tuple[float, float]:
    """Shares of query and target frames that have a frame within ``threshold`` on the other side.

    Works through the query in chunks, so memory stays bounded for long videos.
    """
    limit = math.floor(threshold)
    step = max(1, _PAIRS_PER_CHUNK // len(target))
    query_found = np.zeros(len(query), dtype=bool)
    target_found = np.zeros(len(target), dtype=bool)
    for start in range(0, len(query), step):
        block = query[start : start + step, None, :] ^ target[None, :, :]
        close = np.bitwise_count(block).sum(axis=2, dtype=np.int32) <= limit
        query_found[start : start + step] = close.any(axis=1)
        target_found |= close.any(axis=0)
    return 100.0 * float(query_found.mean()), 100.0 * float(target_found.mean())
