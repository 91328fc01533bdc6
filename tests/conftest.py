"""Shared fixtures. Test media is generated here, benign shapes and colours; ``../shared`` is
optional and only read by tests marked ``shared``."""

import io
import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pdqhash
import pytest
from hypothesis import HealthCheck, settings
from PIL import Image, ImageOps
from sqlalchemy import Engine

from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqHash
from hashguard.store.database import open_engine, temporary_database

# No timing assertions in tests, Hypothesis's included: a busy 2-core CI machine is slow.
settings.register_profile("hashguard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hashguard")

# ../shared/data beside the repository, or wherever HASHGUARD_SHARED_DATA points.
SHARED_DATA = Path(
    os.environ.get("HASHGUARD_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; the test is skipped, with this notice, when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"conformance data absent: {SHARED_DATA} not found (optional)")
    return SHARED_DATA


POSTGRES_URL = os.environ.get("HASHGUARD_TEST_POSTGRES_URL", "")


@contextmanager
def scratch_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database of ``kind``: a SQLite file in ``directory``, or a fresh database on the
    PostgreSQL server named by HASHGUARD_TEST_POSTGRES_URL (``make test`` starts one of its own
    with scripts/with-postgresql), dropped afterwards. Without that server the test is skipped,
    with this notice."""
    if kind == "sqlite":
        yield f"sqlite:///{directory / 'hashguard.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL absent: HASHGUARD_TEST_POSTGRES_URL is not set (`make test` starts a "
            "server of its own with scripts/with-postgresql, or says why it could not)"
        )
    with temporary_database(POSTGRES_URL) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, SQLite and PostgreSQL (``scratch_database``)."""
    with scratch_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """That database opened, its schema migrated."""
    opened = open_engine(database_url)
    yield opened
    opened.dispose()


def reference_pdq(data: bytes) -> PdqHash:
    """Meta's C++ PDQ on a full-resolution decode, EXIF orientation applied: the reference."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    bits, quality = pdqhash.compute(np.asarray(image))
    return PdqHash(np.packbits(bits).tobytes(), int(quality))


def reference_dihedral(data: bytes) -> list[bytes]:
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
    return encode(scene(seed, width, height), "JPEG", **options)


def png(seed: int, width: int = 640, height: int = 480) -> bytes:
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


_REPORT: list[str] = []


class ConformanceReport:
    """Lines for the conformance summary printed at the end of the run (also under xdist)."""

    def __init__(self, node: pytest.Item) -> None:
        self.node = node

    def append(self, line: str) -> None:
        self.node.user_properties.append(("conformance", line))


@pytest.fixture
def report(request: pytest.FixtureRequest) -> ConformanceReport:
    return ConformanceReport(request.node)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _REPORT.extend(line for key, line in report.user_properties if key == "conformance")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("conformance")
        for line in _REPORT:
            terminalreporter.write_line(line)
