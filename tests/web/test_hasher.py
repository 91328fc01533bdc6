"""The browser hasher (``/static/victims/hasher.js``) in a real headless Chromium against a real
``hashguard serve``: PDQ bit for bit with hashguard's Python PDQ on the same RGBA pixels, JPEGs
decoded by the browser close to Meta's reference, digests equal Python's, vPDQ of a video
matching the CLI's, image hashing in a module worker, and no request to any other host (every
other request is blocked and recorded). Benign generated media only."""

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hashguard.media.image import LumaImage
from hashguard.media.luma import luma_from_rgb
from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqHash, PdqSignal, hash_luma
from hashguard.signals.vpdq import VpdqSignal
from hashguard.store.database import open_engine

from support.browser import chromium, launched
from support.media import make_video, reference_pdq
from support.server import Server, running

chromium()  # else the module is skipped, saying what installs it

KINDS = ("scene", "noise", "waves", "flat", "linear", "radial")
# Hashed by the exact path (up to 1.2 MP), every kind: tiny, odd, square, long and thin.
EXACT_SIZES = (
    (1, 1), (3, 2), (2, 9), (4, 4), (5, 5), (5, 8), (6, 5), (7, 7), (8, 8), (9, 4), (13, 11),
    (16, 16), (17, 5), (31, 17), (50, 50), (63, 64), (64, 64), (65, 63), (99, 101), (100, 37),
    (37, 100), (127, 129), (128, 128), (150, 150), (200, 50), (255, 257), (256, 256), (320, 240),
    (400, 300), (333, 700), (700, 333), (511, 513), (512, 512), (640, 480), (800, 600),
    (999, 1001), (1095, 1095), (1200, 1000), (3, 4000), (4000, 7),
)  # fmt: skip
# Hashed by the weighted path (over 1.2 MP): float32 sums in one fixed order on both sides.
WEIGHTED_SIZES = (
    (1096, 1096), (1201, 1000), (4000, 301), (301, 4000), (1500, 1000), (2000, 1500),
    (1000, 2500), (3000, 2000), (4000, 3000),
)  # fmt: skip
# Images with detail (PDQ quality 100), and smooth ones (quality 0: flat, one-way and radial
# gradients), whose DCT coefficients are at the level of rounding noise: the hardest case for
# bit-for-bit agreement.
DETAILED = ("scene", "noise", "waves")
SMOOTH = ("flat", "linear", "radial")
PAGE = "/hasher-test"


