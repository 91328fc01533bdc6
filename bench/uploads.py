"""Memory under concurrent uploads of the worst-case image, with the decode budget.

    make bench-uploads    # or: .venv/bin/python bench/uploads.py [--uploads 16]

(a) What decoding one image to luma holds at its peak, per format and mode, each in a fresh
    process (RSS sampled every 2 ms while ``hash_stream`` hashes it with every default
    signal): 8000 x 8000 pixels (64 MP, the default pixel limit), rows of noise repeated so
    the files stay small (a 230 KB PNG: inside every default limit). The bytes per pixel are
    what ``media.image.decoded_bytes`` counts for the budget.
(b) A real ``hashguard serve`` (default settings but for the budget's, given as options) and
    ``--uploads`` clients each POSTing the worst-case image of (a) to ``/v1/hash`` at once:
    the server's peak RSS (sampled every 5 ms), against the bound
    idle RSS + max_decode_mb + the bodies held + 10 % (allocator slack); the answers (200, 503).
    Also the same PNG uploads with the budget opened wide (what the server held before).
"""

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from hashguard.store.api_keys import ApiKeyStore, Role
from hashguard.store.database import open_engine
from report import table
from service import Server

SIDE = 8000  # 64 MP: the default max_pixels
MIB = 1024 * 1024


def _rows(dtype: type[np.generic], bands: int, top: float) -> np.ndarray:
    """SIDE x SIDE pixels: one row of noise, repeated (so the file compresses to little)."""
    rng = np.random.default_rng(0)
    shape = (1, SIDE) if bands == 1 else (1, SIDE, bands)
    row = rng.integers(0, int(top), shape).astype(dtype)
    return np.repeat(row, SIDE, axis=0)


IMAGES: dict[str, Callable[[], tuple[Image.Image, str, dict[str, object]]]] = {
    "PNG, RGB": lambda: (Image.fromarray(_rows(np.uint8, 3, 256), "RGB"), "PNG", {}),
    "PNG, RGBA": lambda: (Image.fromarray(_rows(np.uint8, 4, 256), "RGBA"), "PNG", {}),
    "PNG, 16-bit grey": lambda: (Image.fromarray(_rows(np.uint16, 1, 65536)), "PNG", {}),
    "TIFF, 32-bit float": lambda: (
        Image.fromarray(_rows(np.float32, 1, 255)),
        "TIFF",
        {"compression": "tiff_adobe_deflate"},
    ),
    "WebP, lossless RGB": lambda: (
        Image.fromarray(_rows(np.uint8, 3, 256), "RGB"),
        "WEBP",
        {"lossless": True},
    ),
}
WIDE_OPEN = ("--max-decodes", "64", "--max-decode-mb", "65536")  # as good as no budget
WORST = "WebP, lossless RGB"  # the largest peak per pixel in (a)


def encoded(name: str) -> bytes:
    image, fmt, options = IMAGES[name]()
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


