"""Benign synthetic images for tests, benchmarks and the demo: coloured shapes on smooth fields.

Deterministic per seed. Every scene is distinct, has enough structure for a PDQ quality well
above 50, and optional grain makes JPEG sizes and decode times like those of camera photos.
"""

import functools
import io
from collections.abc import Callable

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


# --- Hard negatives: benign images that look alike to a perceptual hash -----------------------
#
# Documents of one template, app screens of one app, logos on flat fields, gradients and regular
# patterns: distinct images with little structure of their own, the false positives a list must
# not produce. Each generator is deterministic per seed.

RGB = tuple[int, int, int]

_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "ta",
    "sen",
    "dor",
    "vel",
    "pra",
    "qui",
    "ost",
    "lan",
    "bre",
    "tum",
    "fa",
    "gi",
    "hol",
    "jes",
    "ple",
    "ser",
    "ton",
    "var",
    "wil",
    "zen",
    "ar",
    "el",
    "or",
)


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


@functools.lru_cache(maxsize=64)
def _char_width(size: int) -> float:
    """The mean width of a character of the words below at ``size``, in pixels."""
    sample = "".join(_SYLLABLES) + " " * (len(_SYLLABLES) // 2)
    return _font(size).getlength(sample) / len(sample)


def _word(rng: np.random.Generator) -> str:
    return "".join(_SYLLABLES[int(i)] for i in rng.integers(0, len(_SYLLABLES), rng.integers(1, 4)))


def _words(rng: np.random.Generator, count: int) -> str:
    return " ".join(_word(rng) for _ in range(count))


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> RGB:
    r, g, b = (int(c) for c in rng.integers(low, high, size=3))
    return (r, g, b)


def _text_line(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    x: int,
    y: int,
    max_width: int,
    size: int,
    fill: RGB,
) -> None:
    """A line of random words cut to ``max_width`` pixels (ragged right, as prose is)."""
    font = _font(size)
    text = _words(rng, int(rng.integers(4, 16)))
    # Cut to an estimate first: measuring text is the slow part of drawing a page.
    text = text[: int(max_width / _char_width(size))]
    while text and draw.textlength(text, font=font) > max_width:
        text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
    draw.text((x, y), text, fill=fill, font=font)


# Documents: one layout per template, the words differ per seed.
# (letterhead colour, title centred, columns, table before the prose, left rule width)
_TEMPLATES: tuple[tuple[RGB, bool, int, bool, int], ...] = (
    ((28, 62, 120), False, 1, False, 0),
    ((140, 30, 40), True, 2, False, 0),
    ((30, 110, 70), False, 1, True, 60),
    ((70, 70, 70), True, 2, True, 0),
)


def document(seed: int, template: int = 0, width: int = 850, height: int = 1100) -> Image.Image:
    """A text document of ``template`` (0-3): letterhead bar, title, paragraphs, a table, a footer.

    Documents of one template share their layout; the text differs per seed.
    Raises ValueError for a template outside 0-3.
    """
    if not 0 <= template < len(_TEMPLATES):
        raise ValueError(f"template {template}: expected 0 to {len(_TEMPLATES) - 1}")
    accent, centred, columns, table_first, rule = _TEMPLATES[template]
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    unit = max(1, height // 100)  # a line's pitch is ~1.6 % of the page
    margin = width // 12 + rule
    ink = (20, 20, 20)
    # Letterhead: a coloured bar with the organisation's name.
    bar = unit * 7
    draw.rectangle((0, 0, width, bar), fill=accent)
    draw.text(
        (margin, bar // 3), _words(rng, 2).upper(), fill=(255, 255, 255), font=_font(unit * 3)
    )
    if rule:
        draw.rectangle((0, bar, rule // 2, height), fill=accent)
    # Title.
    title = _words(rng, int(rng.integers(2, 6))).capitalize()
    title_font = _font(unit * 3)
    y = bar + unit * 4
    title_x = margin
    if centred:
        title_x = max(margin, int((width - draw.textlength(title, font=title_font)) / 2))
    draw.text((title_x, y), title, fill=ink, font=title_font)
    y += unit * 6
    body = int(unit * 1.5)
    pitch = int(unit * 2.2)
    inner = width - margin - width // 12

    bottom = height - unit * 8

    def prose(top: int, lines: int) -> int:
        gutter = unit * 3
        column = (inner - gutter * (columns - 1)) // columns
        per_column = -(-lines // columns)
        for index in range(lines):
            col, row = divmod(index, per_column)
            # Paragraph breaks every 5 lines leave a blank line.
            line_y = top + (row + row // 5) * pitch
            if line_y + pitch <= bottom:  # prose that does not fit above the footer is cut
                _text_line(draw, rng, margin + col * (column + gutter), line_y, column, body, ink)
        return top + (per_column + per_column // 5 + 1) * pitch

    def table(top: int, rows: int, cols: int) -> int:
        row_height = int(unit * 2.6)
        cell = inner // cols
        draw.rectangle((margin, top, margin + inner, top + row_height), fill=accent)
        for r in range(rows + 1):
            row_top = top + r * row_height
            draw.line((margin, row_top, margin + inner, row_top), fill=(150, 150, 150))
            for c in range(cols):
                text = _word(rng).capitalize() if r == 0 or c == 0 else f"{rng.integers(0, 10_000)}"
                colour = (255, 255, 255) if r == 0 else ink
                draw.text(
                    (margin + c * cell + unit, row_top + unit // 2),
                    text,
                    fill=colour,
                    font=_font(body),
                )
        bottom = top + (rows + 1) * row_height
        draw.rectangle((margin, top, margin + inner, bottom), outline=(150, 150, 150))
        return bottom + unit * 3

    if table_first:
        y = table(y, 6, 4)
        y = prose(y, 24)
    else:
        y = prose(y, 20)
        y = table(y, 5, 3)
        y = prose(y, 8 if columns == 1 else 10)
    # Footer: a rule, an address line and a page number.
    foot = bottom + unit * 2
    draw.line((margin, foot, width - width // 12, foot), fill=accent, width=max(1, unit // 4))
    small = _font(unit)
    draw.text((margin, foot + unit), _words(rng, 6), fill=(90, 90, 90), font=small)
    draw.text(
        (width - width // 12 - unit * 6, foot + unit),
        f"{rng.integers(1, 40)} / 40",
        fill=(90, 90, 90),
        font=small,
    )
    return image


# App screens: one look per app (its colours), the content differs per seed.
# (bar colour, accent, background, text on the bar)
_APPS: tuple[tuple[RGB, RGB, RGB, RGB], ...] = (
    ((250, 250, 250), (0, 122, 255), (255, 255, 255), (10, 10, 10)),
    ((18, 140, 126), (37, 211, 102), (236, 229, 221), (255, 255, 255)),
    ((32, 33, 36), (138, 180, 248), (40, 42, 46), (232, 234, 237)),
)


# Avatars are initials on a circle of one of a few flat colours, as messaging apps draw them.
_AVATARS: tuple[RGB, ...] = (
    (229, 115, 115), (186, 104, 200), (121, 134, 203), (79, 195, 247),
    (77, 182, 172), (174, 213, 129), (255, 183, 77), (161, 136, 127),
)  # fmt: skip


def ui_screenshot(seed: int, width: int = 390, height: int = 844, *, app: int = 0) -> Image.Image:
    """A screenshot of ``app`` (0-2): a phone screen, or a desktop form when width > height.

    The phone screen has a status bar, a toolbar, a list of rows (flat avatar circles, a name,
    a preview, a time), a floating button and a bottom navigation; the desktop form a title bar,
    a sidebar, labelled fields, checkboxes and buttons. Screens of one app share their look; the
    content differs per seed. Raises ValueError for an app outside 0-2.
    """
    if not 0 <= app < len(_APPS):
        raise ValueError(f"app {app}: expected 0 to {len(_APPS) - 1}")
    if width > height:
        return _desktop_form(seed, width, height, _APPS[app])
    return _phone_screen(seed, width, height, _APPS[app])


def _phone_screen(
    seed: int, width: int, height: int, look: tuple[RGB, RGB, RGB, RGB]
) -> Image.Image:
    bar, accent, background, on_bar = look
    rng = np.random.default_rng(seed)
    dark = sum(background) < 384
    ink: RGB = (235, 235, 235) if dark else (20, 20, 20)
    faint: RGB = (150, 150, 150) if dark else (120, 120, 120)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    u = max(1, width // 39)  # 10 px on a 390 px screen
    # Status bar: the time, signal bars and a battery.
    status = int(u * 4.4)
    draw.rectangle((0, 0, width, status + u * 5), fill=bar)
    clock = f"{rng.integers(0, 24)}:{rng.integers(0, 60):02d}"
    draw.text((u * 3, u), clock, fill=on_bar, font=_font(int(u * 1.5)))
    for i in range(4):
        draw.rectangle(
            (
                width - u * 10 + i * u // 2 * 2,
                int(u * 2.2) - i * u // 3,
                width - u * 10 + i * u // 2 * 2 + u // 2,
                int(u * 2.4),
            ),
            fill=on_bar,
        )
    draw.rounded_rectangle(
        (width - u * 6, u, width - u * 3, int(u * 2.4)),
        radius=u // 3,
        outline=on_bar,
        fill=on_bar if rng.random() < 0.5 else None,
    )
    # Toolbar: back arrow, title, an action.
    title_y = status + u
    draw.line((u * 2, title_y + u * 2, u * 3, title_y + u), fill=accent, width=max(1, u // 4))
    draw.line((u * 2, title_y + u * 2, u * 3, title_y + u * 3), fill=accent, width=max(1, u // 4))
    draw.text((u * 5, title_y), _word(rng).capitalize(), fill=on_bar, font=_font(u * 2))
    draw.ellipse(
        (width - u * 4, title_y + u // 2, width - u * 2, title_y + u * 5 // 2),
        outline=accent,
        width=max(1, u // 5),
    )
    # Rows: avatar, name, preview, time.
    top = status + u * 5
    nav = height - u * 8
    row = u * 7
    for index in range((nav - top) // row):
        y = top + index * row
        avatar = _AVATARS[int(rng.integers(0, len(_AVATARS)))]
        draw.ellipse((u * 2, y + u, u * 7, y + u * 6), fill=avatar)
        initial = _SYLLABLES[int(rng.integers(0, len(_SYLLABLES)))][0].upper()
        draw.text((u * 4, y + u * 2), initial, fill=(255, 255, 255), font=_font(u * 2))
        draw.text((u * 9, y + u), _words(rng, 2).title(), fill=ink, font=_font(int(u * 1.6)))
        _text_line(draw, rng, u * 9, y + int(u * 3.4), width - u * 16, int(u * 1.3), faint)
        draw.text(
            (width - u * 6, y + u),
            f"{rng.integers(1, 13)}:{rng.integers(0, 60):02d}",
            fill=faint,
            font=_font(int(u * 1.2)),
        )
        if rng.random() < 0.3:
            draw.ellipse((width - u * 4, y + u * 3, width - u * 2, y + u * 5), fill=accent)
        draw.line(
            (u * 9, y + row - 1, width, y + row - 1),
            fill=(200, 200, 200) if not dark else (70, 70, 70),
        )
    # Floating action button.
    draw.ellipse((width - u * 8, nav - u * 7, width - u * 2, nav - u), fill=accent)
    draw.text((width - u * 6, nav - u * 6), "+", fill=(255, 255, 255), font=_font(u * 3))
    # Bottom navigation: five tabs, one highlighted.
    draw.rectangle((0, nav, width, height), fill=bar)
    chosen = int(rng.integers(0, 5))
    for tab in range(5):
        cx = width * (2 * tab + 1) // 10
        colour = accent if tab == chosen else faint
        draw.rounded_rectangle((cx - u, nav + u, cx + u, nav + u * 3), radius=u // 2, fill=colour)
        label = _word(rng)[:6]
        draw.text((cx - u * 2, nav + int(u * 3.6)), label, fill=colour, font=_font(u))
    draw.rounded_rectangle(
        (width // 3, height - u, width * 2 // 3, height - u // 2), radius=u // 4, fill=ink
    )
    return image


def _desktop_form(
    seed: int, width: int, height: int, look: tuple[RGB, RGB, RGB, RGB]
) -> Image.Image:
    bar, accent, background, on_bar = look
    rng = np.random.default_rng(seed)
    dark = sum(background) < 384
    ink: RGB = (235, 235, 235) if dark else (20, 20, 20)
    field: RGB = (55, 57, 62) if dark else (255, 255, 255)
    edge: RGB = (100, 100, 100) if dark else (190, 190, 190)
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    u = max(1, height // 80)  # 10 px on an 800 px screen
    # Title bar with window buttons and the document's name.
    draw.rectangle((0, 0, width, u * 4), fill=bar)
    for i, colour in enumerate(((255, 95, 86), (255, 189, 46), (39, 201, 63))):
        draw.ellipse((u + i * u * 2, u + u // 2, u * 2 + i * u * 2, u * 2 + u // 2), fill=colour)
    draw.text((width // 2 - u * 8, u), _words(rng, 3), fill=on_bar, font=_font(int(u * 1.4)))
    # Toolbar.
    draw.rectangle((0, u * 4, width, u * 8), fill=bar)
    for i in range(6):
        draw.rounded_rectangle(
            (u * 2 + i * u * 4, u * 5, u * 5 + i * u * 4, u * 7), radius=u // 2, outline=accent
        )
    # Sidebar: navigation entries, one selected.
    side = width // 5
    draw.rectangle((0, u * 8, side, height), fill=bar)
    chosen = int(rng.integers(0, 10))
    for i in range(10):
        y = u * 10 + i * u * 4
        if i == chosen:
            draw.rectangle((0, y - u // 2, side, y + u * 3), fill=accent)
        draw.ellipse((u * 2, y + u // 2, u * 4, y + u * 5 // 2), fill=on_bar)
        draw.text((u * 6, y), _words(rng, 2).capitalize(), fill=on_bar, font=_font(int(u * 1.4)))
    # The form: a heading, then labelled fields in two columns.
    left = side + u * 5
    draw.text((left, u * 11), _words(rng, 3).title(), fill=ink, font=_font(u * 3))
    column = (width - left - u * 8) // 2
    for i in range(12):
        col, line = divmod(i, 6)
        x = left + col * (column + u * 3)
        y = u * 17 + line * u * 8
        draw.text((x, y), _word(rng).capitalize(), fill=ink, font=_font(int(u * 1.3)))
        draw.rounded_rectangle(
            (x, y + u * 2, x + column, y + u * 5), radius=u // 2, fill=field, outline=edge
        )
        value = _words(rng, int(rng.integers(1, 4))) if rng.random() < 0.8 else ""
        draw.text((x + u, y + int(u * 2.7)), value, fill=ink, font=_font(int(u * 1.3)))
    # Checkboxes, then the buttons.
    y = u * 66
    for i in range(3):
        x = left + i * column * 2 // 3
        draw.rectangle(
            (x, y, x + u * 2, y + u * 2),
            outline=edge,
            width=max(1, u // 5),
            fill=accent if rng.random() < 0.5 else field,
        )
        draw.text((x + u * 3, y), _words(rng, 2), fill=ink, font=_font(int(u * 1.3)))
    y = height - u * 8
    right = width - u * 5
    draw.rounded_rectangle((right - u * 14, y, right, y + u * 4), radius=u, fill=accent)
    draw.text(
        (right - u * 12, y + u),
        _word(rng).capitalize(),
        fill=(255, 255, 255),
        font=_font(int(u * 1.5)),
    )
    draw.rounded_rectangle((right - u * 30, y, right - u * 16, y + u * 4), radius=u, outline=edge)
    draw.text((right - u * 28, y + u), _word(rng).capitalize(), fill=ink, font=_font(int(u * 1.5)))
    return image


def logo_on_flat(seed: int, width: int = 800, height: int = 600) -> Image.Image:
    """A flat (or nearly flat) background with one small logo, a few shapes and a short name."""
    rng = np.random.default_rng(seed)
    background = _colour(rng)
    pixels = np.empty((height, width, 3), dtype=np.int16)
    pixels[:] = background
    if rng.random() < 0.5:  # nearly flat: a faint vertical shade
        shade = np.linspace(-6, 6, height, dtype=np.float64)[:, None, None]
        pixels = pixels + np.rint(shade).astype(np.int16)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    size = int(min(width, height) * rng.uniform(0.08, 0.2))
    x = int(rng.integers(0, max(1, width - size * 3)))
    y = int(rng.integers(0, max(1, height - size)))
    for _ in range(int(rng.integers(1, 4))):
        colour = _colour(rng)
        inset = int(rng.integers(0, size // 4 + 1))
        box = (x + inset, y + inset, x + size - inset, y + size - inset)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(
                [(box[0], box[3]), ((box[0] + box[2]) // 2, box[1]), (box[2], box[3])], fill=colour
            )
    name = _word(rng).upper()[:8]
    draw.text((x + size + size // 5, y + size // 4), name, fill=_colour(rng), font=_font(size // 2))
    return image


def gradient(seed: int, width: int = 800, height: int = 600) -> Image.Image:
    """A linear (any angle) or radial gradient through 2-3 colours."""
    rng = np.random.default_rng(seed)
    stops = np.array([_colour(rng) for _ in range(int(rng.integers(2, 4)))], dtype=np.float64)
    ys, xs = np.ogrid[0:height, 0:width]
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        t = xs * np.cos(angle) + ys * np.sin(angle)
    else:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        t = np.hypot(xs - cx, ys - cy)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
    positions = np.linspace(0.0, 1.0, len(stops))
    channels = [np.interp(t, positions, stops[:, c]) for c in range(3)]
    pixels = np.rint(np.stack(channels, axis=-1)).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


# Cell sizes (pixels): small ones alias in PDQ's 64x64 stage at 1000+ px; others are coarse.
_CELLS = (2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 24, 32, 48, 64, 100)


def pattern(seed: int, width: int = 1024, height: int = 1024) -> Image.Image:
    """A regular pattern: checkerboard, stripes, thin line art, a dot grid or concentric rings.

    Two colours, the cell size from 2 to 100 px (a few pixels at 1000+ px is what PDQ's
    64x64 downsampling aliases on).
    """
    on, ink, paper = pattern_geometry(seed, width, height)
    pixels = np.where(on[..., None], ink, paper).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def pattern_geometry(
    seed: int, width: int = 1024, height: int = 1024
) -> tuple[np.ndarray, RGB, RGB]:
    """``pattern``'s geometry (where the ink is, a boolean array) and its two colours: two
    patterns of one geometry in other colours are the same picture to a luma hash."""
    rng = np.random.default_rng(seed)
    kind = int(rng.integers(0, 5))
    cell = int(_CELLS[int(rng.integers(0, len(_CELLS)))])
    ink = _colour(rng)
    paper = _colour(rng)
    ys, xs = np.ogrid[0:height, 0:width]
    if kind == 0:  # checkerboard
        on = ((xs // cell) + (ys // cell)) % 2 == 1
    elif kind == 1:  # stripes: vertical, horizontal or diagonal
        direction = int(rng.integers(0, 3))
        axis = xs if direction == 0 else ys if direction == 1 else xs + ys
        on = (axis // cell) % 2 == 1
    elif kind == 2:  # line art: 1-2 px lines every cell pixels, one or both directions
        thickness = 1 + int(rng.integers(0, 2))
        period = max(cell, thickness + 2)
        on = xs % period < thickness
        if rng.random() < 0.5:
            on = on | (ys % period < thickness)
    elif kind == 3:  # dot grid
        period = max(cell, 3) * 2
        radius = period / 4
        on = np.hypot(xs % period - period / 2, ys % period - period / 2) <= radius
    else:  # concentric rings
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        on = (np.hypot(xs - cx, ys - cy) // cell).astype(np.int64) % 2 == 1
    return np.broadcast_to(on, (height, width)), ink, paper


def _ui_any(seed: int) -> Image.Image:
    app = (seed // 2) % len(_APPS)
    if seed % 2:
        return ui_screenshot(seed, 1280, 800, app=app)
    return ui_screenshot(seed, app=app)


HARD_NEGATIVES: dict[str, Callable[[int], Image.Image]] = {
    "document": lambda seed: document(seed, template=seed % len(_TEMPLATES)),
    "ui-screenshot": _ui_any,
    "logo": logo_on_flat,
    "gradient": gradient,
    "pattern": pattern,
}
"""The kinds of hard negative by name, each an image per seed (documents cycle the templates,
screenshots alternate phone and desktop and cycle the apps)."""


# --- Edits: what people do to an image before it is shared again --------------------------------


def _as_rgb(image: Image.Image) -> Image.Image:
    return image if image.mode == "RGB" else image.convert("RGB")


def pad(image: Image.Image, fraction: float, colour: RGB = (0, 0, 0)) -> Image.Image:
    """The image centred on a canvas ``fraction`` of its width (height) larger on each side.

    ``pad(image, 0.1)`` adds 10 % of the width to the left and to the right, 10 % of the height
    above and below. Raises ValueError for a negative fraction.
    """
    if fraction < 0:
        raise ValueError(f"pad fraction {fraction}: expected 0 or more")
    source = _as_rgb(image)
    dx, dy = round(source.width * fraction), round(source.height * fraction)
    canvas = Image.new("RGB", (source.width + 2 * dx, source.height + 2 * dy), colour)
    canvas.paste(source, (dx, dy))
    return canvas


def letterbox(
    image: Image.Image, aspect: tuple[int, int] | float, colour: RGB = (0, 0, 0)
) -> Image.Image:
    """The image, unscaled, centred between bars of ``colour`` to the aspect ratio asked.

    ``aspect`` is width:height, as ``(16, 9)`` or a number (``16 / 9``); bars go above and
    below, or left and right, whichever the ratio needs. Raises ValueError for a ratio <= 0.
    """
    ratio = aspect[0] / aspect[1] if isinstance(aspect, tuple) else float(aspect)
    if not ratio > 0:
        raise ValueError(f"aspect {aspect}: expected a positive width:height")
    source = _as_rgb(image)
    width, height = source.size
    if width / height < ratio:
        width = max(width, round(height * ratio))
    else:
        height = max(height, round(width / ratio))
    canvas = Image.new("RGB", (width, height), colour)
    canvas.paste(source, ((width - source.width) // 2, (height - source.height) // 2))
    return canvas


def in_ui_frame(image: Image.Image, seed: int) -> Image.Image:
    """The image shown inside an app: a phone (even seeds) or desktop (odd seeds) screenshot.

    The frame has a status bar, a toolbar, a caption and flat margins; the image is scaled to fit
    the content area with its aspect ratio kept.
    """
    rng = np.random.default_rng(seed)
    phone = seed % 2 == 0
    width, height = (780, 1688) if phone else (1280, 800)
    bar, accent, background, on_bar = _APPS[int(rng.integers(0, len(_APPS)))]
    dark = sum(background) < 384
    ink: RGB = (235, 235, 235) if dark else (20, 20, 20)
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    u = width // 39 if phone else height // 80
    top = u * 9 if phone else u * 8
    draw.rectangle((0, 0, width, top), fill=bar)
    clock = f"{rng.integers(0, 24)}:{rng.integers(0, 60):02d}"
    draw.text((u * 3, u), clock, fill=on_bar, font=_font(int(u * 1.5)))
    draw.text((u * 5, top - u * 4), _words(rng, 2).title(), fill=on_bar, font=_font(u * 2))
    # Author line and caption above the picture, a row of actions below it.
    left = u * 2 if phone else width // 5
    draw.ellipse((left, top + u, left + u * 4, top + u * 5), fill=_colour(rng, 60, 230))
    draw.text(
        (left + u * 5, top + u * 2), _words(rng, 2).title(), fill=ink, font=_font(int(u * 1.5))
    )
    caption_top = top + u * 6
    for line in range(2):
        _text_line(
            draw, rng, left, caption_top + line * u * 2, width - left - u * 2, int(u * 1.4), ink
        )
    area_top = caption_top + u * 5
    area_bottom = height - u * 11  # room for the actions row above the bottom bar
    area = (width - left - u * 2 if phone else width * 3 // 5, area_bottom - area_top)
    source = _as_rgb(image)
    scale = min(area[0] / source.width, area[1] / source.height)
    shown = source.resize(
        (max(1, round(source.width * scale)), max(1, round(source.height * scale))),
        Image.Resampling.LANCZOS,
    )
    canvas.paste(shown, (left + (area[0] - shown.width) // 2, area_top))
    actions = area_top + shown.height + u
    for i in range(4):
        draw.rounded_rectangle(
            (left + i * u * 6, actions, left + i * u * 6 + u * 3, actions + u * 3),
            radius=u,
            outline=accent,
            width=max(1, u // 4),
        )
    draw.rectangle((0, height - u * 6, width, height), fill=bar)
    return canvas


def caption_bar(
    image: Image.Image,
    fraction: float = 0.15,
    *,
    text: str = "when the build passes on the first try",
    below: bool = False,
    colour: RGB = (255, 255, 255),
) -> Image.Image:
    """The image with a flat bar of text ``fraction`` of its height added above (or below) it."""
    if fraction <= 0:
        raise ValueError(f"caption bar fraction {fraction}: expected more than 0")
    source = _as_rgb(image)
    bar = max(1, round(source.height * fraction))
    canvas = Image.new("RGB", (source.width, source.height + bar), colour)
    canvas.paste(source, (0, 0 if below else bar))
    draw = ImageDraw.Draw(canvas)
    font = _font(max(6, bar // 3))
    ink: RGB = (0, 0, 0) if sum(colour) >= 384 else (255, 255, 255)
    x = max(0, int((source.width - draw.textlength(text, font=font)) / 2))
    y = (source.height if below else 0) + bar // 3
    draw.text((x, y), text, fill=ink, font=font)
    return canvas


def watermark(image: Image.Image, text: str, *, opacity: float = 0.5) -> Image.Image:
    """The image with ``text`` blended in white at ``opacity`` near its bottom-right corner."""
    source = _as_rgb(image)
    layer = Image.new("RGBA", source.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(max(8, source.width // 20))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    margin = source.width // 40
    x = max(0, source.width - (right - left) - margin)
    y = max(0, source.height - (bottom - top) - margin - top)
    draw.text((x, y), text, fill=(255, 255, 255, round(255 * opacity)), font=font)
    return Image.alpha_composite(source.convert("RGBA"), layer).convert("RGB")