def pixels(kind: str, seed: int, width: int, height: int) -> np.ndarray:
    """RGB pixels (height, width, 3) of a generated image of ``kind``."""
    rng = np.random.default_rng(seed)
    if kind == "scene":
        # scene() needs a few pixels a side: tiny scenes are cut from a larger one.
        drawn = scene(seed, max(width, 24), max(height, 24), grain=seed % 3 * 4.0)
        return np.ascontiguousarray(np.asarray(drawn)[:height, :width])
    if kind == "noise":
        return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if kind == "flat":
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (height, width, 3)).copy()
    y, x = np.mgrid[0:height, 0:width]
    if kind == "linear":
        values = x * 255 / max(1, width - 1) * 0.7 + y * 255 / max(1, height - 1) * 0.3
    elif kind == "radial":
        values = np.hypot(x - width / 3, y - height / 2) / np.hypot(width, height) * 400
    else:  # waves across both axes
        values = (np.sin(x / width * 40) * np.cos(y / height * 30) + 1) * 127
    grey = np.clip(values, 0, 255).astype(np.uint8)
    return np.stack([grey, 255 - grey, grey // 2], axis=2)


def python_pdq(rgb: np.ndarray) -> PdqHash:
    """hashguard's PDQ of RGB pixels: its luma (BT.601, float32) and transform."""
    height, width = rgb.shape[:2]
    return hash_luma(LumaImage(luma_from_rgb(np.ascontiguousarray(rgb)), width, height))


def png_of(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hasher') / 'hashguard.db'}"
    open_engine(url).dispose()  # migrated
    with running(url, roles=False) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launched() as launched_browser:
        yield launched_browser


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[SimpleNamespace]:
    """A blank page on the server's origin with the module imported as ``window.hasher``.
    ``files[path]`` = (type, bytes) answers a path of that origin from the test; any request
    to another host is blocked and recorded (``foreign``), and the test fails if one was made."""
    context = browser.new_context()
    files: dict[str, tuple[str, bytes]] = {PAGE: ("text/html", b"<!doctype html><title>t</title>")}
    foreign: list[str] = []

    def route(request: Any) -> None:
        url = request.request.url
        if not url.startswith(server.url + "/"):
            foreign.append(url)
            request.abort()
        elif url[len(server.url) :] in files:
            kind, body = files[url[len(server.url) :]]
            request.fulfill(status=200, content_type=kind, body=body)
        else:
            request.continue_()

    context.route("**/*", route)
    opened = context.new_page()
    opened.goto(server.url + PAGE)
    opened.evaluate("async () => { window.hasher = await import('/static/victims/hasher.js'); }")
    yield SimpleNamespace(page=opened, files=files, foreign=foreign)
    context.close()
    assert foreign == [], "the hasher made requests to other hosts"


HASH_PIXELS = """async (items) => {
  const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
  const out = [];
  for (const { path, width, height, raw } of items) {
    const bytes = await (await fetch(path)).arrayBuffer();
    let rgba = new Uint8Array(bytes);
    if (!raw) {
      const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }),
        { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const canvas = new OffscreenCanvas(width, height);
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(bitmap, 0, 0);
      rgba = context.getImageData(0, 0, width, height).data;
    }
    const pixels = hex(await crypto.subtle.digest("SHA-256", rgba));
    out.push({ ...window.hasher.hashPixels(rgba, width, height), pixels });
  }
  return out;
}"""


def hash_in_page(page: SimpleNamespace, images: list[tuple[str, np.ndarray]]) -> list[dict]:
    """The module's ``hashPixels`` of each image, decoded in the page from a PNG, with the
    SHA-256 of the RGBA pixels the page decoded (compared with Pillow's decode)."""
    items = []
    for name, rgb in images:
        path = f"/pixels/{name}.png"
        page.files[path] = ("image/png", png_of(rgb))
        items.append({"path": path, "width": rgb.shape[1], "height": rgb.shape[0], "raw": False})
    found = page.page.evaluate(HASH_PIXELS, items)
    for item in items:
        del page.files[item["path"]]
    return list(found)


def decoded_digest(rgb: np.ndarray) -> str:
    """SHA-256 of the RGBA pixels Pillow decodes from the PNG the page gets (opaque)."""
    rgba = np.asarray(Image.open(io.BytesIO(png_of(rgb))).convert("RGBA"))
    return hashlib.sha256(rgba.tobytes()).hexdigest()


def test_hash_pixels_equals_pythons_pdq_bit_for_bit_on_generated_images(page, report) -> None:
    cases = [(kind, size) for size in EXACT_SIZES for kind in KINDS]
    # The weighted path's sizes cost seconds each: every size once with detail and once smooth,
    # the kinds taking turns, so each kind meets large and small sizes.
    cases += [
        (kind, size)
        for number, size in enumerate(WEIGHTED_SIZES)
        for kind in (DETAILED[number % len(DETAILED)], SMOOTH[number % len(SMOOTH)])
    ]
    compared = 0
    for start in range(0, len(cases), 24):  # a batch a page call: the page holds few at once
        batch = cases[start : start + 24]
        images = [
            (f"{kind}-{w}x{h}", pixels(kind, start + i, w, h))
            for i, (kind, (w, h)) in enumerate(batch)
        ]
        found = hash_in_page(page, images)
        for (name, rgb), got in zip(images, found, strict=True):
            assert got["pixels"] == decoded_digest(rgb), f"{name}: the page decoded other pixels"
            want = python_pdq(rgb)
            assert (got["value"], got["quality"]) == (want.hex, want.quality), name
            compared += 1
    assert compared >= 200
    report.append(
        f"browser hasher: hashPixels == Python PDQ (hash and quality) on {compared} images"
    )


def test_alpha_is_dropped(page) -> None:
    items = []
    expected = []
    rng = np.random.default_rng(7)
    for number, (width, height) in enumerate(((5, 5), (64, 64), (300, 200), (1300, 1000))):
        rgb = pixels("scene", number, width, height)
        alpha = rng.integers(0, 256, (height, width, 1), dtype=np.uint8)
        path = f"/raw/{number}.rgba"
        page.files[path] = ("application/octet-stream", np.concatenate([rgb, alpha], 2).tobytes())
        items.append({"path": path, "width": width, "height": height, "raw": True})
        expected.append(python_pdq(rgb))
    found = page.page.evaluate(HASH_PIXELS, items)
    assert [(f["value"], f["quality"]) for f in found] == [(e.hex, e.quality) for e in expected]


HASH_FILE = """async ({ path, type }) => {
  const bytes = await (await fetch(path)).arrayBuffer();
  const values = await window.hasher.hashFile(new File([bytes], "f", { type }));
  return { values: Array.from(values), failed: values.failed || null };
}"""


def hash_file(page: SimpleNamespace, data: bytes, kind: str = "application/octet-stream") -> dict:
    """``hashFile`` of ``data`` in the page: {"values": {signal: entry}, "failed": reason}."""
    page.files["/file"] = (kind, data)
    found = page.page.evaluate(HASH_FILE, {"path": "/file", "type": kind})
    return {"values": {v["signal"]: v for v in found["values"]}, "failed": found["failed"]}


def jpeg_with(seed: int, width: int, height: int, quality: int, orientation: int = 1) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    image = scene(seed, width, height, grain=seed % 4 * 3.0)
    return encode(image, "JPEG", quality=quality, exif=exif.tobytes())


def test_jpegs_decoded_by_the_browser_are_close_to_the_reference(page, report) -> None:
    sizes = ((640, 480), (1024, 768), (480, 800), (1920, 1080), (3000, 2000), (4000, 3000))
    distances = []
    for number in range(16):  # every EXIF orientation twice, every quality four times
        width, height = sizes[number % len(sizes)]
        data = jpeg_with(number, width, height, (80, 85, 90, 95)[number % 4], number % 8 + 1)
        got = hash_file(page, data, "image/jpeg")["values"]
        assert set(got) == {"pdq", "md5", "sha256"}
        want = reference_pdq(data)
        found = distance(got["pdq"]["value"], want.hex)
        assert found <= 10, f"JPEG {number} ({width}x{height}): {found} bits from the reference"
        assert abs(got["pdq"]["quality"] - int(want.quality or 0)) <= 5
        distances.append(found)
    mean = sum(distances) / len(distances)
    assert mean <= 3
    report.append(
        f"browser hasher: {len(distances)} JPEGs (q80-95, EXIF orientations 1-8) vs pdqhash: "
        f"mean {mean:.2f} bits, max {max(distances)}"
    )


@pytest.mark.parametrize(
    "size", [0, 1, 55, 56, 63, 64, 65, 119, 120, 1_000_000, 4 * 1024 * 1024 + 3]
)
def test_digests_equal_pythons(page, size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    got = hash_file(page, data)
    assert got["values"] == {
        "md5": {"signal": "md5", "value": hashlib.md5(data).hexdigest()},
        "sha256": {"signal": "sha256", "value": hashlib.sha256(data).hexdigest()},
    }
    page.files["/bytes"] = ("application/octet-stream", data)
    javascript = page.page.evaluate(
        """async () => {
          const bytes = new Uint8Array(await (await fetch("/bytes")).arrayBuffer());
          return [window.hasher.md5Hex(bytes), window.hasher.sha256Hex(bytes)];
        }"""
    )
    assert javascript == [hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest()]


def test_digests_are_streamed_without_webcrypto(page) -> None:
    """Where WebCrypto is missing (plain http on another host), files are streamed in chunks
    through the module's own MD5 and SHA-256."""
    data = np.random.default_rng(3).integers(0, 256, 9 * 1024 * 1024 + 5, np.uint8).tobytes()
    page.page.evaluate("Object.defineProperty(crypto, 'subtle', { value: undefined })")
    got = hash_file(page, data)["values"]
    assert got["md5"]["value"] == hashlib.md5(data).hexdigest()
    assert got["sha256"]["value"] == hashlib.sha256(data).hexdigest()


def cli_hash(path: Path) -> dict[str, dict]:
    """``hashguard hash`` of ``path`` in a real process: its JSON lines by signal."""
    done = subprocess.run(
        [sys.executable, "-m", "hashguard", "hash", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {line["signal"]: line for line in map(json.loads, done.stdout.splitlines())}


@pytest.mark.parametrize(
    ("codec", "container", "kind"),
    [("libvpx-vp9", "webm", "video/webm"), ("libx264", "mp4", "video/mp4")],
)
def test_vpdq_of_a_video_matches_the_clis(page, tmp_path: Path, codec, container, kind) -> None:
    data = make_video(11, seconds=6, codec=codec, container=container)
    path = tmp_path / f"video.{container}"
    path.write_bytes(data)
    want = cli_hash(path)
    got = hash_file(page, data, kind)
    assert got["failed"] is None
    values = got["values"]
    assert [values["md5"]["value"], values["sha256"]["value"]] == [
        want["md5"]["value"],
        want["sha256"]["value"],
    ]
    signal = VpdqSignal()
    ours = signal.parse(values["vpdq"]["value"])
    assert values["vpdq"]["frames"] == len(ours.frames) == 6
    assert values["vpdq"]["quality"] == ours.mean_quality
    assert [f.timestamp for f in ours.frames] == [0, 1, 2, 3, 4, 5]
    comparison = signal.compare(ours, signal.parse(want["vpdq"]["value"]))
    assert comparison.match, comparison.reason


WORKER = b"""import { hashFile } from "/static/victims/hasher.js";
onmessage = async (event) => {
  const values = await hashFile(event.data);
  postMessage({ values: Array.from(values), failed: values.failed || null });
};"""


def test_images_hash_in_a_module_worker_and_videos_say_they_need_the_page(page) -> None:
    image = jpeg_with(5, 1600, 1200, 90, 6)
    video = make_video(4, seconds=2, codec="libvpx-vp9", container="webm")
    page.files["/worker.js"] = ("text/javascript", WORKER)
    page.files["/image"] = ("image/jpeg", image)
    page.files["/video"] = ("video/webm", video)
    found = page.page.evaluate(
        """async () => {
          const worker = new Worker("/worker.js", { type: "module" });
          const ask = (file) => new Promise((resolve) => {
            worker.onmessage = (event) => resolve(event.data);
            worker.postMessage(file);
          });
          const file = async (path, type) =>
            new File([await (await fetch(path)).arrayBuffer()], path, { type });
          const image = await ask(await file("/image", "image/jpeg"));
          const video = await ask(await file("/video", "video/webm"));
          worker.terminate();
          return { image, video };
        }"""
    )
    in_page = hash_file(page, image, "image/jpeg")["values"]
    assert {v["signal"]: v for v in found["image"]["values"]} == in_page
    assert distance(in_page["pdq"]["value"], reference_pdq(image).hex) <= 10
    assert "main thread" in found["video"]["failed"]
    assert [v["signal"] for v in found["video"]["values"]] == ["md5", "sha256"]


def test_undecodable_media_gets_its_digests_and_the_reason(page) -> None:
    broken = jpeg_with(2, 640, 480, 90)[:300]
    got = hash_file(page, broken, "image/jpeg")
    assert set(got["values"]) == {"md5", "sha256"}
    assert got["failed"].startswith("cannot decode the image")
    assert got["values"]["md5"]["value"] == hashlib.md5(broken).hexdigest()


def test_the_module_is_served_as_javascript_and_cached(server: Server) -> None:
    answer = server.get("/static/victims/hasher.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "max-age" in answer.headers["cache-control"]
    again = server.get(
        "/static/victims/hasher.js", headers={"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304
    assert "export async function hashFile" in answer.text
    assert "import " not in answer.text.replace("//   import", "")  # self-contained
    for missing in ("nothing.js", "..%2Fdesk.js", "hasher.py"):
        assert server.get(f"/static/victims/{missing}").status_code == 404


def test_pythons_pdq_of_the_jpegs_is_the_same_family(page) -> None:
    """hashguard's own PDQ of a JPEG (reduced DCT decoding) and the browser's agree closely."""
    data = jpeg_with(9, 4000, 3000, 90)
    got = hash_file(page, data, "image/jpeg")["values"]["pdq"]["value"]
    assert distance(got, PdqSignal().hash(data).hex) <= 10
