"""One post's picture: the category picks the subject and the hue family, the appeal its quality.

Each of the 11 categories has a subject drawn with PIL primitives (peaks, confetti, stripes, rings,
a portrait, clouds, an animal, a plate, blocks, a screen, a pair) and a five-colour palette around
its own hue; the subcategory and the concept shift the hue a little, the layout seed places the
shapes. Four quality scores (the appeal plus independent noise, see images.py) set the
palette's brightness, contrast and saturation and the sharpness: a dull picture has soft edges
(each shape drawn as layers fading into the background), a vivid one crisp edges.
"""

from __future__ import annotations

import io
import math
import random
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

# How the stored pixels are turned so that the EXIF orientation shows them upright, and the EXIF.
STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
ORIENTATION_TAG = 0x0112


def _exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[ORIENTATION_TAG] = orientation
    return tags.tobytes()


EXIF = {o: _exif(o) for o in STORED}


def _mix(a: Color, b: Color, t: float) -> Color:
    return (round(a[0] + t * (b[0] - a[0])), round(a[1] + t * (b[1] - a[1])), round(a[2] + t * (b[2] - a[2])))


class Pen:
    """ImageDraw with soft edges: with ``blur`` > 1.5 px each shape is drawn as up to four layers,
    from grown by blur/2 in a colour close to ``back`` to shrunk by blur/2 in its own colour (a
    blur at the price of a few primitive calls, far cheaper than a resize or a filter)."""

    def __init__(self, draw: ImageDraw.ImageDraw, blur: float, back: Color):
        n = min(3, int(blur / 1.5))
        self.draw, self.back = draw, back
        self.grows = [blur * (0.5 - j / n) for j in range(n)] + [-blur / 2] if n else [0.0]
        self.shares = [(j + 1) / (n + 1) for j in range(n)] + [1.0]
        self.inks: dict[Color, list[Color]] = {}

    def _layers(self, box: Box, fill: Color) -> list[tuple[float, Box, Color]]:
        """(grow, box grown by it, colour) per layer, outermost first; a box shrinks by at most
        45% of its short side on each side."""
        inks = self.inks.get(fill)
        if inks is None:
            inks = self.inks[fill] = [_mix(self.back, fill, t) for t in self.shares]
        x0, y0, x1, y1 = box
        least = -0.45 * min(x1 - x0, y1 - y0)
        out = []
        for g, ink in zip(self.grows, inks):
            g = g if g > least else least
            out.append((g, (x0 - g, y0 - g, x1 + g, y1 + g), ink))
        return out

    def ellipse(self, box: Box, fill: Color) -> None:
        for _, grown, ink in self._layers(box, fill):
            self.draw.ellipse(grown, fill=ink)

    def rectangle(self, box: Box, fill: Color) -> None:
        for _, grown, ink in self._layers(box, fill):
            self.draw.rectangle(grown, fill=ink)

    def rounded(self, box: Box, radius: float, fill: Color) -> None:
        for g, grown, ink in self._layers(box, fill):
            self.draw.rounded_rectangle(grown, radius=max(1, radius + g), fill=ink)

    def ring(self, box: Box, fill: Color, width: int) -> None:
        for g, grown, ink in self._layers(box, fill):
            self.draw.ellipse(grown, outline=ink, width=max(1, round(width + 2 * g)))

    def polygon(self, points: list[tuple[float, float]], fill: Color) -> None:
        cx, cy = sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
        radius = sum(math.hypot(x - cx, y - cy) for x, y in points) / len(points)
        for g, _, ink in self._layers((cx - radius, cy - radius, cx + radius, cy + radius), fill):
            k = 1 + g / radius
            self.draw.polygon([(cx + k * (x - cx), cy + k * (y - cy)) for x, y in points], fill=ink)


