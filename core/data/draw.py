"""Anti-aliased flat-colour drawing for the procedural worlds, at any output size.

Shapes are given in *unit coordinates*: (0, 0) is the top-left corner of the image and (1, 1)
the bottom-right, y pointing down, so one description renders at 64, 128 or 256 pixels alike.
A :class:`Canvas` draws with Pillow's (fast, C) polygon filler on a canvas ``supersample``
times larger than the output and box-filters it down, which gives every edge exact area
coverage to 1/supersample² (plain supersampling; the box filter is ``Image.reduce``).
Everything is a polygon, strokes included (:func:`stroke_polygon`), so widths are exact at
any size instead of Pillow's whole-pixel line widths.

Stable API (shared by the faces and scenes worlds):

    canvas = Canvas(size, background=(r, g, b), supersample=4)
    canvas.polygon(points, fill, alpha=1.0)        # points: (N, 2) unit coordinates
    canvas.ellipse(cx, cy, rx, ry, fill, angle=0.0, alpha=1.0)
    canvas.circle(cx, cy, r, fill, alpha=1.0)
    canvas.rect(x0, y0, x1, y1, fill, radius=0.0, alpha=1.0)
    canvas.stroke(points, width, fill, closed=False, caps=True, alpha=1.0)
    canvas.image() -> np.ndarray                   # (size, size, 3) uint8
    ellipse_points(cx, cy, rx, ry, angle=0.0, t0=0.0, t1=2*pi, n=None) -> (N, 2)
    rounded_rect_points(x0, y0, x1, y1, radius, n_corner=8) -> (N, 2)
    stroke_polygon(points, width, closed=False) -> (M, 2)
    rotate(points, angle, centre) -> (N, 2)        # angle in radians, positive = clockwise
    Frame(origin, scale, angle, sx=1.0, sy=1.0)     # local -> unit coordinates; frame(points)
    jitter_colour(rgb, rng, amount) -> tuple[int, int, int]

Colours are (r, g, b) tuples of 0..255 ints. ``alpha`` < 1 blends the fill over what is there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
Points = np.ndarray | Sequence[Sequence[float]]


def ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0,
                   t0: float = 0.0, t1: float = 2 * math.pi, n: int | None = None) -> np.ndarray:
    """Points on an ellipse (or an arc of it from parameter t0 to t1), rotated by ``angle``."""
    if n is None:
        n = max(8, int(48 * abs(t1 - t0) / (2 * math.pi)) + 1)
    pts = _unit_arc(float(t0), float(t1), int(n)) * np.array([rx, ry])
    if angle:
        pts = pts @ _rotation(angle)
    return pts + np.array([cx, cy])


@lru_cache(maxsize=256)
def _unit_arc(t0: float, t1: float, n: int) -> np.ndarray:
    # Cached: the worlds draw the same few arcs thousands of times, and numpy's per-call
    # overhead, not the arithmetic, is what renders cost at 64 px.
    t = np.linspace(t0, t1, n, endpoint=abs(t1 - t0) < 2 * math.pi - 1e-9)
    pts = np.stack([np.cos(t), np.sin(t)], axis=1)
    pts.flags.writeable = False
    return pts


def _rotation(angle: float) -> np.ndarray:
    """The matrix M with ``points @ M`` turning row-vector points by ``angle`` (clockwise)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, s], [-s, c]])


def rounded_rect_points(x0: float, y0: float, x1: float, y1: float, radius: float,
                        n_corner: int = 8) -> np.ndarray:
    """The outline of an axis-aligned rectangle with rounded corners."""
    r = max(0.0, min(radius, (x1 - x0) / 2, (y1 - y0) / 2))
    if r == 0.0:
        return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
    corners = [(x1 - r, y0 + r, -math.pi / 2), (x1 - r, y1 - r, 0.0),
               (x0 + r, y1 - r, math.pi / 2), (x0 + r, y0 + r, math.pi)]
    parts = [ellipse_points(cx, cy, r, r, t0=a, t1=a + math.pi / 2, n=n_corner)
             for cx, cy, a in corners]
    return np.concatenate(parts)


def rotate(points: Points, angle: float, centre: Sequence[float]) -> np.ndarray:
    """Rotate points by ``angle`` radians about ``centre`` (clockwise on screen, y down)."""
    c = np.asarray(centre, float)
    return (np.asarray(points, float) - c) @ _rotation(angle) + c


