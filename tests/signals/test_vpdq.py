"""vPDQ: frame sampling, the text form, the comparison rules, video limits and bad input."""

import io
import json

import av
import numpy as np
import pdqhash
import pytest

from hashguard.media import CorruptMedia, LimitExceeded, Limits, UnsupportedMedia
from hashguard.media.video import iter_frames, probe
from hashguard.signals import InvalidSignalValue
from hashguard.signals.vpdq import VpdqFrame, VpdqHash, VpdqSignal

from support.media import make_video

EVERY_FRAME = VpdqSignal(per_second=0)


@pytest.fixture(scope="module")
def video() -> bytes:
    return make_video(1, seconds=4, fps=10)


def test_sampling_rate(video: bytes) -> None:
    every = EVERY_FRAME.hash(video)
    assert [f.number for f in every.frames] == list(range(40))
    assert every.frames[13].timestamp == pytest.approx(1.3)
    per_second = VpdqSignal().hash(video)
    assert [f.number for f in per_second.frames] == [0, 10, 20, 30]
    assert [f.bits for f in per_second.frames] == [every.frames[i].bits for i in (0, 10, 20, 30)]
    assert [f.number for f in VpdqSignal(per_second=2.5).hash(video).frames] == list(
        range(0, 40, 4)
    )


def test_frame_hashes_conform_to_the_reference_on_rgb_frames(video: bytes) -> None:
    ours = EVERY_FRAME.hash(video)
    close = 0
    with av.open(io.BytesIO(video)) as container:
        for frame, hashed in zip(container.decode(video=0), ours.frames, strict=True):
            bits, quality = pdqhash.compute(frame.to_ndarray(format="rgb24"))
            distance = int(
                np.unpackbits(np.packbits(bits) ^ np.frombuffer(hashed.bits, np.uint8)).sum()
            )
            close += distance <= 10
            assert abs(hashed.quality - quality) <= 5
    assert close >= 0.9 * len(ours.frames)


def test_text_form_round_trips(video: bytes) -> None:
    value = VpdqSignal().hash(video)
    text = EVERY_FRAME.format(value)
    lines = text.splitlines()
    assert len(lines) == 4
    number, quality, hexhash, timestamp = lines[1].split(",")
    assert (number, timestamp) == ("10", "1.000")
    assert len(hexhash) == 64 and 0 <= int(quality) <= 100
    assert EVERY_FRAME.parse(text + "\n") == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at least one frame"),
        ("0,100,abc,0.000", "line 1"),
        ("0,100," + "0" * 64 + ",0.000\n1,100," + "0" * 64, "line 2"),
        ("0,101," + "0" * 64 + ",0.000", "quality 101"),
        ("x,1," + "0" * 64 + ",0", "line 1: expected 'frame,quality,hash,timestamp_seconds'"),
    ],
)
def test_malformed_text_is_refused_with_the_line(text: str, message: str) -> None:
    with pytest.raises(InvalidSignalValue, match=message):
        EVERY_FRAME.parse(text)


def test_same_video_re_encoded_matches_and_another_does_not(video: bytes) -> None:
    signal = VpdqSignal(per_second=0)
    original = signal.hash(video)
    smaller = signal.hash(make_video(1, seconds=4, fps=10, bitrate=200_000, container="matroska"))
    result = signal.compare(smaller, original)
    assert result.match
    assert result.query_percent >= 80 and result.target_percent >= 80
    other = signal.compare(signal.hash(make_video(2, seconds=4, fps=10)), original)
    assert not other.match
    assert other.query_percent < 20


def test_match_percentages_are_per_side() -> None:
    def frames(*patterns: int, quality: int = 90) -> VpdqHash:
        return VpdqHash(
            tuple(VpdqFrame(i, quality, bytes([p]) * 32, float(i)) for i, p in enumerate(patterns))
        )

    # The query is a clip: both its frames are in the target, 2 of the target's 5 are in it.
    clip, full = frames(0x00, 0xFF), frames(0x00, 0xFF, 0x0F, 0x33, 0x55)
    result = EVERY_FRAME.compare(clip, full)
    assert (result.query_percent, result.target_percent) == (100.0, 40.0)
    assert not result.match
    assert VpdqSignal(target_percent=40).compare(clip, full).match
    # Low-quality frames are left out of both counts.
    assert not EVERY_FRAME.compare(frames(0x00, quality=49), full).match
    # Repeated frames (a still scene) count once, as in ThreatExchange and HMA.
    still = EVERY_FRAME.compare(frames(0x00, 0x00, 0x00, 0x00, 0xFF), frames(0x00))
    assert (still.query_percent, still.target_percent) == (50.0, 100.0)
    assert not still.match