def _peaks(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Travel: a sun over two to four mountains and a dark foreground."""
    r = h * rnd.uniform(0.07, 0.13)
    x, y = w * rnd.uniform(0.15, 0.85), h * rnd.uniform(0.12, 0.3)
    p.ellipse((x - r, y - r, x + r, y + r), c[3])
    base = h * rnd.uniform(0.68, 0.85)
    for i in range(rnd.randint(2, 4)):
        x0, width = w * rnd.uniform(-0.2, 0.7), w * rnd.uniform(0.35, 0.75)
        p.polygon([(x0, base), (x0 + width / 2, h * rnd.uniform(0.22, 0.5)), (x0 + width, base)], c[2 + i % 2 * 2])
    p.rectangle((0, base, w, h), c[4])


def _confetti(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Holiday: bright discs (lights, confetti) scattered over a dark ground."""
    s = min(w, h)
    for _ in range(rnd.randint(7, 14)):
        r, x, y = s * rnd.uniform(0.04, 0.1), w * rnd.random(), h * rnd.random()
        p.ellipse((x - r, y - r, x + r, y + r), c[2 + rnd.randrange(3)])


def _stripes(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Fashion: a striped backdrop and a dress silhouette with a belt."""
    k = rnd.randint(5, 9)
    for i in range(0, k, 2):
        p.rectangle((i * w / k, 0, (i + 1) * w / k, h), c[1])
    cx, top, half = w * rnd.uniform(0.35, 0.65), h * rnd.uniform(0.12, 0.25), min(w, h) * rnd.uniform(0.1, 0.16)
    p.ellipse((cx - half * 0.6, top - half * 1.1, cx + half * 0.6, top + half * 0.1), c[4])
    p.polygon([(cx - half, top), (cx + half, top), (cx + 2.4 * half, h * 0.97), (cx - 2.4 * half, h * 0.97)], c[2])
    p.rectangle((cx - 1.2 * half, top + h * 0.18, cx + 1.2 * half, top + h * 0.23), c[3])


def _ring(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Entertainment: a spotlight of concentric rings on a dark stage."""
    s = min(w, h)
    x, y = w * rnd.uniform(0.35, 0.65), h * rnd.uniform(0.35, 0.6)
    for i in range(rnd.randint(1, 2), 0, -1):
        r = s * (0.12 + 0.16 * i)
        p.ring((x - r, y - r, x + r, y + r), c[2 + i % 2], max(2, round(s * 0.07)))
    r = s * 0.08
    p.ellipse((x - r, y - r, x + r, y + r), c[3])
    p.rectangle((0, h * 0.88, w, h), c[4])


def _portrait(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Social & people: a face with hair over shoulders, centred or to one side."""
    s = min(w, h)
    x, y, r = w * rnd.uniform(0.35, 0.65), h * rnd.uniform(0.38, 0.48), s * rnd.uniform(0.17, 0.24)
    p.ellipse((x - 2.3 * r, y + 1.1 * r, x + 2.3 * r, y + 4.5 * r), c[4])
    p.ellipse((x - 1.1 * r, y - 1.25 * r, x + 1.1 * r, y + 0.6 * r), c[3])
    p.ellipse((x - 0.85 * r, y - 0.95 * r, x + 0.85 * r, y + 1.25 * r), c[2])


def _clouds(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Weather & season: a band of land under two to four clouds."""
    p.rectangle((0, h * rnd.uniform(0.72, 0.85), w, h), c[4])
    for _ in range(rnd.randint(2, 4)):
        x, y, r = w * rnd.uniform(0.1, 0.9), h * rnd.uniform(0.15, 0.6), min(w, h) * rnd.uniform(0.08, 0.15)
        p.ellipse((x - 2.2 * r, y, x + 2.2 * r, y + 1.3 * r), c[3])
        for dx in (-1.1, 0.0, 1.1):
            p.ellipse((x + dx * r - r, y - r * 0.8, x + dx * r + r, y + r), c[2])


def _animal(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Animal: a four-legged body with head and ear on grass."""
    s = min(w, h)
    x, y, bw, bh = w * rnd.uniform(0.4, 0.6), h * rnd.uniform(0.5, 0.62), s * rnd.uniform(0.3, 0.4), s * 0.17
    for dx in (-0.75, -0.45, 0.45, 0.75):
        p.rectangle((x + dx * bw - 0.05 * s, y, x + dx * bw + 0.05 * s, y + bh + s * 0.2), c[3])
    p.ellipse((x - bw, y - bh, x + bw, y + bh), c[2])
    hx, hy, hr = x + bw * 0.95, y - bh * 1.1, s * 0.11
    p.polygon([(hx - hr * 0.8, hy - hr * 0.4), (hx - hr * 0.3, hy - hr * 1.9), (hx, hy - hr * 0.6)], c[3])
    p.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), c[2])
    p.ellipse((hx + hr * 0.2, hy - hr * 0.35, hx + hr * 0.45, hy - hr * 0.1), c[4])


def _plate(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Food: a plate seen from above with a dish and a few berries."""
    s = min(w, h)
    x, y, r = w * rnd.uniform(0.4, 0.6), h * rnd.uniform(0.42, 0.58), s * rnd.uniform(0.36, 0.44)
    p.ellipse((x - r, y - r, x + r, y + r), c[2])
    f = r * rnd.uniform(0.5, 0.68)
    p.ellipse((x - f, y - f, x + f, y + f), c[3])
    for _ in range(rnd.randint(2, 6)):
        a, rr, b = rnd.uniform(0, 2 * math.pi), f * rnd.uniform(0.1, 0.7), s * 0.04
        bx, by = x + rr * math.cos(a), y + rr * math.sin(a)
        p.ellipse((bx - b, by - b, bx + b, by + b), c[4])


def _blocks(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Urban: a skyline of buildings with a few lit windows."""
    x = -w * rnd.uniform(0, 0.1)
    while x < w:
        bw, top = w * rnd.uniform(0.1, 0.24), h * rnd.uniform(0.15, 0.65)
        p.rectangle((x, top, x + bw, h), c[2 + rnd.randrange(2)])
        for row in range(rnd.randint(0, 2)):
            wy = top + (row + 0.5) * h * 0.1
            p.rectangle((x + bw * 0.25, wy, x + bw * 0.75, wy + h * 0.035), c[4])
        x += bw * rnd.uniform(1.0, 1.15)


def _screen(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Electronics: a device with a glowing screen and a few lines of text."""
    s = min(w, h)
    x, y = w * rnd.uniform(0.42, 0.58), h * rnd.uniform(0.45, 0.55)
    bw, bh = w * rnd.uniform(0.28, 0.4), h * rnd.uniform(0.26, 0.36)
    p.rounded((x - bw, y - bh, x + bw, y + bh), max(2, round(s * 0.05)), c[2])
    e = s * 0.05
    p.rectangle((x - bw + e, y - bh + e, x + bw - e, y + bh - e), c[3])
    for i in range(rnd.randint(1, 3)):
        ly = y - bh + 2.2 * e + i * 1.6 * e
        p.rectangle((x - bw + 2 * e, ly, x - bw + 2 * e + bw * rnd.uniform(0.4, 1.2), ly + 0.6 * e), c[4])


def _pair(p: Pen, w: int, h: int, c: list[Color], rnd: random.Random) -> None:
    """Family: a grown-up and a child side by side."""
    s = min(w, h)
    for x, r, color in ((w * rnd.uniform(0.3, 0.42), s * 0.13, c[2]), (w * rnd.uniform(0.6, 0.72), s * 0.085, c[3])):
        y = h - 5.2 * r
        p.ellipse((x - 1.5 * r, y + 1.2 * r, x + 1.5 * r, h + r), c[4])
        p.ellipse((x - r, y - r, x + r, y + r), color)


# Category index -> (subject, hue in degrees, palette: (hue offset, saturation, value) for the
# background's top and bottom, the subject's main colour, an accent and a fifth colour).
LOOKS: list[
    tuple[Callable[[Pen, int, int, list[Color], random.Random], None], float, list[tuple[float, float, float]]]
] = [
    (_peaks, 205, [(0, 0.45, 0.95), (-10, 0.25, 0.85), (-85, 0.55, 0.55), (-155, 0.8, 1.0), (-110, 0.5, 0.35)]),
    (_confetti, 355, [(0, 0.8, 0.28), (10, 0.9, 0.12), (45, 0.85, 1.0), (0, 0.85, 0.9), (30, 0.2, 1.0)]),
    (_stripes, 320, [(0, 0.3, 0.92), (0, 0.22, 0.78), (0, 0.75, 0.8), (-40, 0.6, 0.95), (-300, 0.35, 0.85)]),
    (_ring, 275, [(0, 0.7, 0.2), (0, 0.8, 0.05), (0, 0.6, 1.0), (60, 0.7, 1.0), (0, 0.5, 0.35)]),
    (_portrait, 25, [(180, 0.2, 0.62), (180, 0.25, 0.45), (0, 0.45, 0.88), (-10, 0.7, 0.3), (200, 0.55, 0.5)]),
    (_clouds, 195, [(0, 0.35, 0.8), (15, 0.12, 0.95), (0, 0.03, 1.0), (0, 0.12, 0.75), (-120, 0.35, 0.5)]),
    (_animal, 30, [(75, 0.45, 0.65), (80, 0.6, 0.4), (0, 0.6, 0.55), (0, 0.7, 0.28), (0, 0.1, 0.1)]),
    (_plate, 45, [(-20, 0.5, 0.45), (-20, 0.6, 0.32), (0, 0.04, 0.97), (0, 0.9, 0.95), (-45, 0.85, 0.8)]),
    (_blocks, 215, [(0, 0.3, 0.85), (0, 0.15, 0.7), (0, 0.15, 0.45), (0, 0.1, 0.3), (-170, 0.6, 1.0)]),
    (_screen, 180, [(0, 0.05, 0.78), (0, 0.05, 0.6), (0, 0.1, 0.12), (0, 0.9, 0.95), (0, 0.2, 0.35)]),
    (_pair, 140, [(0, 0.25, 0.95), (-100, 0.2, 0.9), (-120, 0.5, 0.9), (-150, 0.45, 0.95), (60, 0.4, 0.6)]),
]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """colorsys.hsv_to_rgb over arrays (hue in turns); output (..., 3) in 0..1."""
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f))
    sector = [i % 6 == k for k in range(6)]
    rgb = [(v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q)]
    return np.stack([np.select(sector, channel) for channel in rgb], -1)


BASE_HUE = np.array([look[1] for look in LOOKS])
PALETTE = np.array([look[2] for look in LOOKS])  # (categories, 5 colours, hue offset / saturation / value)


def palettes(category: np.ndarray, hue_shift: np.ndarray, knobs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each post's five colours and its edge blur, from its category's palette and its quality.

    Input: category (posts,), hue shift in degrees (posts,), quality scores (posts, 4): brightness,
    contrast, saturation, sharpness, each ~ appeal + noise. Output: colours (posts, 5, 3) uint8,
    blur (posts,) as a share of the short side. The scores map to brightness x0.5..1.1, contrast
    (towards mid grey) x0.3..1.15, saturation (towards the grey of the same luma) x0.15..1.15 and an
    edge blur of 0..8% of the short side, as PIL's ImageEnhance would do to the whole picture."""
    look = PALETTE[category]
    hue = (BASE_HUE[category] + hue_shift)[:, None] + look[..., 0]
    rgb = _hsv_to_rgb(hue / 360.0 % 1.0, look[..., 1], look[..., 2])
    bri, con, chroma = (f(knobs[:, k])[:, None, None] for k, f in enumerate(_FACTORS))
    grey = (rgb @ np.array([0.299, 0.587, 0.114]))[..., None]
    out = (0.5 + con * (grey + chroma * (rgb - grey) - 0.5)) * bri
    return np.clip(np.rint(255 * out), 0, 255).astype(np.uint8), 0.08 * _sigmoid(-1.8 * knobs[:, 3])


_FACTORS = (
    lambda b: 0.5 + 0.6 * _sigmoid(1.3 * b),
    lambda c: 0.3 + 0.85 * _sigmoid(1.3 * c),
    lambda s: 0.15 + _sigmoid(1.3 * s),
)


def render(
    category: int,
    size: tuple[int, int],
    orientation: int,
    colors: list[Color],
    blur: float,
    layout_seed: int,
    jpeg_quality: int,
) -> bytes:
    """A JPEG of display size ``size`` (width, height) in the five ``colors`` with edges blurred by
    ``blur`` (share of the short side), stored turned for ``orientation`` (3, 6, 8 carry the EXIF
    tag; 1 is stored as displayed, without EXIF). Same arguments, same bytes."""
    w, h = size
    img = Image.new("RGB", (1, 2))
    img.putpixel((0, 0), colors[0])
    img.putpixel((0, 1), colors[1])
    img = img.resize((1, h), Image.Resampling.BILINEAR).resize((w, h), Image.Resampling.NEAREST)
    pen = Pen(ImageDraw.Draw(img), blur * min(w, h), _mix(colors[0], colors[1], 0.5))
    LOOKS[category][0](pen, w, h, colors, random.Random(layout_seed))
    exif = b""
    if orientation in STORED:
        img, exif = img.transpose(STORED[orientation]), EXIF[orientation]
    out = io.BytesIO()
    img.save(out, "JPEG", quality=jpeg_quality, exif=exif)
    return out.getvalue()