def stroke_polygon(points: Points, width: float, closed: bool = False) -> np.ndarray:
    """The outline of a constant-width band along a smooth polyline (mitred at each vertex).

    Meant for gently curved strokes (mouths, brows, frames); sharp corners should be drawn as
    separate strokes. Caps are flat; :meth:`Canvas.stroke` adds round ones.
    """
    p = np.asarray(points, float)
    if len(p) < 2:
        raise ValueError("a stroke needs at least two points")
    if closed:
        d_prev = p - np.roll(p, 1, axis=0)
        d_next = np.roll(p, -1, axis=0) - p
    else:
        d = np.diff(p, axis=0)
        d_prev = np.concatenate([d[:1], d])
        d_next = np.concatenate([d, d[-1:]])
    t_prev = d_prev / np.maximum(np.hypot(d_prev[:, :1], d_prev[:, 1:]), 1e-12)
    t_next = d_next / np.maximum(np.hypot(d_next[:, :1], d_next[:, 1:]), 1e-12)
    tangent = t_prev + t_next
    tangent /= np.maximum(np.hypot(tangent[:, :1], tangent[:, 1:]), 1e-12)
    normal = tangent[:, ::-1] * np.array([-1.0, 1.0])
    # Mitre: stretch the offset so the band keeps its width where the path bends
    # (cos of the half-angle = normal . next segment's normal, which is t_next turned 90 deg).
    cos_half = np.clip(normal[:, 0] * -t_next[:, 1] + normal[:, 1] * t_next[:, 0], 0.3, 1.0)
    off = normal * (width / 2 / cos_half)[:, None]
    left, right = p + off, p - off
    if closed:
        # Outer ring then inner ring, joined by a zero-width seam: an even-odd-free annulus.
        return np.concatenate([left, left[:1], right[:1], right[::-1]])
    return np.concatenate([left, right[::-1]])


@dataclass(frozen=True)
class Frame:
    """A local coordinate frame: ``frame(points)`` maps local (u, v) to unit coordinates.

    ``p = origin + R(angle) @ (u * sx, v * sy) * scale``; positive angle turns clockwise.
    """

    origin: tuple[float, float]
    scale: float
    angle: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def __post_init__(self) -> None:
        stretch = np.diag([self.sx * self.scale, self.sy * self.scale])
        object.__setattr__(self, "_matrix", stretch @ _rotation(self.angle))
        object.__setattr__(self, "_offset", np.asarray(self.origin, float))

    def __call__(self, points: Points) -> np.ndarray:
        return np.asarray(points, float) @ self._matrix + self._offset

    def length(self, d: float) -> float:
        """A local length in unit coordinates (using the mean of the axis stretches)."""
        return d * self.scale * (self.sx + self.sy) / 2


def jitter_colour(rgb: Sequence[int], rng: np.random.Generator, amount: float) -> RGB:
    """Shift a colour by up to ``amount`` per channel (uniform), clipped to 0..255."""
    shifted = np.asarray(rgb, float) + rng.uniform(-amount, amount, 3)
    r, g, b = (round(float(v)) for v in np.clip(shifted, 0, 255))
    return (r, g, b)


class Canvas:
    """A square supersampled drawing surface in unit coordinates; see the module docstring."""

    def __init__(self, size: int, background: Sequence[int] = (255, 255, 255),
                 supersample: int = 4) -> None:
        if size < 1:
            raise ValueError(f"image size must be a positive number of pixels, not {size}")
        self.size = int(size)
        self.ss = int(supersample)
        self.px = self.size * self.ss  # canvas side in canvas pixels
        self._im = Image.new("RGB", (self.px, self.px), tuple(int(c) for c in background))
        self._draw = ImageDraw.Draw(self._im)
        self._blend = ImageDraw.Draw(self._im, "RGBA")

    def _xy(self, points: Points) -> list[float]:
        # Pillow samples pixel centres at integer coordinates; shift by half a pixel so unit
        # coordinate 0 is the canvas edge and 1 the far edge.
        p = np.asarray(points, float) * self.px - 0.5
        return p.ravel().tolist()

    def polygon(self, points: Points, fill: Sequence[int], alpha: float = 1.0) -> None:
        xy = self._xy(points)
        if len(xy) < 6:
            return
        if alpha >= 1.0:
            self._draw.polygon(xy, fill=tuple(fill))
        elif alpha > 0.0:
            self._blend.polygon(xy, fill=(*tuple(fill), round(alpha * 255)))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Sequence[int],
                angle: float = 0.0, alpha: float = 1.0) -> None:
        # Enough vertices that the polygon is round at this canvas size (chord error < 0.25 px).
        r_px = max(rx, ry) * self.px
        n = int(min(256, max(12, math.pi / math.acos(max(0.0, 1 - 0.25 / max(r_px, 0.5))))))
        self.polygon(ellipse_points(cx, cy, rx, ry, angle, n=n), fill, alpha)

    def circle(self, cx: float, cy: float, r: float, fill: Sequence[int],
               alpha: float = 1.0) -> None:
        self.ellipse(cx, cy, r, r, fill, alpha=alpha)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Sequence[int],
             radius: float = 0.0, alpha: float = 1.0) -> None:
        self.polygon(rounded_rect_points(x0, y0, x1, y1, radius), fill, alpha)

    def stroke(self, points: Points, width: float, fill: Sequence[int], closed: bool = False,
               caps: bool = True, alpha: float = 1.0) -> None:
        """A band of ``width`` (unit coordinates) along the polyline, with round end caps."""
        p = np.asarray(points, float)
        self.polygon(stroke_polygon(p, width, closed), fill, alpha)
        if caps and not closed and alpha >= 1.0:
            for end in (p[0], p[-1]):
                self.circle(end[0], end[1], width / 2, fill)

    def image(self) -> np.ndarray:
        """The picture at the output size: the canvas box-filtered down, (size, size, 3) uint8."""
        im = self._im.reduce(self.ss) if self.ss > 1 else self._im
        return np.asarray(im, dtype=np.uint8).copy()
