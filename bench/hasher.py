"""The browser hasher's speed: a 12-megapixel JPEG hashed in headless Chromium, next to hashguard's
Python hashing of the same file in the same run.

    .venv/bin/python bench/hasher.py [--runs 5] [--width 4000 --height 3000]

Chromium (Debian's ``chromium``, driven by Playwright) loads ``web/static/victims/hasher.js`` on
a loopback origin answered by Playwright itself (no server, no network). Per run, in the page:
``hashFile`` of the JPEG (what a person waits for: decode, PDQ, MD5, SHA-256), and its parts
measured apart: the browser's decode to RGBA (createImageBitmap + canvas), ``hashPixels`` on
those pixels, and ``md5Hex`` + WebCrypto SHA-256 of the bytes. In Python, on one core:
hashguard ``PdqSignal.hash`` (reduced JPEG decoding) and MD5 + SHA-256, and the reference
(a full Pillow decode + ``pdqhash.compute``). Medians of the runs; the first run warms up.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse
import hashlib
import io
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image

from hashguard.media.synthetic import encode, scene
from hashguard.signals.pdq import PdqSignal

MODULE = Path(__file__).resolve().parents[1] / "src/hashguard/web/static/victims/hasher.js"
ORIGIN = "http://127.0.0.1:9"  # answered by Playwright's routing: nothing listens there

TIMED = """async (runs) => {
  const hasher = await import("/hasher.js");
  const bytes = await (await fetch("/photo.jpg")).arrayBuffer();
  const file = new File([bytes], "photo.jpg", { type: "image/jpeg" });
  const rows = { hashFile: [], decode: [], hashPixels: [], digests: [] };
  let pdq = null;
  for (let run = 0; run <= runs; run++) {
    let t = performance.now();
    const values = await hasher.hashFile(file);
    const total = performance.now() - t;
    pdq = values.find((v) => v.signal === "pdq");
    t = performance.now();
    const bitmap = await createImageBitmap(file,
      { imageOrientation: "from-image", colorSpaceConversion: "none", premultiplyAlpha: "none" });
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    const rgba = context.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const decode = performance.now() - t;
    t = performance.now();
    hasher.hashPixels(rgba, bitmap.width, bitmap.height);
    const pixels = performance.now() - t;
    t = performance.now();
    const all = new Uint8Array(await file.arrayBuffer());
    hasher.md5Hex(all);
    await crypto.subtle.digest("SHA-256", all);
    const digests = performance.now() - t;
    bitmap.close();
    if (run > 0) {  // the first run warms up
      rows.hashFile.push(total);
      rows.decode.push(decode);
      rows.hashPixels.push(pixels);
      rows.digests.push(digests);
    }
  }
  return { rows, pdq };
}"""


def median_ms(runs: int, action: Callable[[], Any]) -> float:
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def browser_times(data: bytes, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    if path is None:
        sys.exit("chromium absent: `make install` installs it (scripts/ensure-system-packages)")
    files = {
        "/": ("text/html", b"<!doctype html><title>bench</title>"),
        "/hasher.js": ("text/javascript", MODULE.read_bytes()),
        "/photo.jpg": ("image/jpeg", data),
    }

    def route(request: Any) -> None:
        found = files.get(request.request.url[len(ORIGIN) :])
        if found is None:
            request.abort()
        else:
            request.fulfill(status=200, content_type=found[0], body=found[1])

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        try:
            context = browser.new_context()
            context.route("**/*", route)
            page = context.new_page()
            page.goto(ORIGIN + "/")
            result: dict[str, Any] = page.evaluate(TIMED, runs)
            return result
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    args = parser.parse_args()
    data = encode(scene(1, args.width, args.height, grain=6.0), "JPEG", quality=90)
    megapixels = args.width * args.height / 1e6
    print(f"JPEG {args.width}x{args.height} ({megapixels:.1f} MP, {len(data) / 1e6:.1f} MB), "
          f"median of {args.runs} runs")  # fmt: skip

    found = browser_times(data, args.runs)
    page = {name: statistics.median(times) for name, times in found["rows"].items()}

    def reference() -> None:
        rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        pdqhash.compute(rgb)

    def digests() -> None:
        hashlib.md5(data).hexdigest()
        hashlib.sha256(data).hexdigest()

    python = {
        "hashguard PdqSignal.hash": median_ms(args.runs, lambda: PdqSignal().hash(data)),
        "hashguard MD5 + SHA-256": median_ms(args.runs, digests),
        "reference: Pillow full decode + pdqhash": median_ms(args.runs, reference),
    }
    rows = [
        ("browser: hashFile (decode, PDQ, MD5, SHA-256)", page["hashFile"]),
        ("  browser: decode to RGBA (createImageBitmap + canvas)", page["decode"]),
        ("  browser: hashPixels (luma + PDQ)", page["hashPixels"]),
        ("  browser: MD5 (JS) + SHA-256 (WebCrypto)", page["digests"]),
        *python.items(),
    ]
    base = page["hashFile"]
    print(f"{'':56} {'ms':>8} {'x hashFile':>11}")
    for name, ms in rows:
        print(f"{name:56} {ms:8.0f} {ms / base:11.2f}")
    pdq = found["pdq"]
    ours = PdqSignal().hash(data)
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    bits, _ = pdqhash.compute(rgb)
    reference_hex = np.packbits(bits).tobytes().hex()
    to_reference = (int(pdq["value"], 16) ^ int(reference_hex, 16)).bit_count()
    to_ours = (int(pdq["value"], 16) ^ int(ours.hex, 16)).bit_count()
    print(f"browser PDQ quality {pdq['quality']}; {to_reference} bits from the reference, "
          f"{to_ours} from hashguard's Python PDQ")  # fmt: skip


if __name__ == "__main__":
    main()
