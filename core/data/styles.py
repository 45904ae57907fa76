"""Procedural style images: the paintings the style models learn, rendered from a seed.

No painting can be downloaded, so Easel's style recipes draw their own: ``brush`` (thick
oil-like strokes following a swirling flow), ``mosaic`` (tesserae with dark grout),
``hatching`` (pen-and-ink cross-hatching on paper, denser where the tone is darker), ``stipple``
(pointillist dots of pure colour) and ``wash`` (watercolour: translucent pools with darker
rims on paper). Each is a deterministic function of (seed, size); :func:`render_style` gives
the manner's own look (what the fast styles learn), :func:`varied_painting` draws the manner's
palette, mark size and density from the seed too (the one-pass style model learns from many).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PALETTES = {
    "brush": [(32, 60, 140), (240, 190, 60), (210, 80, 40), (40, 120, 110), (245, 235, 200),
              (20, 30, 60)],
    "mosaic": [(180, 40, 40), (230, 170, 50), (40, 90, 160), (60, 140, 80), (235, 225, 200),
               (120, 60, 120)],
}


def _smooth_field(rng: np.random.Generator, size: int, cells: int = 4) -> np.ndarray:
    """A smooth random field in [0, 1] (bicubic upsampling of a coarse grid)."""
    coarse = Image.fromarray((rng.random((cells, cells)) * 255).astype(np.uint8))
    return np.asarray(coarse.resize((size, size), Image.BICUBIC), np.float64) / 255.0


Colour = tuple[int, int, int]


def brush(seed: int, size: int = 256, palette: list[Colour] | None = None, mark: float = 1.0,
          density: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    palette = palette or PALETTES["brush"]
    img = Image.new("RGB", (size, size), palette[-1])
    draw = ImageDraw.Draw(img, "RGBA")
    angle = _smooth_field(rng, size, 5) * 2 * math.pi
    width = max(2, round(size // 40 * mark))
    for _ in range(int(size * size / 90 * density)):
        x, y = rng.random(2) * size
        colour = palette[int(rng.integers(len(palette)))]
        jitter = rng.integers(-25, 26, 3)
        c = tuple(int(np.clip(v + j, 0, 255)) for v, j in zip(colour, jitter, strict=True))
        points = [(x, y)]
        for _ in range(int(rng.integers(3, 7))):
            a = angle[int(y) % size, int(x) % size]
            x, y = x + math.cos(a) * size / 40, y + math.sin(a) * size / 40
            points.append((x, y))
        draw.line(points, fill=(*c, 215), width=int(width * rng.uniform(0.6, 1.4)), joint="curve")
    return np.asarray(img.filter(ImageFilter.SMOOTH), np.uint8).copy()


def mosaic(seed: int, size: int = 256, palette: list[Colour] | None = None, mark: float = 1.0,
           density: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = max(16, int(size * size // (180 * mark * mark) * density))
    centres = rng.random((n, 2)) * size
    ys, xs = np.mgrid[:size, :size]
    pixels = np.stack([ys.ravel(), xs.ravel()], 1).astype(np.float64)
    best = np.full(len(pixels), np.inf)
    second = np.full(len(pixels), np.inf)
    owner = np.zeros(len(pixels), np.int64)
    for i, (cy, cx) in enumerate(centres):
        d = (pixels[:, 0] - cx) ** 2 + (pixels[:, 1] - cy) ** 2
        closer = d < best
        second = np.where(closer, best, np.minimum(second, d))
        owner = np.where(closer, i, owner)
        best = np.where(closer, d, best)
    palette = np.array(palette or PALETTES["mosaic"], np.float64)
    colours = palette[rng.integers(len(palette), size=n)] + rng.integers(-20, 21, (n, 3))
    img = colours[owner]
    grout = (np.sqrt(second) - np.sqrt(best)) < max(1.0, size / 128)
    img[grout] = (50, 45, 40)
    return np.clip(img, 0, 255).astype(np.uint8).reshape(size, size, 3)


def hatching(seed: int, size: int = 256, palette: list[Colour] | None = None,
             mark: float = 1.0, density: float = 1.0) -> np.ndarray:
    """``palette``: (paper, ink); ``mark`` scales the spacing of the lines."""
    rng = np.random.default_rng(seed)
    paper, ink = palette[:2] if palette else ((244, 236, 214), (25, 25, 35))
    img = Image.new("RGB", (size, size), paper)
    draw = ImageDraw.Draw(img)
    tone = _smooth_field(rng, size, 4)
    spacing = max(3, round(size // 48 * mark / density))
    for layer, angle in enumerate((math.pi / 4, -math.pi / 4, 0.0)):
        dx, dy = math.cos(angle), math.sin(angle)
        for offset in range(-size, 2 * size, spacing):
            # A stroke along the direction, drawn only where the tone is dark enough.
            t = np.linspace(-size, 2 * size, 3 * size // 2)
            px = offset * -dy + t * dx
            py = offset * dx + t * dy
            inside = (px >= 0) & (px < size) & (py >= 0) & (py < size)
            px, py = px[inside], py[inside]
            if len(px) < 2:
                continue
            dark = tone[py.astype(int), px.astype(int)] > 0.3 + 0.22 * layer
            wobble = rng.normal(0, 0.4, len(px))
            start = None
            for k in range(len(px)):
                if dark[k] and start is None:
                    start = k
                if (not dark[k] or k == len(px) - 1) and start is not None:
                    if k - start > 2:
                        draw.line([(px[start], py[start] + wobble[start]),
                                   (px[k], py[k] + wobble[k])], fill=ink, width=1)
                    start = None
    return np.asarray(img, np.uint8).copy()


def stipple(seed: int, size: int = 256, palette: list[Colour] | None = None, mark: float = 1.0,
            density: float = 1.0) -> np.ndarray:
    """Pointillism: round dots of pure palette colours, the colour following a smooth field, on
    a light ground."""
    rng = np.random.default_rng(seed)
    palette = palette or [(40, 70, 160), (230, 200, 60), (200, 70, 50), (70, 150, 80),
                          (245, 240, 225)]
    img = Image.new("RGB", (size, size), palette[-1])
    draw = ImageDraw.Draw(img)
    field = _smooth_field(rng, size, 4)
    r = max(1.0, size / 110 * mark)
    for _ in range(int(size * size / (2.2 * r * r) * density)):
        x, y = rng.random(2) * size
        k = int(field[int(y), int(x)] * (len(palette) - 1) + rng.normal(0, 0.8))
        c = palette[min(max(k, 0), len(palette) - 2)]
        rr = r * rng.uniform(0.7, 1.3)
        draw.ellipse([x - rr, y - rr, x + rr, y + rr], fill=c)
    return np.asarray(img, np.uint8).copy()


def wash(seed: int, size: int = 256, palette: list[Colour] | None = None, mark: float = 1.0,
         density: float = 1.0) -> np.ndarray:
    """Watercolour: translucent soft-edged pools that darken where they overlap, each with a
    darker rim where the pigment dried, on warm paper with a faint grain."""
    rng = np.random.default_rng(seed)
    palette = palette or [(60, 110, 170), (200, 90, 80), (90, 150, 110), (220, 170, 70),
                          (250, 246, 236)]
    paper = np.array(palette[-1], np.float64)
    # Subtractive mixing: every pool multiplies the light passing through it.
    light = np.ones((size, size, 3))
    ys, xs = np.mgrid[:size, :size].astype(np.float64)
    for _ in range(max(3, int(14 * density))):
        cx, cy = rng.random(2) * size
        rad = size * rng.uniform(0.08, 0.25) * mark
        wobble = _smooth_field(rng, size, 6) * 0.6 + 0.7  # ragged edges
        d = np.sqrt((xs - cx) ** 2 + (ys - cy) ** 2) / (rad * wobble)
        body = np.clip(1.2 - d, 0, 1) ** 0.5
        rim = np.exp(-((d - 0.95) / 0.06) ** 2) * 0.5
        amount = np.clip(body * rng.uniform(0.35, 0.7) + rim * (body > 0), 0, 1)[..., None]
        tint = np.array(palette[int(rng.integers(len(palette) - 1))], np.float64) / 255
        light *= 1 - amount * (1 - tint)
    grain = (_smooth_field(rng, size, max(8, size // 4)) - 0.5)[..., None] * 18
    img = paper * light + grain
    return np.clip(img, 0, 255).astype(np.uint8)


STYLES: dict[str, Callable[..., np.ndarray]] = {
    "brush": brush, "mosaic": mosaic, "hatching": hatching, "stipple": stipple, "wash": wash}
# Manners the one-pass style model never sees in training: its evaluation measures on these.
HELD_OUT_PAINTINGS = ("hatching", "wash")


def render_style(name: str, seed: int = 0, size: int = 256) -> np.ndarray:
    """The procedural style image ``name`` (brush, mosaic, hatching) as uint8 RGB."""
    try:
        fn = STYLES[name]
    except KeyError:
        raise KeyError(f"Unknown procedural style {name!r}; known: {', '.join(STYLES)}") from None
    return fn(int(seed), int(size))


def random_palette(rng: np.random.Generator, n: int) -> list[Colour]:
    """``n`` colours around one or two hues, the last a light ground (paper, canvas)."""
    import colorsys

    base = rng.random()
    spread = rng.uniform(0.05, 0.5)
    out = []
    for _ in range(n - 1):
        h = (base + rng.choice([-1, 0, 1]) * spread + rng.normal(0, 0.04)) % 1.0
        rgb = colorsys.hsv_to_rgb(h, rng.uniform(0.25, 0.95), rng.uniform(0.15, 0.95))
        out.append(tuple(int(v * 255) for v in rgb))
    ground = colorsys.hsv_to_rgb(base, rng.uniform(0.0, 0.25), rng.uniform(0.75, 1.0))
    if rng.random() < 0.3:  # sometimes a dark ground
        ground = colorsys.hsv_to_rgb(base, rng.uniform(0.2, 0.6), rng.uniform(0.05, 0.3))
    out.append(tuple(int(v * 255) for v in ground))
    return out


def varied_painting(name: str, seed: int, size: int = 256) -> np.ndarray:
    """A painting in manner ``name`` whose palette (half the time the manner's own), mark size
    (x0.5 to x2) and density (x0.6 to x1.5) are drawn from ``seed`` as well as its layout."""
    fn = STYLES.get(name)
    if fn is None:
        raise KeyError(f"Unknown procedural style {name!r}; known: {', '.join(STYLES)}")
    rng = np.random.default_rng([int(seed), len(name), sum(map(ord, name))])
    palette = random_palette(rng, int(rng.integers(3, 8))) if rng.random() < 0.5 else None
    if palette and name == "hatching":  # (paper, ink): the lightest and the darkest colours
        palette = sorted(palette, key=sum)[::-1]
        palette = [palette[0], palette[-1]] if sum(palette[0]) - sum(palette[-1]) > 300 \
            else None
    mark = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    density = float(rng.uniform(0.6, 1.5))
    return fn(int(seed), int(size), palette=palette, mark=mark, density=density)
