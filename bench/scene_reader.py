"""An analytic reader of scenes-world pictures: what a picture shows, read by plain image
analysis against the world's palette and geometry, with no learned part.

The scene benchmark scores text-to-scene models with it beside the learned judge
(core/evaluation/geneval.py). It lives in bench/ because it must stay independent of every
model it scores: nothing in core/ imports it, and it is never used to train, select or rerank
a model (tests/test_scene_reader.py checks the first; the second is a rule for recipes).

How a picture is read (sizes in pixels are for 64 px and scale with the picture, so 128 and
256 px pictures, native or upscaled, read the same):

1. Every pixel takes its nearest palette colour (core.data.scenes.COLOURS; the closest pair
   is ~80 apart in RGB, the world's lighting noise moves a colour by well under half that).
2. The background is the majority colour of the top border and the upper side borders; a
   second tone (a two-tone background) the majority of the bottom border and lower sides. A
   border with no clear majority (noise) has no background.
3. Object seeds are pixels whose whole 3x3 neighbourhood has their own non-background colour:
   anti-aliased edges, the blend line between two background tones and noise never qualify.
   Seeds of one colour within one connected non-background region make one object (so a
   blotchy object stays one, and two objects of different colours that touch stay two).
4. Each object's coverage of every pixel near it is its position between the local
   background colour and the object's own colour (a pixel on an edge is a blend of the two);
   its mask is coverage >= 1/2, which is where the world's renderer drew the shape.
5. Colour: the seeds' palette colour. Box: the coverage's extent (to a fraction of a pixel).
   Size: the box side against the middle of the world's small and big ranges (SIZE_RANGE).
   Shape: from the outline of the mask, by features that tell the world's five shapes apart
   (notches of the convex hull, how much of its box it fills, where its weight lies; see
   _shape); an outline that fits none reads as no shape (a blob is not a star).

A reading is checked against a prompt with the world's own checker (captions.satisfies:
colours, counts, relations by box centres, background) with shapes (``shape=True``) or up to
shapes (``shape=False``: some relabelling of the objects' shapes satisfies the prompt).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
from PIL import Image
from skimage.measure import label as connected
from skimage.measure import regionprops
from skimage.morphology import dilation, erosion, footprint_rectangle
from skimage.segmentation import expand_labels

from core.data.captions import (
    GENEVAL_CATEGORIES,
    Prompt,
    layout_for,
    parse_prompt,
    prompt_for,
    sample_scene,
    satisfies,
)
from core.data.scenes import COLOUR_NAMES, COLOURS, SHAPES, SIZE_RANGE, Layout, draw_layout
from core.data.worlds import split_seeds

PALETTE = np.array([COLOURS[c] for c in COLOUR_NAMES], np.float32)
NATIVE = 64  # the world's and the models' picture side: pixel thresholds below are for it
# Size class boundary: the geometric middle of the largest small and the smallest big side.
SIZE_SPLIT = float(np.sqrt(SIZE_RANGE["small"][1] * SIZE_RANGE["big"][0]))
BORDER_MAJORITY = 0.5  # share of border pixels one colour needs to be a background
MIN_AREA = 24  # pixels (at 64 px) an object needs to cover; the smallest true one covers ~50
OUTLINE = 160  # pixels across which an object's outline is traced
# Notches of an outline's convex hull, deep as a share of its side (see _shape): one that
# counts, and one too deep for any convex shape.
NOTCH, DEEP_NOTCH = 0.04, 0.1
MAX_RELABELLINGS = 10_000  # shape relabellings tried for a match without shape (3^8)
MAX_ASPECT = 1.5  # the world's shapes fill square boxes: a longer box is no shape
EDGE_COVERAGE = 0.2  # a row or column is part of an object where it covers this much

CATEGORIES = [*GENEVAL_CATEGORIES, "background"]
PERTURBATIONS = ("relation", "count", "shape", "colour", "size", "background")
_OPPOSITE = {"left_of": "right_of", "right_of": "left_of", "above": "below", "below": "above"}
# Held-out seed blocks: the benchmark's prompts that name a background, and the validation's
# prompts (apart from the GenEval prompts at core.evaluation.geneval.PROMPT_OFFSET).
BACKGROUND_OFFSET = 60_000_000
VALIDATION_OFFSET = 70_000_000


@dataclass(frozen=True)
class Reading:
    """What a picture shows: objects sorted left to right, as captions.satisfies takes them
    (dicts with shape (None when no shape of the world fits), colour, size and bbox)."""

    objects: tuple[dict[str, Any], ...]
    background: str | None
    background2: str | None = None


def _quantise(img: np.ndarray) -> np.ndarray:
    d = ((img[:, :, None, :] - PALETTE) ** 2).sum(-1)
    return d.argmin(-1)


def _majority(labels: np.ndarray) -> int | None:
    counts = np.bincount(labels.ravel(), minlength=len(PALETTE))
    k = int(counts.argmax())
    return k if counts[k] >= BORDER_MAJORITY * labels.size else None


def _backgrounds(q: np.ndarray) -> tuple[int | None, int | None]:
    h = q.shape[0]
    top = np.concatenate([q[0], q[: int(0.45 * h), 0], q[: int(0.45 * h), -1]])
    bottom = np.concatenate([q[-1], q[int(0.75 * h):, 0], q[int(0.75 * h):, -1]])
    bg1 = _majority(top)
    bg2 = _majority(bottom) if bg1 is not None else None
    return bg1, (bg2 if bg2 != bg1 else None)


def _outline(cov: np.ndarray) -> np.ndarray | None:
    """The outline (OpenCV contour) of an object's coverage >= 1/2, traced on the coverage
    interpolated to about OUTLINE px across so that small objects have smooth outlines."""
    ys, xs = np.nonzero(cov > 0.05)
    crop = np.pad(cov[ys.min():ys.max() + 1, xs.min():xs.max() + 1], 2)
    f = max(1, int(np.ceil(OUTLINE / max(crop.shape))))
    fine = cv2.resize(crop.astype(np.float32), None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
    found, _ = cv2.findContours((fine >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                cv2.CHAIN_APPROX_NONE)
    return max(found, key=cv2.contourArea) if found else None


def _shape(cov: np.ndarray) -> str | None:
    """The shape an object's coverage shows, from its outline's geometry, or None.

    The world's shapes fill a square box and differ in plain features that survive blur: a
    star has five deep notches between its points and empty top corners; a heart one notch,
    at the top centre, its weight high, its top corners filled and its bottom ones empty; a
    triangle has empty top corners, filled bottom ones and its weight low; a square fills its
    corners; a circle fills about a third of each corner (a quarter of the side square) and
    pi/4 of its box. An outline that fits none (a long bar, a notch in the wrong place, a
    lopsided blob, a heart without its notch) reads as no shape. Measured on 60 renders of
    each shape and size at 64 px: star notches 0.09 to 0.17 of the side (five), the heart's
    0.11 to 0.19 and every other notch at most 0.04; corner fill top / bottom: circle
    0.21-0.39, heart 0.66-0.80 / 0-0.01, square 0.90 or more, star 0 / 0.18-0.39, triangle
    0 / 0.78-0.89; extent: circle 0.74-0.79, square 0.94 or more; centroid height: heart
    0.38-0.42, triangle 0.63-0.66, the others 0.48-0.56. The thresholds below sit between
    those ranges, leaving room for blurred drawings.
    """
    outline = _outline(cov)
    if outline is None or len(outline) < 8:
        return None
    x, y, w, h = cv2.boundingRect(outline)
    if not 1 / MAX_ASPECT <= w / h <= MAX_ASPECT:
        return None
    side = max(w, h)
    defects = cv2.convexityDefects(outline, cv2.convexHull(outline, returnPoints=False))
    notches = [] if defects is None else [
        (depth / 256 / side, *outline[far][0]) for _, _, far, depth in defects.reshape(-1, 4)
        if depth / 256 >= NOTCH * side]
    filled = np.zeros((h, w), np.uint8)
    cv2.drawContours(filled, [outline - [x, y]], -1, 1, thickness=-1)
    k = max(1, round(side / 4))
    top = (filled[:k, :k].mean() + filled[:k, -k:].mean()) / 2
    bottom = (filled[-k:, :k].mean() + filled[-k:, -k:].mean()) / 2
    extent = filled.mean()
    rows, cols = np.nonzero(filled)
    cy, cx = rows.mean() + 0.5, cols.mean() + 0.5
    low = cy / h  # the centroid's height in the box
    # A heart's notch is at the top centre (so are a star's two upper ones, but a star's
    # weight is low and its top corners empty); a heart drawn with hollow sides is no star.
    if low <= 0.47 and top >= 0.45 and bottom <= 0.25 and any(
            abs((nx - x) / w - 0.5) < 0.2 and (ny - y) / h < 0.5 for _, nx, ny in notches):
        return "heart"
    if len(notches) >= 2 and _star_notches(notches, x + cx, y + cy) and (
            len(notches) >= 3 or (top <= 0.15 and bottom <= 0.45)):
        # (blur can fill some of a star's notches: two left and a star's corners will do)
        return "star"
    deepest = max(notches, default=(0.0, 0, 0))
    if deepest[0] >= DEEP_NOTCH:  # a deep notch that is neither a star's nor a heart's
        return None
    if top <= 0.2 and bottom >= 0.45 and low >= 0.54:
        return "triangle"
    if min(top, bottom) >= 0.6 and extent >= 0.8:
        return "square"
    if max(top, bottom) < 0.6 and 0.68 <= extent <= 0.9 and abs(low - 0.5) <= 0.06:
        return "circle"
    return None


def _star_notches(notches: list[tuple[float, int, int]], cx: float, cy: float) -> bool:
    """Whether notches (depth, x, y) sit like a star's: about equally deep and equally far
    from the centre (a star's inner corners lie on one circle; measured on the world's
    renders, their distances vary by at most 4%), not a blob's dents of all sizes."""
    depths = sorted((d for d, _, _ in notches), reverse=True)
    radii = np.array([np.hypot(nx - cx, ny - cy) for _, nx, ny in notches])
    return depths[1] >= 0.5 * depths[0] and radii.std() <= 0.15 * radii.mean()


