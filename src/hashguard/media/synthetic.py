"""Benign synthetic images for tests, benchmarks and the demo: coloured shapes on smooth fields.

Deterministic per seed. Every scene is distinct, has enough structure for a PDQ quality well
above 50, and optional grain makes JPEG sizes and decode times like those of camera photos.
"""

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def scene(seed: int, width: int = 640, height: int = 480, *, grain: float = 0.0) -> Image.Image:
    """An RGB scene: a smooth colour field, 6-14 shapes, a text label, optional sensor grain."""
    rng = np.random.default_rng(seed)
    # Smooth background: a tiny random image blown up with bicubic interpolation.
    field = rng.integers(0, 256, size=(rng.integers(3, 7), rng.integers(3, 7), 3), dtype=np.uint8)
    image = Image.fromarray(field, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    for _ in range(int(rng.integers(6, 15))):
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w = int(rng.integers(side // 12, side // 2))
        h = int(rng.integers(side // 12, side // 2))
        box = (x0 - w // 2, y0 - h // 2, x0 + w // 2, y0 + h // 2)
        shape = int(rng.integers(0, 3))
        if shape == 0:
            draw.ellipse(box, fill=colour)
        elif shape == 1:
            draw.rectangle(box, fill=colour)
        else:
            points = [
                (int(x0 + rng.normal(0, w / 2)), int(y0 + rng.normal(0, h / 2))) for _ in range(5)
            ]
            draw.polygon(points, fill=colour)
    font = ImageFont.load_default(size=max(10, side // 12))
    draw.text((side // 20, side // 20), f"sample {seed}", fill=(255, 255, 255), font=font)
    if grain > 0:
        pixels = np.asarray(image, dtype=np.int16)
        noise = rng.normal(0.0, grain, size=pixels.shape).astype(np.int16)
        image = Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), "RGB")
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    """The image encoded in ``fmt`` (a Pillow format name), in memory. JPEG defaults to q90."""
    if fmt.upper() in ("JPEG", "JPG"):
        options.setdefault("quality", 90)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()
