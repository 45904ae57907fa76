"""Draw Easel's app icon with Pillow: a painted canvas on a wooden easel, on a rounded tile.

Writes into resources/icons/: ``easel-256.png``, ``easel-512.png`` (Linux, the README),
``easel.ico`` (Windows: 16-256 px), ``easel.icns`` (macOS) and ``easel.svg`` (the same drawing
as vector shapes). The geometry is defined once on a 1024-unit square and drawn at 4x the
largest size, then downsampled, so edges are smooth. Deterministic: running it again gives
the same files. Run: ``python installer/make_icon.py [OUT_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

UNIT = 1024  # design units per side
TILE = (40, 40, 984, 984)  # the rounded background tile
TILE_RADIUS = 200
BG_TOP, BG_BOTTOM = (43, 45, 110), (24, 138, 143)  # indigo -> teal, top to bottom
WOOD, WOOD_DARK = (214, 150, 82), (150, 96, 48)
LEGS = (((360, 330), (215, 900)), ((664, 330), (809, 900)))  # front legs, top -> foot
BACK_LEG = ((512, 300), (512, 930))
LEG_WIDTH = 52
SHELF = (250, 618, 774, 678)  # the ledge the canvas stands in (hides its lower corners)
CANVAS = (268, 210, 756, 640)
CANVAS_RADIUS = 18
CLAMP = (470, 168, 554, 232)
SKY = (255, 248, 236)
SUN = (600, 270, 700, 370)
SUN_COLOUR = (255, 164, 46)
HILLS = ((66, 132, 214), (38, 96, 170))
STROKE = (232, 62, 120)  # the brush stroke across the painting


def _hill(x0: float, x1: float, y_base: float, height: float, n: int = 48
          ) -> list[tuple[float, float]]:
    """A smooth hill (half a cosine) from x0 to x1 resting on y_base, as a closed polygon."""
    import math

    pts = [(x0 + (x1 - x0) * i / n,
            y_base - height * (0.5 - 0.5 * math.cos(2 * math.pi * i / n))) for i in range(n + 1)]
    return [*pts, (x1, y_base), (x0, y_base)]


def _stroke(n: int = 64) -> list[tuple[float, float]]:
    """The centre line of the painted S-shaped brush stroke."""
    import math

    x0, x1 = CANVAS[0] + 60, CANVAS[2] - 60
    return [(x0 + (x1 - x0) * i / n, 470 - 55 * math.sin(math.pi * 1.6 * i / n + 0.4))
            for i in range(n + 1)]


def draw(size: int) -> Image.Image:
    """The icon as an RGBA image of ``size`` x ``size`` pixels."""
    ss = max(4, 2048 // size) if size < 512 else 4
    px = size * ss
    k = px / UNIT

    def s(*v: float) -> tuple[float, ...]:
        return tuple(c * k for c in v)

    img = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    # background tile with a vertical gradient, masked to a rounded square
    grad = Image.new("RGBA", (1, px))
    for y in range(px):
        t = y / (px - 1)
        grad.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(BG_TOP, BG_BOTTOM, strict=True))
                      + (255,))
    grad = grad.resize((px, px))
    mask = Image.new("L", (px, px), 0)
    ImageDraw.Draw(mask).rounded_rectangle(s(*TILE), radius=TILE_RADIUS * k, fill=255)
    img.paste(grad, (0, 0), mask)

    d = ImageDraw.Draw(img)
    d.line(s(*BACK_LEG[0], *BACK_LEG[1]), fill=WOOD_DARK, width=round(LEG_WIDTH * k))
    for top, foot in LEGS:
        d.line(s(*top, *foot), fill=WOOD, width=round(LEG_WIDTH * k))

    # the canvas, with a soft shadow
    shadow = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    ImageDraw.Draw(shadow).rounded_rectangle(s(CANVAS[0] + 14, CANVAS[1] + 18, CANVAS[2] + 14,
                                               CANVAS[3] + 18),
                                             radius=CANVAS_RADIUS * k, fill=(0, 0, 0, 110))
    img.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(12 * k)))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(s(*CANVAS), radius=CANVAS_RADIUS * k, fill=SKY)

    # the painting: sun, two hills, a brush stroke, all inside the canvas (no clipping, so the
    # SVG needs none either: Qt's SVG renderer ignores clip paths)
    art = Image.new("RGBA", (px, px), (0, 0, 0, 0))
    a = ImageDraw.Draw(art)
    a.ellipse(s(*SUN), fill=SUN_COLOUR)
    a.polygon([s(*p) for p in _hill(CANVAS[0], 600, CANVAS[3], 190)], fill=HILLS[0])
    a.polygon([s(*p) for p in _hill(450, CANVAS[2], CANVAS[3], 150)], fill=HILLS[1])
    line = [s(*p) for p in _stroke()]
    a.line(line, fill=STROKE, width=round(46 * k), joint="curve")
    for end in (line[0], line[-1]):
        r = 23 * k
        a.ellipse((end[0] - r, end[1] - r, end[0] + r, end[1] + r), fill=STROKE)
    img.alpha_composite(art)

    d = ImageDraw.Draw(img)
    d.rounded_rectangle(s(*SHELF), radius=10 * k, fill=WOOD)
    d.rounded_rectangle(s(*CLAMP), radius=10 * k, fill=WOOD)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def svg() -> str:
    """The same drawing as an SVG document (1024-unit view box)."""
    def rgb(c: tuple[int, ...]) -> str:
        return "#" + "".join(f"{v:02x}" for v in c[:3])

    def pts(points: list[tuple[float, float]]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)

    x0, y0, x1, y1 = TILE
    cx0, cy0, cx1, cy1 = CANVAS
    legs = "\n".join(f'  <line x1="{t[0]}" y1="{t[1]}" x2="{f[0]}" y2="{f[1]}" '
                     f'stroke="{rgb(WOOD)}" stroke-width="{LEG_WIDTH}" />' for t, f in LEGS)
    sx0, sy0, sx1, sy1 = SUN
    return f"""<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {UNIT} {UNIT}" width="{UNIT}" height="{UNIT}">
  <title>Easel</title>
  <defs>
    <linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="{rgb(BG_TOP)}" />
      <stop offset="1" stop-color="{rgb(BG_BOTTOM)}" />
    </linearGradient>
    <filter id="shadow" x="-20%" y="-20%" width="140%" height="140%">
      <feGaussianBlur stdDeviation="12" />
    </filter>
  </defs>
  <rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" rx="{TILE_RADIUS}" fill="url(#bg)" />
  <line x1="{BACK_LEG[0][0]}" y1="{BACK_LEG[0][1]}" x2="{BACK_LEG[1][0]}" y2="{BACK_LEG[1][1]}" stroke="{rgb(WOOD_DARK)}" stroke-width="{LEG_WIDTH}" />
{legs}
  <rect x="{cx0 + 14}" y="{cy0 + 18}" width="{cx1 - cx0}" height="{cy1 - cy0}" rx="{CANVAS_RADIUS}" fill="#000" fill-opacity="0.43" filter="url(#shadow)" />
  <rect x="{cx0}" y="{cy0}" width="{cx1 - cx0}" height="{cy1 - cy0}" rx="{CANVAS_RADIUS}" fill="{rgb(SKY)}" />
  <g>
    <circle cx="{(sx0 + sx1) / 2}" cy="{(sy0 + sy1) / 2}" r="{(sx1 - sx0) / 2}" fill="{rgb(SUN_COLOUR)}" />
    <polygon points="{pts(_hill(cx0, 600, cy1, 190))}" fill="{rgb(HILLS[0])}" />
    <polygon points="{pts(_hill(450, cx1, cy1, 150))}" fill="{rgb(HILLS[1])}" />
    <polyline points="{pts(_stroke())}" fill="none" stroke="{rgb(STROKE)}" stroke-width="46" stroke-linecap="round" stroke-linejoin="round" />
  </g>
  <rect x="{SHELF[0]}" y="{SHELF[1]}" width="{SHELF[2] - SHELF[0]}" height="{SHELF[3] - SHELF[1]}" rx="10" fill="{rgb(WOOD)}" />
  <rect x="{CLAMP[0]}" y="{CLAMP[1]}" width="{CLAMP[2] - CLAMP[0]}" height="{CLAMP[3] - CLAMP[1]}" rx="10" fill="{rgb(WOOD)}" />
</svg>
"""


def write_all(out: Path) -> list[Path]:
    """Write every icon file into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    big = draw(1024)
    files = []
    for size in (256, 512):
        path = out / f"easel-{size}.png"
        (big if size == 1024 else draw(size)).save(path, optimize=True)
        files.append(path)
    ico = out / "easel.ico"
    big.save(ico, sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
    icns = out / "easel.icns"
    big.save(icns)
    svg_path = out / "easel.svg"
    svg_path.write_text(svg(), encoding="utf-8")
    return [*files, ico, icns, svg_path]


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else root / "resources" / "icons"
    for f in write_all(target):
        print(f"{f}  {f.stat().st_size} bytes")
