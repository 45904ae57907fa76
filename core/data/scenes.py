"""Scenes world: 1-3 flat-coloured shapes on a plain or two-tone background, with a caption.

Every colour word maps to one RGB value (plus a little lighting noise), every size word to a
clear fraction of the image side, and objects never overlap, so a judge (or a person) can read
a scene back unambiguously. The language side (captions, prompt parsing, the GenEval-style
checker) lives in :mod:`core.data.captions`; this module owns the geometry and the drawing.

    world = get_world("scenes")
    sample = world.render(seed=3, size=64)
    sample.caption                 # "two blue circles on a black background"
    sample.labels["objects"]       # [{"shape": "circle", "colour": "blue", "size": "small",
                                   #   "bbox": (x0, y0, x1, y1)}, ...]  (0..1 image fractions)
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.data.draw import Canvas
from core.data.worlds import Sample, register_world

SHAPES = ["circle", "square", "triangle", "star", "heart"]
SIZES = ["small", "big"]
# Chosen far apart in RGB (the closest pair, orange/yellow, is ~80 apart) so that a colour stays
# nameable after lighting noise and anti-aliasing.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "orange": (245, 140, 25),
    "yellow": (245, 225, 45),
    "green": (45, 165, 65),
    "blue": (40, 85, 220),
    "purple": (135, 55, 185),
    "pink": (245, 150, 200),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
COLOUR_NAMES = list(COLOURS)
RELATIONS = ["left_of", "right_of", "above", "below"]

# Object side as a fraction of the image side: (low, high) of a uniform draw. Small and big
# never come closer than a factor 1.5, so size is readable from one object alone.
SIZE_RANGE = {"small": (0.17, 0.21), "big": (0.33, 0.39)}
EDGE_MARGIN = 0.03  # objects stay this far from the image border
GAP = 0.04  # free space between any two objects' boxes
# Centre-x values at least this far apart, so "sorted left to right" (the judge's slot order)
# is never a coin toss.
MIN_DX = 0.08
# A relation used to lay out a scene is made clearly true: the main-axis distance of the
# centres is at least RELATION_MIN and the cross-axis offset at most RELATION_RATIO of it.
RELATION_MIN = 0.2
RELATION_RATIO = 0.5
TWO_TONE_P = 0.3
MAX_TRIES = 2000
PLACE_TRIES = 20

# Lighting noise: per-region colour shift, per-region brightness, and a gentle linear gradient
# over the image. Together they move a colour by well under half the closest colour distance.
CHANNEL_JITTER = 6.0
BRIGHTNESS_JITTER = 0.03
GRADIENT = 0.04


def _unit(points: list[tuple[float, float]]) -> np.ndarray:
    """Scale a polygon so that its bounding box is exactly the unit square."""
    p = np.asarray(points, float)
    lo, hi = p.min(0), p.max(0)
    return (p - lo) / (hi - lo)


def _star(n: int = 5, inner: float = 0.5) -> np.ndarray:
    # A fat star (inner radius half the outer one) keeps its points readable at 11 pixels.
    pts = []
    for i in range(2 * n):
        r = 1.0 if i % 2 == 0 else inner
        a = -math.pi / 2 + i * math.pi / n
        pts.append((r * math.cos(a), r * math.sin(a)))
    return _unit(pts)


def _heart(n: int = 64) -> np.ndarray:
    # The classic heart curve x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t
    # (y flipped because image y points down).
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return _unit(list(zip(x, y, strict=True)))


# Unit-square outlines (the circle is drawn as an ellipse).
_POLYGONS = {
    "square": _unit([(0, 0), (1, 0), (1, 1), (0, 1)]),
    "triangle": _unit([(0.5, 0), (1, 1), (0, 1)]),
    "star": _star(),
    "heart": _heart(),
}

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class SceneObject:
    shape: str
    colour: str
    size: str
    bbox: Box  # (x0, y0, x1, y1) in 0..1 image fractions

    def label(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "size": self.size,
                "bbox": tuple(round(v, 4) for v in self.bbox)}


@dataclass(frozen=True)
class Layout:
    """Everything needed to draw a scene: objects, background(s), and the caption it carries."""

    objects: tuple[SceneObject, ...]
    background: str
    background2: str | None = None
    # Where the second tone begins: the boundary's y at the left and right image edges; the
    # second tone fills the image below it.
    horizon: tuple[float, float] | None = None
    category: str = ""
    caption: str | None = None
    extra: dict = field(default_factory=dict)

    def labels(self) -> dict:
        return {"objects": [o.label() for o in self.objects], "background": self.background,
                "background2": self.background2, "category": self.category}


def centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def relation_holds(a: Box, relation: str, b: Box, margin: float = 0.05,
                   ratio: float = 1.0) -> bool:
    """Whether box ``a`` is ``relation`` (left_of, right_of, above, below) box ``b``.

    Judged by centres: the distance along the relation's axis must exceed ``margin`` and the
    offset across it must be at most ``ratio`` times that distance (1.0: the relation's axis is
    the dominant one). Layouts use stricter values than the checker so that a true relation
    stays true under a judge's small position errors.
    """
    (ax, ay), (bx, by) = centre(a), centre(b)
    if relation == "left_of":
        main, cross = bx - ax, by - ay
    elif relation == "right_of":
        main, cross = ax - bx, by - ay
    elif relation == "above":
        main, cross = by - ay, bx - ax
    elif relation == "below":
        main, cross = ay - by, bx - ax
    else:
        raise ValueError(f"unknown relation {relation!r}; known: {', '.join(RELATIONS)}")
    return main > margin and abs(cross) <= ratio * main


def _fits(box: Box, placed: list[Box]) -> bool:
    cx = (box[0] + box[2]) / 2
    for p in placed:
        separated = (box[0] >= p[2] + GAP or p[0] >= box[2] + GAP
                     or box[1] >= p[3] + GAP or p[1] >= box[3] + GAP)
        if not separated or abs(cx - (p[0] + p[2]) / 2) < MIN_DX:
            return False
    return True


def place_boxes(sides: list[float], rng: random.Random,
                relations: Sequence[tuple[int, str, int]] = ()) -> list[Box]:
    """Non-overlapping square boxes of the given sides, inside the image (rejection sampling).

    Each of ``relations``, (i, name, j), makes box i clearly ``name`` of box j.
    """
    for _ in range(MAX_TRIES):
        boxes: list[Box] = []
        for s in sides:
            # A few tries per object before starting over: three big objects leave little
            # room, and the first two placements decide whether the third can fit at all.
            for _ in range(PLACE_TRIES):
                x0 = rng.uniform(EDGE_MARGIN, 1 - EDGE_MARGIN - s)
                y0 = rng.uniform(EDGE_MARGIN, 1 - EDGE_MARGIN - s)
                box = (x0, y0, x0 + s, y0 + s)
                if _fits(box, boxes):
                    boxes.append(box)
                    break
            else:
                break
        else:
            if all(relation_holds(boxes[i], name, boxes[j], RELATION_MIN, RELATION_RATIO)
                   for i, name, j in relations):
                return boxes
    raise RuntimeError(f"could not place {len(sides)} objects of sides "
                       f"{[round(s, 2) for s in sides]} with relations {list(relations)} in "
                       f"{MAX_TRIES} tries")


def sample_layout(objects: list[tuple[str, str | None, str | None]], rng: random.Random, *,
                  relations: Sequence[tuple[int, str, int]] = (), background: str | None = None,
                  background2: str | None = None, two_tone: bool | None = None, category: str = "",
                  caption: str | None = None) -> Layout:
    """A layout with the given objects ((shape, colour or None, size or None) each).

    Unspecified colours, sizes and background are drawn from ``rng``; every object colour
    differs from the background colour(s) so that every object is visible.
    """
    if not 1 <= len(objects) <= 3:
        raise ValueError(f"a scene holds 1 to 3 objects, not {len(objects)}")
    for shape, colour, size in objects:
        if shape not in SHAPES:
            raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
        if colour is not None and colour not in COLOURS:
            raise ValueError(f"unknown colour {colour!r}; known: {', '.join(COLOURS)}")
        if size is not None and size not in SIZES:
            raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    fixed = {c for _, c, _ in objects if c is not None}
    if background is None:
        background = rng.choice([c for c in COLOUR_NAMES if c not in fixed])
    elif background not in COLOURS:
        raise ValueError(f"unknown background colour {background!r}")
    for bg in (background, background2):
        if bg is not None and bg in fixed:
            raise ValueError(f"a {bg} object would be invisible on a {bg} background")
    if background2 is not None and (background2 not in COLOURS or background2 == background):
        raise ValueError(f"the second background colour {background2!r} must be a known "
                         "colour other than the first")
    horizon = None
    if background2 is not None or (two_tone if two_tone is not None
                                   else rng.random() < TWO_TONE_P):
        background2 = background2 or rng.choice(
            [c for c in COLOUR_NAMES if c not in fixed | {background}])
        y_left = rng.uniform(0.5, 0.7)
        horizon = (y_left, min(0.7, max(0.5, y_left + rng.uniform(-0.15, 0.15))))
    free = [c for c in COLOUR_NAMES if c not in (background, background2)]
    chosen = [(shape, colour or rng.choice(free), size or rng.choice(SIZES))
              for shape, colour, size in objects]
    sides = [rng.uniform(*SIZE_RANGE[size]) for _, _, size in chosen]
    boxes = place_boxes(sides, rng, relations)
    placed = tuple(SceneObject(s, c, z, b) for (s, c, z), b in zip(chosen, boxes, strict=True))
    return Layout(placed, background, background2, horizon, category, caption)


def _lit(rgb: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    k = 1 + rng.uniform(-BRIGHTNESS_JITTER, BRIGHTNESS_JITTER)
    r, g, b = (min(255, max(0, round(c * k + rng.uniform(-CHANNEL_JITTER, CHANNEL_JITTER))))
               for c in rgb)
    return (r, g, b)


def draw_layout(layout: Layout, size: int = 64, seed: int = 0) -> np.ndarray:
    """The layout drawn anti-aliased at ``size`` x ``size`` pixels, (H, W, 3) uint8.

    ``seed`` drives only the lighting noise; the geometry is the layout's.
    """
    if int(size) < 8:
        raise ValueError(f"scenes render at 8 pixels or more, not {size}")
    rng = random.Random(seed)
    canvas = Canvas(int(size), _lit(COLOURS[layout.background], rng))
    if layout.background2 is not None and layout.horizon is not None:
        y_left, y_right = layout.horizon
        canvas.polygon([(0, y_left), (1, y_right), (1, 1), (0, 1)],
                       _lit(COLOURS[layout.background2], rng))
    for obj in layout.objects:
        fill = _lit(COLOURS[obj.colour], rng)
        x0, y0, x1, y1 = obj.bbox
        if obj.shape == "circle":
            canvas.ellipse((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2, fill)
        else:
            canvas.polygon(_POLYGONS[obj.shape] * (x1 - x0, y1 - y0) + (x0, y0), fill)
    image = canvas.image()
    # A gentle linear light gradient, so flat regions are not perfectly constant.
    gx, gy = rng.uniform(-GRADIENT, GRADIENT), rng.uniform(-GRADIENT, GRADIENT)
    ramp = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    light = 1 + gx * ramp[None, :, None] + gy * ramp[:, None, None]
    return np.clip(image * light + 0.5, 0, 255).astype(np.uint8)


class ScenesWorld:
    """The "scenes" world: ``render(seed, size)`` -> Sample with objects, background, caption."""

    name = "scenes"

    def __init__(self) -> None:
        # The judge's scene-level label; its per-object heads use SHAPES, COLOURS and SIZES.
        self.attributes = {"background": list(COLOUR_NAMES)}

    def render(self, seed: int, size: int = 64, category: str | None = None) -> Sample:
        """A captioned scene; ``category`` (see captions.CAPTION_CATEGORIES) fixes its kind."""
        # Imported here because captions builds on this module (layouts, relations).
        from core.data.captions import render_layout, sample_scene

        return render_layout(sample_scene(seed, category), size=size, seed=seed)


@register_world("scenes")
def _make() -> ScenesWorld:
    return ScenesWorld()
