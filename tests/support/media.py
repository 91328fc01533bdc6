"""Test media, generated: benign shapes and colours (``hashguard.media.synthetic``), and Meta's
C++ PDQ (``pdqhash``) as the reference hashes are checked against."""

import io
import struct
import zlib
from fractions import Fraction

import av
import numpy as np
import pdqhash
from PIL import Image, ImageOps

from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqHash


def reference_pdq(data: bytes) -> PdqHash:
    """Meta's C++ PDQ on a full-resolution decode, EXIF orientation applied: the reference."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(image))
    return PdqHash(np.packbits(bits).tobytes(), int(quality))


def reference_dihedral(data: bytes) -> list[bytes]:
    """Meta's C++ PDQ of the image's eight rotations and reflections, in its order."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    variants, _ = pdqhash.compute_dihedral(np.asarray(image))
    return [np.packbits(v).tobytes() for v in variants]


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def jpeg(seed: int, width: int = 640, height: int = 480, **options: int) -> bytes:
    """A JPEG of scene ``seed``."""
    return encode(scene(seed, width, height), "JPEG", **options)


def png(seed: int, width: int = 640, height: int = 480) -> bytes:
    """A PNG of scene ``seed``."""
    return encode(scene(seed, width, height), "PNG")


def make_video(
    seed: int,
    seconds: float = 3.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    *,
    codec: str = "mpeg4",
    container: str = "mp4",
    bitrate: int = 2_000_000,
) -> bytes:
    """A short benign video: a scene panned slowly, so consecutive frames differ a little."""
    width, height = size
    backdrop = scene(seed, width * 2, height)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = bitrate
        stream.time_base = Fraction(1, fps)
        frames = int(seconds * fps)
        for index in range(frames):
            left = int(index * width / max(1, frames))
            crop = backdrop.crop((left, 0, left + width, height))
            frame = av.VideoFrame.from_image(crop)
            frame.pts = index
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return buffer.getvalue()