def test_threshold_semantics_are_consistent() -> None:
    signal = VpdqSignal(per_second=0)
    assert signal.default_threshold == 20  # % of frames allowed without a close frame
    a = VpdqHash(tuple(VpdqFrame(i, 90, bytes([i]) * 32, i) for i in range(10)))
    b = VpdqHash(a.frames[:8])
    result = signal.compare(a, b)
    assert (result.query_percent, result.target_percent) == (80.0, 100.0)
    assert result.distance == 20 and result.threshold == 20 and result.match
    assert signal.distance(a, b) == 20
    assert not signal.compare(a, b, threshold=10).match
    # The frame distance is the signal's own setting.
    moved = VpdqHash(tuple(VpdqFrame(f.number, 90, bytes([f.bits[0] ^ 3]) + f.bits[1:], 0.0)
                           for f in a.frames))  # fmt: skip
    assert signal.compare(a, moved).match
    assert not VpdqSignal(per_second=0, frame_threshold=1).compare(a, moved).match


def test_video_limits_are_checked_from_the_header(video: bytes) -> None:
    info = probe(video)  # probe decodes no frame: what it refuses, it refuses from the header
    assert (info.width, info.height) == (320, 240)
    assert info.fps == 10 and info.duration == pytest.approx(4.0, abs=0.2)
    for limits, message in (
        (Limits(max_video_seconds=2), "video duration"),
        (Limits(max_video_frames=10), "video frame count 40"),
        (Limits(max_pixels=320 * 200), "declared 320x240 pixels"),
        (Limits(max_video_bytes=1000), "video size"),
    ):
        with pytest.raises(LimitExceeded, match=message):
            probe(video, limits)
        with pytest.raises(LimitExceeded, match=message):
            next(iter_frames(video, limits))


def test_frames_over_the_pixel_limit_are_refused_even_midway() -> None:
    small = make_video(1, seconds=0.3, size=(64, 48), codec="mpeg2video", container="mpegts")
    large = make_video(2, seconds=0.8, size=(640, 480), codec="mpeg2video", container="mpegts")
    mixed = small + large + small  # transport streams concatenate; the size changes midway
    assert probe(mixed).width == 64
    assert len(EVERY_FRAME.hash(mixed).frames) >= 10  # the demuxer may drop one at a seam
    with pytest.raises(CorruptMedia, match="over 10,000 pixels"):
        VpdqSignal().hash(mixed, Limits(max_pixels=10_000))


def test_metadata_that_is_not_utf8_does_not_refuse_the_video() -> None:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="matroska") as output:
        output.metadata["title"] = "QQQQQQQQ"
        stream = output.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(5):
            pixels = np.full((48, 64, 3), index * 40, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    latin1 = buffer.getvalue().replace(b"QQQQQQQQ", b"Caf\xe9 \xff\xfeQQ")
    assert len(EVERY_FRAME.hash(latin1).frames) == 5


def test_bad_video_input() -> None:
    video = make_video(3, seconds=2)
    with pytest.raises(CorruptMedia):
        EVERY_FRAME.hash(video[:300])
    with pytest.raises(UnsupportedMedia, match="image"):
        EVERY_FRAME.hash(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(CorruptMedia):
        EVERY_FRAME.hash(video[:8] + b"garbage" * 100)
    damaged = bytearray(video)
    for position in range(3000, len(damaged), 997):  # the sample tables, then the frames
        damaged[position] = 0x55
    with pytest.raises(CorruptMedia, match="no video frame could be decoded"):
        EVERY_FRAME.hash(bytes(damaged))


def test_hash_reads_an_open_file(video: bytes) -> None:
    assert VpdqSignal().hash(io.BytesIO(video)) == VpdqSignal().hash(video)


def test_hmas_json_form_is_read_and_a_timestamp_that_is_no_time_refused() -> None:
    signal = VpdqSignal()
    frames = [f"{'ab' * 32},90,1.23e+02", f"{'cd' * 32},40,0.5"]  # ThreatExchange writes 3 digits
    value = signal.parse(json.dumps(frames))
    assert [(f.hex, f.quality, f.timestamp) for f in value.frames] == [
        ("ab" * 32, 90, 123.0),
        ("cd" * 32, 40, 0.5),
    ]
    assert signal.canonical(signal.format(value)) == signal.canonical_of(value)
    assert signal.key(value) == bytes.fromhex("ab" * 32)  # quality >= 50 only
    for bad in ([f"{'ab' * 32},90,1e999"], [f"{'ab' * 32},101,0"], ["x"], [], {"a": 1}):
        with pytest.raises(InvalidSignalValue):
            signal.parse(json.dumps(bad))
    with pytest.raises(InvalidSignalValue, match="JSON form"):
        signal.parse_line(f"0,90,{'ab' * 32},0.000")  # a frame line is not a video on a line
