"""Procedural style images: the paintings the shipped fast styles learn, rendered from a seed.

No painting can be downloaded, so the recipes of the shipped fast styles draw their own:
``brush`` (thick oil-like strokes following a swirling flow), ``mosaic`` (tesserae with dark
grout) and ``hatching`` (pen-and-ink cross-hatching on paper, denser where the tone is darker).
Each is a deterministic function of (seed, size).
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


def brush(seed: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), PALETTES["brush"][-1])
    draw = ImageDraw.Draw(img, "RGBA")
    angle = _smooth_field(rng, size, 5) * 2 * math.pi
    palette = PALETTES["brush"]
    width = max(2, size // 40)
    for _ in range(int(size * size / 90)):
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


def mosaic(seed: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = max(16, size * size // 180)
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
    palette = np.array(PALETTES["mosaic"], np.float64)
    colours = palette[rng.integers(len(palette), size=n)] + rng.integers(-20, 21, (n, 3))
    img = colours[owner]
    grout = (np.sqrt(second) - np.sqrt(best)) < max(1.0, size / 128)
    img[grout] = (50, 45, 40)
    return np.clip(img, 0, 255).astype(np.uint8).reshape(size, size, 3)


def hatching(seed: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (244, 236, 214))
    draw = ImageDraw.Draw(img)
    tone = _smooth_field(rng, size, 4)
    ink = (25, 25, 35)
    spacing = max(3, size // 48)
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


STYLES: dict[str, Callable[[int, int], np.ndarray]] = {
    "brush": brush, "mosaic": mosaic, "hatching": hatching}


def render_style(name: str, seed: int = 0, size: int = 256) -> np.ndarray:
    """The procedural style image ``name`` (brush, mosaic, hatching) as uint8 RGB."""
    try:
        fn = STYLES[name]
    except KeyError:
        raise KeyError(f"Unknown procedural style {name!r}; known: {', '.join(STYLES)}") from None
    return fn(int(seed), int(size))
