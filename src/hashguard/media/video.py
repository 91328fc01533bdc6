"""Decode untrusted video to luma frames with PyAV (FFmpeg), from memory or an open file.

The container header is checked against the limits (size, pixels, duration, frames) before any
frame is decoded, and the limits are enforced again while decoding, since headers can lie.
"""

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

import av
import numpy as np

from hashguard.media.errors import CorruptMedia, UnsupportedMedia, reason
from hashguard.media.formats import (
    AVI,
    FLV,
    MATROSKA,
    MP4,
    MPEG_PS,
    MPEG_TS,
    OGG,
    SNIFF_BYTES,
    MediaKind,
    sniff,
)
from hashguard.media.image import LumaImage
from hashguard.media.limits import DEFAULT_LIMITS, Limits

# FFmpeg demuxer per sniffed format: only these parsers ever see the bytes.
_DEMUXER: Final = {
    MP4: "mov",
    MATROSKA: "matroska",
    AVI: "avi",
    MPEG_TS: "mpegts",
    MPEG_PS: "mpeg",
    FLV: "flv",
    OGG: "ogg",
}
# 8-bit pixel formats whose first plane is luma: read it directly, no colour conversion.
_LUMA_PLANE_FORMATS: Final = {
    "yuv420p", "yuv422p", "yuv444p", "yuv440p", "yuv411p", "yuv410p", "nv12", "nv21", "nv16",
    "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p", "yuva420p", "yuva444p", "gray",
}  # fmt: skip
_FULL_RANGE_FORMATS: Final = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p", "gray"}
_AVCOL_RANGE_JPEG: Final = 2
_AV_TIME_BASE: Final = 1_000_000
# A decoded frame's cost per pixel: YUV 4:2:0 (1.5 bytes) for the frame and a few references,
# and the luma copy (an estimate for the decode budget, not measured).
_FRAME_BYTES_PER_PIXEL: Final = 8

VideoSource = bytes | BinaryIO


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration: float | None  # seconds, as the container declares it
    declared_frames: int  # 0 when the container does not say


@dataclass(frozen=True, slots=True)
class VideoFrame:
    number: int  # position in presentation order, from 0
    timestamp: float  # number / fps, as vPDQ defines it
    luma: LumaImage


def iter_frames(
    source: VideoSource,
    limits: Limits = DEFAULT_LIMITS,
    *,
    per_second: float = 1.0,
    threads: int = 1,
) -> Iterator[VideoFrame]:
    """Yield luma frames of the first video stream, ``per_second`` frames per second of video.

    ``per_second=0`` yields every frame. Frames are picked as vPDQ does: every
    ``int(fps / per_second)``-th frame, starting with the first.

    Raises ``EmptyMedia``, ``UnsupportedMedia``, ``CorruptMedia`` or ``LimitExceeded``.
    """
    if per_second < 0:
        raise ValueError("per_second must be >= 0")
    container, info = _open(source, limits)
    with container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = threads
        # FFmpeg itself refuses frames over the pixel limit, also when the size changes midway.
        stream.codec_context.options = {"max_pixels": str(limits.max_pixels)}
        step = 1 if per_second == 0 else max(1, int(info.fps / per_second))
        number = -1
        for frame in _decode(container, stream, limits):
            number += 1
            limits.check_video_frames(number + 1)
            timestamp = number / info.fps
            limits.check_video_seconds(timestamp)
            limits.check_pixels(frame.width, frame.height, "video frame of")
            if number % step == 0:
                yield VideoFrame(number, timestamp, _luma(frame))


def decoded_bytes(source: VideoSource, limits: Limits = DEFAULT_LIMITS) -> int:
    """The memory ``iter_frames`` of ``source`` holds at its peak, estimated from the declared
    frame size: the decoder's frames (YUV 4:2:0, a few kept as references) and one luma copy.
    Raises as ``probe``."""
    info = probe(source, limits)
    return info.width * info.height * _FRAME_BYTES_PER_PIXEL


def probe(source: VideoSource, limits: Limits = DEFAULT_LIMITS) -> VideoInfo:
    """Return what the container declares, after checking it against the limits."""
    container, info = _open(source, limits)
    container.close()
    return info


def _open(source: VideoSource, limits: Limits) -> tuple[Any, VideoInfo]:
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    limits.check_video_bytes(size)
    head = stream.read(SNIFF_BYTES)
    stream.seek(start)
    fmt = sniff(head)
    if fmt.kind is not MediaKind.VIDEO:
        raise UnsupportedMedia(f"{fmt.name} is an image format, not a video")
    try:
        # Titles in old files are often Latin-1: a metadata oddity must not refuse the video.
        container = av.open(stream, mode="r", format=_DEMUXER[fmt], metadata_errors="replace")
    except (av.FFmpegError, UnicodeError) as exc:
        raise CorruptMedia(f"cannot read the {fmt.name} container: {reason(exc)}") from exc
    try:
        if not container.streams.video:
            raise UnsupportedMedia(f"the {fmt.name} file has no video stream")
        info = _info(container, container.streams.video[0])
        _check_header(info, limits)
    except BaseException:
        container.close()
        raise
    return container, info


def _check_header(info: VideoInfo, limits: Limits) -> None:
    if info.width <= 0 or info.height <= 0:
        raise CorruptMedia("the video stream declares no frame size")
    limits.check_pixels(info.width, info.height)
    if info.duration is not None:
        limits.check_video_seconds(info.duration)
    limits.check_video_frames(info.declared_frames)


def _info(container: Any, stream: Any) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate
    if not rate or rate <= 0:
        raise CorruptMedia("the video stream declares no frame rate")
    duration: float | None = None
    if container.duration:
        duration = container.duration / _AV_TIME_BASE
    elif stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    context = stream.codec_context
    if context is None:  # a damaged header can leave the stream without any codec
        raise CorruptMedia("the video stream names no codec this build can decode")
    return VideoInfo(context.width, context.height, float(rate), duration, stream.frames or 0)


def _decode(container: Any, stream: Any, limits: Limits) -> Iterator[Any]:
    try:
        yield from container.decode(stream)
    except av.ArgumentError as exc:  # what FFmpeg's max_pixels check raises, among others
        raise CorruptMedia(
            f"cannot decode the video: a frame is invalid or over {limits.max_pixels:,} pixels"
        ) from exc
    except av.FFmpegError as exc:
        raise CorruptMedia(f"cannot decode the video: {reason(exc)}") from exc


def _luma(frame: Any) -> LumaImage:
    name = frame.format.name
    if name in _LUMA_PLANE_FORMATS:
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        pixels = np.array(rows[:, : plane.width])  # copy: the decoder reuses its buffers
        full = name in _FULL_RANGE_FORMATS or frame.color_range == _AVCOL_RANGE_JPEG
    else:
        pixels = frame.to_ndarray(format="gray")  # swscale maps any format to full-range grey
        full = True
    height, width = pixels.shape
    if full:
        return LumaImage(pixels, width, height)
    return LumaImage(pixels, width, height, black=16.0, white=235.0)