class PeakRss:
    """The peak RSS of process ``pid`` while the block runs, sampled every ``every`` s."""

    def __init__(self, pid: int, every: float) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._done.wait(self.every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def decode_one(name: str) -> None:
    """(a) in this process: print the file's size, the decode's seconds and peak RSS growth."""
    from hashguard.media.limits import Limits
    from hashguard.signals import registry
    from hashguard.signals.batch import hash_stream

    data = encoded(name)
    limits = Limits(max_image_bytes=64 * MIB, max_video_bytes=64 * MIB)
    signals = [registry.get(n) for n in registry.names()]
    warm = io.BytesIO()
    Image.new("RGB", (64, 64)).save(warm, "PNG")
    hash_stream(io.BytesIO(warm.getvalue()), len(warm.getvalue()), signals, limits)
    before = rss_mb(os.getpid())
    started = time.perf_counter()
    with PeakRss(os.getpid(), 0.002) as peak:
        hashed = hash_stream(io.BytesIO(data), len(data), signals, limits)
    assert hashed.undecodable is None, hashed.undecodable
    print(len(data), time.perf_counter() - started, peak.peak - before)


def per_pixel() -> list[list[str]]:
    rows = []
    for name in IMAGES:
        out = subprocess.run([sys.executable, __file__, "--decode-one", name], check=True,
                             capture_output=True, text=True).stdout.split()  # fmt: skip
        size, seconds, grown = int(out[0]), float(out[1]), float(out[2])
        rows.append([name, f"{size / 1000:,.0f} kB", f"{seconds:.1f} s", f"{grown:,.0f} MB",
                     f"{grown * MIB / SIDE**2:.1f}"])  # fmt: skip
    return rows


def uploads(url: str, token: str, data: bytes, count: int) -> tuple[Counter[int], float]:
    """``count`` clients POSTing ``data`` at once: the statuses, the seconds until the last."""
    statuses: Counter[int] = Counter()
    start = threading.Barrier(count)

    def one() -> None:
        with httpx.Client(base_url=url, timeout=600) as client:
            start.wait()
            answer = client.post("/v1/hash", content=data,
                                 headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            statuses[answer.status_code] += 1

    started = time.perf_counter()
    clients = [threading.Thread(target=one) for _ in range(count)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return statuses, time.perf_counter() - started


def served(scratch: Path, name: str, count: int, port: int, *options: str) -> list[str]:
    """(b): one row: the server's idle and peak RSS, the bound, the answers."""
    database = f"sqlite:///{scratch / (name.replace(' ', '-') + str(port))}.db"
    engine = open_engine(database)
    token = ApiKeyStore(engine).create(Role.MATCHER)[1]
    engine.dispose()
    data = encoded(name)
    server = Server(database, port, "--secret-file", str(scratch / "secret.key"), *options)
    try:
        assert server.loaded.wait(120), "".join(server.lines)
        small = io.BytesIO()
        Image.new("RGB", (640, 480), "grey").save(small, "PNG")
        with httpx.Client(base_url=server.base, timeout=60) as client:  # loads the decoders
            warm = client.post("/v1/hash", content=small.getvalue(),
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
            assert warm.status_code == 200, warm.text
        idle = rss_mb(server.process.pid)
        with PeakRss(server.process.pid, 0.005) as peak:
            statuses, seconds = uploads(server.base, token, data, count)
    finally:
        server.stop()
    budget = next((int(options[i + 1]) for i, o in enumerate(options) if o == "--max-decode-mb"),
                  1024)  # fmt: skip
    bodies = count * len(data) * 2 / MIB  # each body and its copy for the decoder
    bound = (idle + budget + bodies) * 1.1
    answers = ", ".join(f"{n} x {status}" for status, n in sorted(statuses.items()))
    return [f"{count} x {name} ({len(data) / 1000:,.0f} kB)", " ".join(options) or "defaults",
            f"{idle:,.0f} MB", f"{peak.peak:,.0f} MB", f"{bound:,.0f} MB",
            "yes" if peak.peak <= bound else "**no**", answers, f"{seconds:.0f} s"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--uploads", type=int, default=16)
    parser.add_argument("--port", type=int, default=8711)
    parser.add_argument("--decode-one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode_one:
        decode_one(args.decode_one)
        return
    print("(a) decoding one 8000 x 8000 image to luma, every default signal, a process each\n")
    table(["image", "file", "time", "peak RSS growth", "bytes per pixel"], per_pixel())
    print(f"(b) hashguard serve, {args.uploads} concurrent POST /v1/hash of one image\n")
    with tempfile.TemporaryDirectory() as scratch:
        rows = [
            served(Path(scratch), WORST, args.uploads, args.port),
            served(Path(scratch), WORST, args.uploads, args.port + 1, "--decode-wait", "600"),
            served(Path(scratch), "PNG, RGB", args.uploads, args.port + 2),
            served(Path(scratch), "PNG, RGB", args.uploads, args.port + 3, *WIDE_OPEN),
        ]
    table(["uploads", "budget options", "idle RSS", "peak RSS", "bound", "within",
           "answers", "all answered in"], rows)  # fmt: skip


if __name__ == "__main__":
    main()