def _blend(img: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel as a blend of colours ``a`` and ``b``: the share of ``b`` and the distance
    off the blend line (in units of what lighting noise and blur allow for that pair)."""
    d = b - a
    span = float(np.sqrt(d @ d))
    t = np.clip(((img - a) @ d) / max(span * span, 1e-6), 0, 1)
    return t, np.linalg.norm(img - a - t[..., None] * d, axis=-1) / (0.3 * span + 20)


def _coverage(img: np.ndarray, colour: np.ndarray, bgs: list[np.ndarray]) -> np.ndarray:
    """Per pixel, the share of ``colour`` in a blend of it with a background colour; 0 where
    no such blend explains the pixel or the blend of the two background tones explains it
    better (the line where a two-tone background changes colour)."""
    cov = np.zeros(img.shape[:2], np.float32)
    best = np.full(img.shape[:2], 1.0, np.float32)
    for b in bgs:
        t, res = _blend(img, b, colour)
        better = res < best
        cov[better], best[better] = t[better], res[better]
    if len(bgs) == 2:
        _, res = _blend(img, *bgs)
        cov[res < best] = 0.0
    return cov


def _local_colour(img: np.ndarray, where: np.ndarray, whole: np.ndarray, s: float
                  ) -> np.ndarray:
    """The median colour of ``where`` (a background's plain pixels near an object: the light
    varies over the picture), or ``whole`` (the picture's) when too few are near."""
    return np.median(img[where], axis=0) if where.sum() >= 8 * s * s else whole


def _horizon(img: np.ndarray, plain: list[np.ndarray], colours: list[np.ndarray], r: int
             ) -> np.ndarray:
    """Pixels on the line where a two-tone background changes colour: blends of the two
    tones' ``colours`` close to the ``plain`` pixels of both (an object's own pixels are close
    to at most one)."""
    near = footprint_rectangle((6 * r + 1, 6 * r + 1))
    _, res = _blend(img, *colours)
    return (res <= 1) & dilation(plain[0], near) & dilation(plain[1], near)


def _extent(profile: np.ndarray) -> tuple[float, float]:
    """Sub-pixel start and end of an object along one axis from its largest coverage per
    row (or column): an edge pixel covered by a share c puts the edge 1 - c into it."""
    idx = np.nonzero(profile >= EDGE_COVERAGE)[0]
    lo, hi = int(idx[0]), int(idx[-1])
    return lo + 1 - min(1.0, float(profile[lo])), hi + min(1.0, float(profile[hi]))


def _object(cov: np.ndarray, colour: str, s: float, origin: tuple[int, int],
            size: tuple[int, int]) -> dict[str, Any] | None:
    """An object's reading from its coverage of a window at ``origin`` (x, y) of a picture of
    ``size`` (h, w), or None when it covers too little."""
    if cov.sum() < MIN_AREA * s * s:
        return None
    h, w = size
    x0, x1 = (v + origin[0] for v in _extent(cov.max(0)))
    y0, y1 = (v + origin[1] for v in _extent(cov.max(1)))
    side = max(x1 - x0, y1 - y0) / min(h, w)
    return {"shape": _shape(cov), "colour": colour,
            "size": "small" if side < SIZE_SPLIT else "big",
            "bbox": (round(x0 / w, 4), round(y0 / h, 4), round(x1 / w, 4), round(y1 / h, 4))}


def read_scene(image: np.ndarray) -> Reading:
    """Read an RGB uint8 picture (H, W, 3) of the scenes world."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or min(img.shape[:2]) < 16:
        raise ValueError(f"expected an RGB picture (H, W, 3) of 16 px or more, not {img.shape}")
    img = img.astype(np.float32)
    s = min(img.shape[:2]) / NATIVE
    r = max(1, round(s))
    q = _quantise(img)
    bg1, bg2 = _backgrounds(q)
    if bg1 is None:  # no plain border: not a scene (noise, a collage), so no objects either
        return Reading((), None, None)
    bg_ids = [k for k in (bg1, bg2) if k is not None]
    box = footprint_rectangle((2 * r + 1, 2 * r + 1))
    uniform = (erosion(q, box) == q) & (dilation(q, box) == q)
    plain = [(q == k) & uniform for k in bg_ids]
    whole = [np.median(img[m if m.any() else q == k], axis=0) for k, m in zip(bg_ids, plain,
                                                                              strict=True)]
    fg = ~np.isin(q, bg_ids)
    if bg2 is not None:
        fg &= ~_horizon(img, plain, whole, r)
    # One object per colour that has seeds in a connected non-background region.
    regions = connected(fg, connectivity=2)
    key = np.where(fg & uniform, regions * len(PALETTE) + q + 1, 0)
    ids, seeds = np.unique(key, return_inverse=True)
    seeds = seeds.reshape(key.shape)
    objects = []
    # Each object is read in the window of the pixels nearer its seeds than any other's.
    for window in regionprops(expand_labels(seeds, distance=4 * r)):
        n, (rows, cols) = window.label, window.slice
        mine, part = window.image, img[rows, cols]
        own = seeds[rows, cols] == n
        bgs = [_local_colour(part, m[rows, cols] & mine, c, s)
               for m, c in zip(plain, whole, strict=True)]
        cov = np.where(mine, _coverage(part, np.median(part[own], axis=0), bgs), 0.0)
        cov[own] = 1.0
        obj = _object(cov, COLOUR_NAMES[int((ids[n] - 1) % len(PALETTE))], s,
                      (cols.start, rows.start), img.shape[:2])
        if obj is not None:
            objects.append(obj)
    objects.sort(key=lambda o: o["bbox"][0] + o["bbox"][2])
    name = [None if k is None else COLOUR_NAMES[k] for k in (bg1, bg2)]
    return Reading(tuple(objects), name[0], name[1])


def matches(prompt: Prompt, reading: Reading, shape: bool = True) -> bool:
    """Whether the reading matches the prompt exactly: colours, sizes, counts, the relation
    and the background, and with ``shape`` also the shapes.

    With shape this is the world's own checker (captions.satisfies, the GenEval rules the
    judge's figures use): "two blue circles" needs exactly two blue circles, whatever else is
    drawn. Without shape, every object that could be one of the asked objects by colour and
    size is taken for one of them (its shape relabelled to the best fit), so "two blue
    circles" needs exactly two blue objects, and "a red star left of a blue circle" a red
    object left of a blue one.
    """
    objects = list(reading.objects)
    if shape:
        return satisfies(prompt, objects, reading.background, reading.background2)
    options = []
    for o in objects:
        fits = sorted({r.shape for r in prompt.objects if r.matches({**o, "shape": r.shape})})
        options.append(fits or [None])
    return any(
        satisfies(prompt, [{**o, "shape": s} for o, s in zip(objects, combo, strict=True)],
                  reading.background, reading.background2)
        for combo in itertools.islice(itertools.product(*options), MAX_RELABELLINGS))


def stars_drawn(prompt: Prompt, reading: Reading) -> bool | None:
    """Whether every star the prompt asks for is drawn as a star of the asked colour, size and
    count, whatever else is right or wrong (None when it asks for no star)."""
    asked = [r for r in prompt.objects if r.shape == "star"]
    if not asked:
        return None
    return all(satisfies(Prompt((r,)), list(reading.objects)) for r in asked)


def score(cases: Sequence[tuple[str, str]], readings: Sequence[Reading]) -> dict[str, Any]:
    """For (category, prompt) cases and their pictures' readings: per category the share of
    exact matches ``(without shape, with shape)``, ``overall`` (the mean over the GenEval
    categories, as GenEval reports it) and ``stars`` (stars_drawn over the prompts that ask
    for one)."""
    if len(cases) != len(readings):
        raise ValueError(f"{len(readings)} readings for {len(cases)} prompts")
    hits: dict[str, list[tuple[bool, bool]]] = {}
    stars = []
    for (category, text), reading in zip(cases, readings, strict=True):
        prompt = parse_prompt(text)
        hits.setdefault(category, []).append((matches(prompt, reading, shape=False),
                                              matches(prompt, reading)))
        stars.append(stars_drawn(prompt, reading))
    out: dict[str, Any] = {c: tuple(np.mean(v, axis=0).tolist()) for c, v in hits.items()}
    gen = [out[c] for c in GENEVAL_CATEGORIES if c in out]
    out["overall"] = tuple(np.mean(gen, axis=0).tolist()) if gen else (np.nan, np.nan)
    asked = [bool(f) for f in stars if f is not None]
    out["stars"] = float(np.mean(asked)) if asked else float("nan")
    return out


# ---- validation on the world's own renders ------------------------------------------------


def background_scenes(n: int, offset: int = BACKGROUND_OFFSET) -> list[tuple[int, Layout]]:
    """``n`` held-out world scenes (seed, layout with caption) whose caption names the
    background (half of them do), in seed order."""
    found = []
    for seed in split_seeds("held_out", 8 * n + 32, offset):
        layout = sample_scene(seed)
        if layout.extra["prompt"].background is not None:
            found.append((seed, layout))
            if len(found) == n:
                return found
    raise RuntimeError(f"fewer than {n} scenes with a background among the seeds tried")


def true_cases(n: int, offset: int = VALIDATION_OFFSET) -> list[tuple[str, Prompt, Layout, int]]:
    """(category, prompt, layout that makes it true, seed): ``n`` prompts of each GenEval
    category (their canonical wording) and ``n`` world captions naming a background."""
    cases = []
    for k, category in enumerate(GENEVAL_CATEGORIES):
        for seed in split_seeds("held_out", n, offset + k * 1_000_000):
            text, layout = prompt_for(category, seed)
            cases.append((category, parse_prompt(text), layout, seed))
    for seed, layout in background_scenes(n, offset + len(GENEVAL_CATEGORIES) * 1_000_000):
        cases.append(("background", parse_prompt(layout.caption or ""), layout, seed))
    return cases


def perturb(prompt: Prompt, kind: str, rng: random.Random) -> Prompt | None:
    """The prompt changed in one thing of ``kind`` (see PERTURBATIONS), or None when it has
    nothing of that kind: the relation turned around, a counted object's count moved by one,
    an object's shape or colour replaced by one the prompt does not use, its size by the
    other size, or the background replaced by a colour no object of the prompt has."""
    objs = list(prompt.objects)
    if kind == "relation":
        if prompt.relation is None:
            return None
        s, name, o = prompt.relation
        return replace(prompt, relation=(s, _OPPOSITE[name], o))
    if kind == "count":
        counted = [i for i, r in enumerate(objs) if r.count > 1]
        if not counted:
            return None
        i = rng.choice(counted)
        total = sum(r.count for r in objs)
        steps = [d for d in (-1, 1) if total + d <= 3]
        objs[i] = replace(objs[i], count=objs[i].count + rng.choice(steps))
    elif kind == "shape":
        i = rng.randrange(len(objs))
        objs[i] = replace(objs[i], shape=rng.choice(
            [sh for sh in SHAPES if sh not in {r.shape for r in objs}]))
    elif kind == "colour":
        coloured = [i for i, r in enumerate(objs) if r.colour]
        if not coloured:
            return None
        i = rng.choice(coloured)
        used = {r.colour for r in objs} | {prompt.background, prompt.background2}
        objs[i] = replace(objs[i], colour=rng.choice([c for c in COLOUR_NAMES if c not in used]))
    elif kind == "size":
        sized = [i for i, r in enumerate(objs) if r.size]
        if not sized:
            return None
        i = rng.choice(sized)
        objs[i] = replace(objs[i], size="big" if objs[i].size == "small" else "small")
    elif kind == "background":
        if prompt.background is None:
            return None
        used = {r.colour for r in objs} | {prompt.background, prompt.background2}
        return replace(prompt, background=rng.choice([c for c in COLOUR_NAMES if c not in used]))
    else:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    return replace(prompt, objects=tuple(objs))


def _truth(layout: Layout) -> Reading:
    labels = layout.labels()
    return Reading(tuple(labels["objects"]), labels["background"], labels["background2"])


def validation(n: int, size: int = NATIVE, offset: int = VALIDATION_OFFSET,
               upscale_from: int | None = None) -> dict[str, dict[str, Any]]:
    """The reader on the world's true renders (:func:`true_cases`, drawn at ``size``, or at
    ``upscale_from`` and enlarged to ``size`` bicubically).

    ``accept``: per category, the share of renders of a prompt that the reader finds match it
    ``(without shape, with shape)``. ``reject``: per PERTURBATIONS kind, the share of renders
    of the perturbed prompt that it finds do NOT match the original prompt, again ``(without
    shape, with shape, renders without, renders with)``; a render counts only where
    its true labels do not match the original either (a red star drawn for "two red stars"
    instead of "a red star" still shows a red star)."""

    def read(layout: Layout, seed: int) -> Reading:
        if upscale_from is None:
            return read_scene(draw_layout(layout, size, seed))
        small = Image.fromarray(draw_layout(layout, upscale_from, seed))
        return read_scene(np.asarray(small.resize((size, size), Image.BICUBIC)))

    accept: dict[str, list[tuple[bool, bool]]] = {}
    reject: dict[str, list[list[bool]]] = {k: [[], []] for k in PERTURBATIONS}
    for category, prompt, layout, seed in true_cases(n, offset):
        reading = read(layout, seed)
        accept.setdefault(category, []).append((matches(prompt, reading, shape=False),
                                                matches(prompt, reading)))
        rng = random.Random(f"perturb:{seed}")
        for kind in PERTURBATIONS:
            other = perturb(prompt, kind, rng)
            try:
                drawn = layout_for(other, rng) if other is not None else None
            except (ValueError, RuntimeError):  # e.g. a relation to a counted object
                drawn = None
            if drawn is None:
                continue
            reading = read(drawn, seed)
            for k, shape in enumerate((False, True)):
                if not matches(prompt, _truth(drawn), shape=shape):
                    reject[kind][k].append(not matches(prompt, reading, shape=shape))
    return {"accept": {c: tuple(np.mean(v, axis=0).tolist()) for c, v in accept.items()},
            "reject": {k: tuple(float(np.mean(f)) if f else float("nan") for f in v)
                       + tuple(len(f) for f in v) for k, v in reject.items()}}
